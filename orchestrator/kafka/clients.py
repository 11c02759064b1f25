"""Every Kafka client is built here, from :class:`Settings`: one place for the connection
(bootstrap servers and security: TLS, SASL, client certificates) and the product's delivery
settings. Nothing else constructs an aiokafka client, so no client can miss the security settings.

Producers use ``acks=all``: a write is acknowledged only once durable on the in-sync replicas.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka.admin.client
import aiokafka.client
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.metadata import MetadataRequest

from contracts.topics import MAX_RECORD_BYTES
from orchestrator.config import Settings
from orchestrator.kafka.security import client_kwargs


class _MetadataWithoutAutoCreate(MetadataRequest):  # type: ignore[misc]
    """A metadata request that never asks the broker to create the topics it names.

    aiokafka asks for auto-creation in every metadata request (``allow_auto_topic_creation``
    defaults to true from v4 on) and has no setting to stop it, so on a cluster with
    ``auto.create.topics.enable=true`` a mistyped topic name would be created empty, with the
    broker's default partitions and cleanup policy, and a role would wait on it forever. Topics
    are created by ``orchestrator topics ensure`` or the cluster's owner, never by a client.
    """

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool = False):
        del allow_auto_topic_creation
        super().__init__(topics, False)


aiokafka.client.MetadataRequest = _MetadataWithoutAutoCreate
aiokafka.admin.client.MetadataRequest = _MetadataWithoutAutoCreate


log = structlog.get_logger(__name__)

# How long a consumer's stop may wait on its fetcher before the fetcher is cancelled again.
STOP_RECANCEL_S = 1.0


class Consumer(AIOKafkaConsumer):  # type: ignore[misc]
    """aiokafka's consumer, with a :meth:`stop` that cannot hang on its own fetcher.

    aiokafka (0.14) cancels the fetcher's routine once at stop and waits for it. When the
    assignment has just changed (``assign([])`` after a restore), the routine is itself waiting
    for its in-flight fetches to end, inside ``contextlib.suppress(CancelledError)``: the one
    cancel is swallowed there, the routine goes back to waiting for work that never comes, and
    ``stop()`` waits forever. (Found with a dump of every task of a test stuck 300 s in a
    restore's ``consumer.stop()``, 2026-12-07.) The routine leaves at the next cancel, so stop
    repeats it while the fetcher is closed but not finished.
    """

    async def stop(self) -> None:
        stopping = asyncio.ensure_future(super().stop())
        recancelled = 0
        while True:
            done, _ = await asyncio.wait({stopping}, timeout=STOP_RECANCEL_S)
            if done:
                break
            fetcher = getattr(self, "_fetcher", None)
            routine = getattr(fetcher, "_fetch_task", None)
            if getattr(fetcher, "_closed", False) and routine is not None and not routine.done():
                routine.cancel()
                recancelled += 1
        if recancelled:
            log.info("kafka consumer stop: fetcher cancelled again", times=recancelled)
        stopping.result()


def connection(settings: Settings) -> dict[str, Any]:
    """What every client needs to reach the cluster (``orchestrator/kafka/security.py``)."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **client_kwargs(settings)}


def make_admin(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**{**connection(settings), **overrides})


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    opts: dict[str, Any] = {
        **connection(settings),
        "acks": "all",
        "linger_ms": 2,
        "max_batch_size": 256 * 1024,
        # A record the topics cannot take is refused here (MessageSizeTooLargeError), at once,
        # instead of by the broker after retries: the caller dead-letters its input.
        "max_request_size": MAX_RECORD_BYTES,
        "request_timeout_ms": 10_000,
        "client_id": f"orchestrator-{settings.instance_id or 'p'}",
    }
    opts.update(overrides)
    return AIOKafkaProducer(**opts)


def group_name(settings: Settings, group_id: str) -> str:
    """A consumer group id scoped like the topics (``TOPIC_PREFIX`` + name).

    Two deployments that share a cluster under different prefixes must not share groups: one
    group spanning both would rebalance them together and hand one side's partitions to members
    that never subscribed to them.
    """
    return f"{settings.topic_prefix}{group_id}"


def make_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    opts: dict[str, Any] = {
        **connection(settings),
        "group_id": group_name(settings, group_id) if group_id else None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 2000,
        "fetch_max_wait_ms": 100,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": 1_000,
        # Only committed records: a transaction aborted by a crash or a fenced zombie is never
        # read. (Topics nobody writes transactionally cost nothing extra: their end is the same.)
        "isolation_level": "read_committed",
    }
    if settings.instance_id and group_id:
        # Static membership: a restarted pod with the same id rejoins without a rebalance.
        opts["group_instance_id"] = settings.instance_id
    opts.update(overrides)
    return Consumer(*topics, **opts)
