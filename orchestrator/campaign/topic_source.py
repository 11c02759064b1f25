"""Contacts from a Kafka topic, read lazily in a fixed order.

The offsets to read are fixed when the campaign starts (``source_ranges``: partition, begin, end),
and the topic is read partition after partition, so a contact's row number (its ``index``, the
reader's cursor) is the same on every replica and after every restart, even if the topic grows.
Each record's value is one contact as a JSON object (the JSONL columns). A background task keeps a
small buffer filled; :meth:`read` never blocks, which suits the runtime's synchronous handlers.
An uploaded list (``campaign.uploads``) is read the same way, keeping only its own key's records.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import orjson
from aiokafka.structs import TopicPartition

from contracts.campaign import Contact
from orchestrator.campaign.contacts import contact_from_row
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer
from orchestrator.kafka.reading import partitions_of

__all__ = ["TopicContactReader", "topic_ranges"]

Range = tuple[int, int, int]


async def topic_ranges(settings: Settings, topic: str) -> list[Range]:
    """(partition, begin, end) of every partition of ``topic`` now."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        if not tps:
            raise ValueError(f"contacts.topic: no topic named {topic!r}")
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return [(tp.partition, int(begins[tp]), int(ends[tp])) for tp in tps]
    finally:
        await consumer.stop()


def _index_plan(ranges: list[Range]) -> list[tuple[int, int, int, int]]:
    """(partition, begin, end, base index) in reading order."""
    plan = []
    base = 0
    for p, begin, end in sorted(ranges):
        plan.append((p, begin, end, base))
        base += max(0, end - begin)
    return plan


class TopicContactReader:
    def __init__(
        self,
        settings: Settings,
        topic: str,
        ranges: list[Range],
        *,
        start: int = 0,
        default_region: str | None = "US",
        buffer: int = 2000,
        key: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.plan = _index_plan(ranges)
        self.position = start
        self.default_region = default_region
        #: Only records with this key (an upload's slice, which others may interleave with).
        self.key = key
        self._buffer: deque[Contact] = deque()
        self._max = buffer
        self._done = False
        self._task: asyncio.Task[None] | None = None
        self._space = asyncio.Event()
        self.error: str | None = None

    @property
    def eof(self) -> bool:
        return self._done and not self._buffer

    def read(self, n: int) -> list[Contact]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._fill())
        out: list[Contact] = []
        while self._buffer and len(out) < n:
            out.append(self._buffer.popleft())
        if out:
            self.position = out[-1].index + 1
        if len(self._buffer) < self._max:
            self._space.set()
        return out

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _fill(self) -> None:
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        try:
            for p, begin, end, base in self.plan:
                first = max(begin, begin + (self.position - base))
                if first >= end:
                    continue
                tp = TopicPartition(self.topic, p)
                consumer.assign([tp])
                consumer.seek(tp, first)
                while await consumer.position(tp) < end:
                    if len(self._buffer) >= self._max:  # wait until the campaign drains it
                        self._space.clear()
                        await self._space.wait()
                    batch = await consumer.getmany(tp, timeout_ms=200, max_records=500)
                    for m in batch.get(tp, []):
                        if m.offset >= end:
                            break
                        if self.key is not None and m.key != self.key:
                            continue
                        index = base + (m.offset - begin)
                        try:
                            row = orjson.loads(m.value) if m.value is not None else {}
                            if not isinstance(row, dict):
                                row = {}
                        except orjson.JSONDecodeError:
                            row = {}  # an unreadable record becomes an invalid contact
                        self._buffer.append(contact_from_row(index, row, self.default_region))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # reported; the campaign waits instead of skipping contacts
            self.error = f"{type(err).__name__}: {err}"
            return
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        self._done = True
