"""Restore partition stores from the changelog before their partitions are processed.

A separate consumer (no group) is assigned the changelog partitions by hand and reads each from a
start offset (0 for a fresh store) to its end, loading the latest value per key (tombstones
delete). Only then does the runtime process the input partition, so a record is never applied to a
state that is missing its history.

A store that this process owned until the rebalance is restored *incrementally* from the end
offset it last wrote: if nobody wrote since, nothing is read; if another owner did, its newer
records are applied on top, which gives the same result as a full restore (each record is the
whole state of its key).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition

from orchestrator.kafka.reading import ReadAborted, read_to_end
from orchestrator.runtime.store import Entry, PartitionStore, decode_changelog

S = TypeVar("S")

__all__ = ["RestoreAborted", "restore"]


class RestoreAborted(RuntimeError):
    """The process is stopping: the restore was abandoned (the partitions stay unprocessed)."""


async def restore(
    consumer: AIOKafkaConsumer,
    topic: str,
    stores: dict[int, PartitionStore[S]],
    load_state: Callable[[Any], S],
    *,
    start: dict[int, int] | None = None,
    on_bad_record: Callable[[int, int, Exception], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout_s: float = 300.0,
) -> tuple[dict[int, int], int]:
    """Bring ``stores`` up to the end of their changelog partitions.

    Returns (end offset per partition, records read).
    """
    if not stores:
        return {}, 0
    start = start or {}
    tps = [TopicPartition(topic, p) for p in sorted(stores)]
    read = 0

    def load(tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        nonlocal read
        store = stores[tp.partition]
        for m in records:
            read += 1
            if m.key is None:
                continue
            key = m.key.decode("utf-8", "replace")
            if m.value is None:
                store.load(key, None)
                continue
            try:
                offset, raw, touched, due, done = decode_changelog(m.value)
                entry: Entry[S] = Entry(load_state(raw), offset, touched)
            except Exception as err:  # a corrupt record must not block the partition
                if on_bad_record is not None:
                    on_bad_record(tp.partition, m.offset, err)
                continue
            entry.due = due
            entry.done_at = done
            store.load(key, entry)

    try:
        ends = await read_to_end(
            consumer,
            tps,
            load,
            start={tp: start.get(tp.partition, 0) for tp in tps},
            within=timeout_s,
            max_records=10_000,
            should_stop=should_stop,
        )
    except ReadAborted:
        raise RestoreAborted(topic) from None
    except TimeoutError:
        raise TimeoutError(f"restore of {topic} {sorted(stores)} timed out") from None
    finally:
        consumer.assign([])
    for store in stores.values():
        store.reindex()
    return {tp.partition: off for tp, off in ends.items()}, read
