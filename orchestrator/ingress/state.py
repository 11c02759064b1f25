"""A read model of ``voice.state`` for ``GET /v1/calls/{flow_key}`` (design item 5).

The worker keeps each flow's latest state on the compacted ``voice.state`` topic (key = flow key,
value ``{"offset": <source offset>, "state": {...}}``, a tombstone once the flow is evicted). This
tails every partition from the beginning, without a consumer group (each ingress replica holds its
own copy; nothing is committed), and keeps the latest value per key. Memory follows the flows the
worker still holds, and a cap evicts the least recently updated beyond ``max_flows``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer
from orchestrator.kafka.reading import end_offsets, partitions_of
from orchestrator.logs import get_logger
from orchestrator.runtime.shutdown import cancel_and_wait

log = get_logger("ingress.state")


@dataclass(frozen=True, slots=True)
class StoredFlow:
    """The latest record ``voice.state`` holds for one flow key, as the worker wrote it."""

    flow_key: str
    value: Any
    partition: int
    offset: int
    timestamp_ms: int | None


class StateView:
    def __init__(self, settings: Settings, topic: str, *, max_flows: int = 200_000) -> None:
        self.settings = settings
        self.topic = topic
        self.max_flows = max_flows
        self._flows: OrderedDict[str, StoredFlow] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()
        self.on_change: Any = None  # callable(len) for the gauge

    def __len__(self) -> int:
        return len(self._flows)

    def get(self, flow_key: str) -> StoredFlow | None:
        return self._flows.get(flow_key)

    def apply(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, ts: int | None
    ) -> None:
        if key is None:
            return
        flow_key = key.decode("utf-8", "replace")
        if value is None:
            self._flows.pop(flow_key, None)
        else:
            try:
                decoded: Any = orjson.loads(value)
            except orjson.JSONDecodeError:
                decoded = {"undecodable": True, "bytes": len(value)}
            self._flows.pop(flow_key, None)
            self._flows[flow_key] = StoredFlow(flow_key, decoded, partition, offset, ts)
            while len(self._flows) > self.max_flows:
                self._flows.popitem(last=False)
        if self.on_change is not None:
            self.on_change(len(self._flows))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="state-view")

    async def stop(self) -> None:
        """Cancelled, and left behind after 5 s: its consumer's stop can hang inside aiokafka
        (seen over SASL_SSL, where a single cancel and an unbounded wait outlasted the
        ingress's 25 s shutdown budget)."""
        if self._task is not None:
            await cancel_and_wait(self._task, what="voice.state read model", within_s=5)

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._tail()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, TimeoutError) as err:
                log.warning("voice.state read model: retrying", error=type(err).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _tail(self) -> None:
        consumer: AIOKafkaConsumer = make_consumer(
            self.settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            tps = await partitions_of(consumer, self.topic)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await end_offsets(consumer, tps)
            pending = {tp for tp, off in end.items() if off > 0}
            if not pending:
                self.caught_up.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batches.items():
                    for rec in records:
                        self.apply(rec.key, rec.value, rec.partition, rec.offset, rec.timestamp)
                    if tp in pending and records and records[-1].offset + 1 >= end[tp]:
                        pending.discard(tp)
                if pending:
                    for tp in list(pending):
                        if await consumer.position(tp) >= end[tp]:
                            pending.discard(tp)
                if not pending and not self.caught_up.is_set():
                    self.caught_up.set()
                    log.info("voice.state read model caught up", flows=len(self._flows))
        finally:
            await consumer.stop()
