"""Agent operations for the CLI and the control API: change an agent's state, read the pool.

A state change is an :class:`~contracts.agents.AgentCommand` on ``agents.control`` (key = agent
id) with a fresh event id; the pool is the latest record of ``agents.state`` (key ``pool``),
read like ``campaign status`` reads ``campaign.state``. Neither needs the agents role to answer.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from contracts.agent_calls import AgentPoolSnapshot
from contracts.agents import Agent, AgentAction, AgentCommand
from contracts.topics import AGENTS_CONTROL, AGENTS_STATE, topic_name
from orchestrator.clock import utc_now
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.kafka.headers import record_headers
from orchestrator.kafka.reading import partitions_of, read_to_end

__all__ = ["PoolWatcher", "agent_command", "read_pool", "send_agent_command"]


def agent_command(
    agent_id: str,
    action: AgentAction,
    *,
    profile: Agent | None = None,
    requested_by: str | None = None,
) -> AgentCommand:
    """A command with a fresh event id (each request is a new event; a redelivery is not)."""
    return AgentCommand(
        id=f"agc-{uuid.uuid4().hex}",
        occurred_at=utc_now(),
        agent_id=agent_id,
        action=action,
        agent=profile,
        requested_by=requested_by,
    )


async def send_agent_command(settings: Settings, cmd: AgentCommand) -> AgentCommand:
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_name(AGENTS_CONTROL, settings.topic_prefix),
            cmd.to_bytes(),
            key=cmd.agent_id.encode(),
            headers=record_headers("AgentCommand", cmd.schema_version, None),
        )
    finally:
        await producer.stop()
    return cmd


class PoolWatcher:
    """Follows ``agents.state``: the latest pool snapshot, read incrementally."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topic_name(AGENTS_STATE, settings.topic_prefix)
        self.raw: dict[str, Any] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []
        self._started = False

    async def __aenter__(self) -> PoolWatcher:
        self._consumer = make_consumer(
            self.settings, group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024
        )
        await self._consumer.start()
        self._tps = await partitions_of(self._consumer, self.topic)
        self._consumer.assign(self._tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def refresh(self) -> AgentPoolSnapshot | None:
        assert self._consumer is not None

        def each(_: TopicPartition, records: list[Any]) -> None:
            for m in records:
                if m.value is None:
                    self.raw = None
                    continue
                try:
                    self.raw = orjson.loads(m.value)["state"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue

        start: Literal["current", "beginning"] = "current" if self._started else "beginning"
        await read_to_end(self._consumer, self._tps, each, start=start)
        self._started = True
        return self.snapshot()

    def snapshot(self) -> AgentPoolSnapshot | None:
        return AgentPoolSnapshot.model_validate(self.raw) if self.raw is not None else None


async def read_pool(settings: Settings) -> AgentPoolSnapshot | None:
    """The pool as ``agents.state`` last recorded it (None: no agent ever logged in)."""
    async with PoolWatcher(settings) as w:
        return await w.refresh()
