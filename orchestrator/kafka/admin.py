"""Create or verify the product's topics: shared by ``orchestrator broker``, tests and start-up.

Production start-up refuses to run when a required topic is missing (a typo in ``TOPIC_PREFIX``
would otherwise silently create a parallel universe), unless ``CREATE_TOPICS`` says to create them,
and when an existing topic breaks the contract (:mod:`orchestrator.kafka.topic_contract`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace

import anyio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from contracts.topics import TopicSpec, topics
from orchestrator.config import ConfigError, Settings
from orchestrator.kafka import topic_contract
from orchestrator.kafka.clients import make_admin
from orchestrator.kafka.topic_contract import Mismatch


class MissingTopicsError(ConfigError):
    """Required topics are absent and creating them was not allowed."""


class TopicContractError(ConfigError):
    """A topic exists but not as the product needs it (partitions, cleanup, size, replicas)."""


def product_topics(settings: Settings) -> tuple[TopicSpec, ...]:
    specs = topics(settings.topic_prefix, settings.topic_partitions)
    if settings.topic_replication_factor is not None:
        specs = tuple(
            replace(s, replication_factor=settings.topic_replication_factor) for s in specs
        )
    return specs


async def _existing(admin: AIOKafkaAdminClient) -> set[str]:
    names = await admin.list_topics()
    return set(names)


async def _led(admin: AIOKafkaAdminClient, names: list[str]) -> bool:
    """Every partition of every named topic exists and has a leader."""
    described = {t["topic"]: t for t in await admin.describe_topics(names)}
    for name in names:
        topic = described.get(name)
        if topic is None or topic["error_code"] != 0 or not topic["partitions"]:
            return False
        if any(p["error_code"] != 0 or p["leader"] < 0 for p in topic["partitions"]):
            return False
    return True


async def ensure_topics(
    settings: Settings,
    *,
    create: bool,
    specs: Iterable[TopicSpec] | None = None,
    timeout: float = 15.0,  # noqa: ASYNC109 - one deadline for connect + create + metadata wait
) -> list[str]:
    """Make sure every topic exists and keeps the contract; return the names created.

    Missing topics are created when ``create`` (else :class:`MissingTopicsError`); then every
    topic is checked (:mod:`orchestrator.kafka.topic_contract`) and a mismatch raises
    :class:`TopicContractError` naming each topic and what is wrong with it.
    """
    created, mismatches = await inspect_topics(
        settings, create=create, specs=specs, timeout=timeout
    )
    missing = [m for m in mismatches if m.problem == "missing"]
    if missing:
        names = ", ".join(sorted(m.topic for m in missing))
        raise MissingTopicsError(
            f"topics missing: {names} (set CREATE_TOPICS=true or run 'orchestrator topics ensure')"
        )
    if mismatches:
        raise TopicContractError("topic contract: " + "; ".join(str(m) for m in mismatches))
    return created


async def inspect_topics(
    settings: Settings,
    *,
    create: bool,
    specs: Iterable[TopicSpec] | None = None,
    timeout: float = 15.0,  # noqa: ASYNC109 - one deadline for connect + create + metadata wait
) -> tuple[list[str], list[Mismatch]]:
    """Create what is missing (if ``create``); return (created, every remaining mismatch)."""
    wanted = {s.name: s for s in (specs if specs is not None else product_topics(settings))}
    admin = make_admin(settings, request_timeout_ms=int(timeout * 1000))
    try:
        with anyio.fail_after(timeout):
            await admin.start()
    except (TimeoutError, KafkaConnectionError) as err:
        raise ConfigError(
            f"KAFKA_BOOTSTRAP_SERVERS: cannot reach {settings.kafka_bootstrap_servers} ({err})"
        ) from None
    try:
        existing = await _existing(admin)
        missing = [s for name, s in wanted.items() if name not in existing]
        created: list[str] = []
        if missing and create:
            new = [
                NewTopic(
                    name=s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    topic_configs=s.config,
                )
                for s in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica won the race
                await admin.create_topics(new)
            # Wait until every new partition has a leader, so producers and consumers started
            # right after neither race the metadata nor get NotLeaderForPartition.
            with anyio.fail_after(timeout):
                while True:
                    if await _led(admin, [s.name for s in missing]):
                        break
                    await anyio.sleep(0.05)
            created = [s.name for s in missing]
        facts = await topic_contract.describe(admin, wanted)
        return created, topic_contract.check(wanted.values(), facts)
    finally:
        await admin.close()
