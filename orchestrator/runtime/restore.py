"""Restore partition stores from the changelog before their partitions are processed.

A separate consumer (no group) is assigned the changelog partitions by hand, reads each from the
beginning to the end offset it had when the restore started, and loads the latest value per key
into a fresh store (tombstones delete). Only then does the runtime process the input partition,
so a record is never applied to a state that is missing its history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from orchestrator.kafka.ends import end_offsets as true_end_offsets
from orchestrator.runtime.store import Entry, PartitionStore, decode_changelog

S = TypeVar("S")

__all__ = ["RestoreAborted", "end_offsets", "restore"]


class RestoreAborted(RuntimeError):
    """The process is stopping: the restore was abandoned (the partitions stay unprocessed)."""


async def end_offsets(
    consumer: AIOKafkaConsumer, topic: str, partitions: list[int]
) -> dict[int, int]:
    tps = [TopicPartition(topic, p) for p in partitions]
    ends = await true_end_offsets(consumer, tps)  # Tansu under-reports: see kafka/ends.py
    return {tp.partition: int(off) for tp, off in ends.items()}


async def restore(
    consumer: AIOKafkaConsumer,
    topic: str,
    partitions: list[int],
    load_state: Callable[[Any], S],
    *,
    on_bad_record: Callable[[int, int, Exception], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout_s: float = 300.0,
) -> tuple[dict[int, PartitionStore[S]], dict[int, int], int]:
    """Read ``partitions`` of ``topic`` to their end; return (stores, end offsets, records read)."""
    stores: dict[int, PartitionStore[S]] = {p: PartitionStore(p) for p in partitions}
    if not partitions:
        return stores, {}, 0
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    try:
        ends = await true_end_offsets(consumer, tps)  # Tansu under-reports: see kafka/ends.py
        await consumer.seek_to_beginning(*tps)
        remaining = set()
        for tp in tps:
            if ends[tp] > await consumer.position(tp):
                remaining.add(tp)
        read = 0
        deadline = time.monotonic() + timeout_s
        while remaining:
            if should_stop is not None and should_stop():
                raise RestoreAborted(topic)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"restore of {topic} {sorted(tp.partition for tp in remaining)} timed out"
                )
            batch = await consumer.getmany(*remaining, timeout_ms=200, max_records=10_000)
            for tp, msgs in batch.items():
                store = stores[tp.partition]
                end = ends[tp]
                for m in msgs:
                    if m.offset >= end:
                        break
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
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        for store in stores.values():
            store.reindex()
        return stores, {tp.partition: off for tp, off in ends.items()}, read
    finally:
        consumer.assign([])
