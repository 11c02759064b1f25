"""The ingress's write path: one record to Kafka, acknowledged by the broker, within a deadline.

The ingress says 2xx only after the broker acknowledged the write (``acks=all``). When the broker is
unreachable or slower than the deadline, :class:`PublishError` is raised and the caller answers 503,
which Vonage retries. A record whose acknowledgement came too late may still land on the topic
afterwards (aiokafka keeps a batch until ``request_timeout_ms``, set here to the deadline): that is
harmless, because the retry produces the same deterministic envelope id and consumers deduplicate
on it. What can never happen is a 2xx for a record that is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from orchestrator.config import Settings
from orchestrator.ingress.metrics import IngressMetrics
from orchestrator.kafka.clients import make_producer
from orchestrator.kafka.headers import Headers
from orchestrator.logs import get_logger
from orchestrator.runtime.shutdown import bounded, cancel_and_wait

log = get_logger("ingress.publish")

__all__ = [
    "TOO_LARGE_ERRORS",
    "KafkaPublisher",
    "NullPublisher",
    "PublishError",
    "Publisher",
    "RecordTooLarge",
    "Stored",
]


class PublishError(Exception):
    """The record is not known to be stored: answer ``status`` (503: the sender retries)."""

    status = 503

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecordTooLarge(PublishError):
    """The record can never fit the topic: 413, because a retry would fail the same way."""

    status = 413


#: The client's own size check and the broker's refusals of an oversize record or batch.
TOO_LARGE_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)


@dataclass(frozen=True, slots=True)
class Stored:
    topic: str
    partition: int
    offset: int


class Publisher(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(
        self, topic: str, key: bytes, value: bytes, *, headers: Headers
    ) -> Stored: ...
    async def check_ready(self, topics: list[str]) -> tuple[bool, str]: ...


class KafkaPublisher:
    """An aiokafka producer with ``acks=all`` and a per-record deadline.

    Start-up does not fail when the broker is down: the ingress must still answer (503) and report
    not-ready, so a background task keeps trying to connect.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        deadline: float = 2.5,
        metrics: IngressMetrics | None = None,
        **producer_overrides: Any,
    ) -> None:
        self.settings = settings
        self.deadline = deadline
        self.metrics = metrics
        self._overrides = producer_overrides
        self._producer: AIOKafkaProducer | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._ready_cache: tuple[float, bool, str] = (0.0, False, "not checked")

    def _new_producer(self) -> AIOKafkaProducer:
        opts: dict[str, Any] = {
            "request_timeout_ms": max(int(self.deadline * 1000), 500),
            "metadata_max_age_ms": 30_000,
            "linger_ms": 1,
            "retry_backoff_ms": 50,
        }
        opts.update(self._overrides)
        return make_producer(self.settings, **opts)

    async def _connect_once(self) -> bool:
        producer = self._new_producer()
        try:
            await asyncio.wait_for(producer.start(), timeout=max(self.deadline, 5.0))
        except (TimeoutError, KafkaError, OSError) as err:
            with contextlib.suppress(Exception):
                await producer.stop()
            log.warning("broker not reachable yet", error=type(err).__name__)
            return False
        self._producer = producer
        log.info("producer connected", bootstrap=self.settings.kafka_bootstrap_servers)
        return True

    async def _connect_loop(self) -> None:
        delay = 0.5
        while not await self._connect_once():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def start(self) -> None:
        if not await self._connect_once():
            self._connect_task = asyncio.create_task(self._connect_loop(), name="producer-connect")

    async def stop(self) -> None:
        if self._connect_task is not None:  # it waits inside aiokafka's start
            await cancel_and_wait(self._connect_task, what="ingress producer connect")
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await bounded(producer.stop(), 10, what="ingress producer stop")

    async def publish(self, topic: str, key: bytes, value: bytes, *, headers: Headers) -> Stored:
        producer = self._producer
        if producer is None:
            raise PublishError("broker not connected")
        started = time.perf_counter()
        outcome = "error"
        try:
            async with asyncio.timeout(self.deadline):
                fut = await producer.send(topic, value=value, key=key, headers=headers)
                meta = await fut
            outcome = "ok"
            return Stored(topic=meta.topic, partition=meta.partition, offset=meta.offset)
        except TimeoutError:
            outcome = "timeout"
            raise PublishError(f"broker did not acknowledge within {self.deadline:g} s") from None
        except TOO_LARGE_ERRORS:
            outcome = "too_large"
            raise RecordTooLarge(
                f"record of {len(value)} bytes is larger than {topic} accepts"
            ) from None
        except KafkaError as err:
            raise PublishError(f"broker error: {type(err).__name__}") from None
        except Exception as err:  # anything else: still not known to be stored, so still 503
            log.exception("unexpected producer failure")
            raise PublishError(f"producer error: {type(err).__name__}") from None
        finally:
            if self.metrics is not None:
                self.metrics.produce_seconds.labels(outcome=outcome).observe(
                    time.perf_counter() - started
                )

    async def check_ready(self, topics: list[str]) -> tuple[bool, str]:
        """Broker reachable and every topic present; cached for a second (probes are frequent)."""
        at, ok, why = self._ready_cache
        if time.monotonic() - at < 1.0:
            return ok, why
        ok, why = await self._probe(topics)
        self._ready_cache = (time.monotonic(), ok, why)
        return ok, why

    async def _probe(self, topics: list[str]) -> tuple[bool, str]:
        producer = self._producer
        if producer is None:
            return False, "broker not connected"
        try:
            async with asyncio.timeout(2.0):
                cluster = await producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError, OSError) as err:
            return False, f"broker unreachable ({type(err).__name__})"
        present = cluster.topics()
        missing = sorted(t for t in topics if t not in present)
        if missing:
            return False, "topics missing: " + ", ".join(missing)
        return True, "ok"


class NullPublisher:
    """Answers as if stored, without storing: only for the benchmark's baseline (``--no-publish``)."""

    async def start(self) -> None:
        log.warning("publishing disabled: webhooks are NOT stored (benchmark baseline only)")

    async def stop(self) -> None:
        return None

    async def publish(self, topic: str, key: bytes, value: bytes, *, headers: Headers) -> Stored:
        return Stored(topic=topic, partition=-1, offset=-1)

    async def check_ready(self, topics: list[str]) -> tuple[bool, str]:
        return True, "publishing disabled"
