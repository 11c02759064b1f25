"""Restore partition stores from the changelog before their partitions are processed.

A separate consumer (no group) is assigned the changelog partitions by hand and reads each from a
start offset (0 for a fresh store) to its end, loading the latest value per key (tombstones
delete). Only then does the runtime process the input partition, so a record is never applied to a
state that is missing its history.

"The end" is the high watermark reported by the fetch responses, not only ``ListOffsets``: the
local broker (Tansu) answers ``ListOffsets(latest)`` with the base offset of the last batch, which
would stop a restore short of the newest states. The restore stops once the position has reached
both.

A store that this process owned until the rebalance is restored *incrementally* from the end
offset it last wrote: if nobody wrote since, nothing is read; if another owner did, its newer
records are applied on top, which gives the same result as a full restore (each record is the
whole state of its key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

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
    consumer.assign(tps)
    try:
        listed = {tp: int(off) for tp, off in (await consumer.end_offsets(tps)).items()}
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        remaining = set(tps)
        read = 0
        deadline = time.monotonic() + timeout_s
        while remaining:
            if should_stop is not None and should_stop():
                raise RestoreAborted(topic)
            if time.monotonic() > deadline:
                parts = sorted(tp.partition for tp in remaining)
                raise TimeoutError(f"restore of {topic} {parts} timed out")
            batch = await consumer.getmany(*remaining, timeout_ms=100, max_records=10_000)
            for tp, msgs in batch.items():
                store = stores[tp.partition]
                for m in msgs:
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
            for tp in list(remaining):
                high = consumer.highwater(tp)
                if high is None:
                    continue  # no fetch response yet
                if await consumer.position(tp) >= max(high, listed[tp]):
                    remaining.discard(tp)
                    listed[tp] = max(high, listed[tp])
        for store in stores.values():
            store.reindex()
        return {tp.partition: off for tp, off in listed.items()}, read
    finally:
        consumer.assign([])
