"""Batched produce: records are appended to per-partition batches and submitted together.

``AIOKafkaProducer.send`` costs a coroutine, a metadata check and a partitioner call per record;
on the worker's hot path that is most of the budget. Here a record costs one ``BatchBuilder.append``
(the partition comes from a cached murmur2 of the key, the Java client's default partitioner, so
keyed records land exactly where ``send`` would put them). ``detach`` takes the open batches in
one synchronous step, which is what lets a checkpoint know exactly which records it covers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from contracts.topics import MAX_RECORD_BYTES
from orchestrator.kafka.headers import Headers

__all__ = ["OutputBuffer", "RecordTooLarge", "fits", "key_hash"]

_HASH_CACHE_MAX = 200_000
#: Room for the record's own framing and the batch header within ``max.message.bytes``.
_RECORD_OVERHEAD = 512


class RecordTooLarge(ValueError):
    """A record bigger than any topic of the product accepts (``MAX_RECORD_BYTES``)."""


def fits(key: bytes | None, value: bytes | None) -> bool:
    """The record is small enough for every product topic (checked before a state changes, so
    a handler's oversized output dead-letters its input instead of failing the checkpoint)."""
    return len(key or b"") + len(value or b"") <= MAX_RECORD_BYTES - _RECORD_OVERHEAD


def key_hash(key: bytes) -> int:
    """The Java client's (and aiokafka's) default partitioner hash; partition = hash % count."""
    h: int = murmur2(key) & 0x7FFFFFFF
    return h


class OutputBuffer:
    def __init__(self, producer: AIOKafkaProducer, routes: dict[str, int] | None = None) -> None:
        self._producer = producer
        self._nparts: dict[str, int] = routes if routes is not None else {}
        self._open: dict[tuple[str, int], Any] = {}
        self._full: list[tuple[tuple[str, int], Any]] = []
        self._hash: dict[bytes, int] = {}
        self.pending_records = 0
        #: Records handed to the producer, per topic (for metrics).
        self.submitted: dict[str, int] = {}

    async def prepare(self, *topics: str) -> None:
        """Learn the partition counts (keyed routing needs them)."""
        for topic in topics:
            if topic not in self._nparts:
                parts = await self._producer.partitions_for(topic)
                self._nparts[topic] = len(parts)

    def partition_for(self, topic: str, key: bytes | None) -> int:
        n = self._nparts.get(topic)
        if n is None:
            raise KeyError(f"topic {topic!r} was not prepared")
        if key is None:
            return 0
        h = self._hash.get(key)
        if h is None:
            if len(self._hash) >= _HASH_CACHE_MAX:
                self._hash.clear()
            h = key_hash(key)
            self._hash[key] = h
        return h % n

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        if not fits(key, value):
            raise RecordTooLarge(
                f"record of {len(key or b'') + len(value or b'')} bytes for {topic} is over "
                f"the {MAX_RECORD_BYTES}-byte limit"
            )
        if partition is None:
            partition = self.partition_for(topic, key)
        tp = (topic, partition)
        builder = self._open.get(tp)
        if builder is None:
            builder = self._open[tp] = self._producer.create_batch()
        if headers is None:
            headers = []
        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            self._full.append((tp, builder))
            builder = self._open[tp] = self._producer.create_batch()
            # A first record always fits.
            builder.append(key=key, value=value, timestamp=None, headers=headers)
        self.pending_records += 1

    def detach(self) -> list[tuple[tuple[str, int], Any]]:
        """Take every open batch (in append order per partition); the buffer starts empty."""
        out = self._full
        out.extend(self._open.items())
        self._full = []
        self._open = {}
        self.pending_records = 0
        return out

    async def submit(self, batches: list[tuple[tuple[str, int], Any]]) -> list[asyncio.Future[Any]]:
        """Hand detached batches to the producer; the futures resolve when the broker acked them."""
        futs: list[asyncio.Future[Any]] = []
        send = self._producer.send_batch
        submitted = self.submitted
        for (topic, partition), builder in batches:
            count = builder.record_count()
            if count:
                builder.close()  # complete: nothing else may be appended by the producer
                futs.append(await send(builder, topic, partition=partition))
                submitted[topic] = submitted.get(topic, 0) + count
        return futs
