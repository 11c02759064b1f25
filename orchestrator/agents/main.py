"""The agents role: the runtime running :class:`~orchestrator.agents.app.AgentsApp`, and its health
port (9103 by default).

One consumer group, ``agents``, on the one-partition ``agents.control``: one member owns the pool
at a time; another member (a second replica) waits as a hot spare and takes over on a rebalance,
restoring the pool from ``agents.state`` like every runtime app. With ``exactly_once`` (the
default) the new owner fences the previous one before it reads the changelog, so a paused old
owner cannot reserve an agent the new one also reserves.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry

from contracts.topics import (
    AGENTS_CONTROL,
    AGENTS_STATE,
    CAMPAIGN_CONTROL,
    VOICE_COMMANDS,
    VOICE_DLQ,
    topic_name,
)
from orchestrator.agents.app import AgentsApp
from orchestrator.config import Settings
from orchestrator.logs import get_logger
from orchestrator.runtime.engine import Runtime, RuntimeConfig
from orchestrator.runtime.health import HealthServer

__all__ = ["AGENTS_GROUP", "AgentsService"]

log = get_logger("agents.service")

AGENTS_GROUP = "agents"


class AgentsService:
    def __init__(
        self,
        settings: Settings,
        *,
        health_host: str = "0.0.0.0",
        health_port: int | None = 9103,
        registry: CollectorRegistry | None = None,
    ) -> None:
        p = settings.topic_prefix
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.app = AgentsApp(settings, registry=self.registry)
        self.runtime: Runtime[object, object] = Runtime(
            settings,
            self.app,  # type: ignore[arg-type]
            RuntimeConfig(
                input_topic=topic_name(AGENTS_CONTROL, p),
                changelog_topic=topic_name(AGENTS_STATE, p),
                dlq_topic=topic_name(VOICE_DLQ, p),
                group_id=AGENTS_GROUP,
                # Its own input too: the clock ticks it writes.
                output_topics=(
                    topic_name(VOICE_COMMANDS, p),
                    topic_name(CAMPAIGN_CONTROL, p),
                    topic_name(AGENTS_CONTROL, p),
                ),
                tick_s=0.02,
                commit_interval_s=0.2,
                retention_s=10 * 365 * 86400.0,
                exactly_once=settings.processing_guarantee == "exactly_once",
            ),
            registry=self.registry,
        )
        self.health: HealthServer | None = None
        if health_port is not None:
            self.health = HealthServer(
                self.registry,
                alive=self.runtime.alive,
                ready=self.runtime.ready,
                detail=self.runtime.detail,
                host=health_host,
                port=health_port,
            )
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()
        self.runtime.request_stop()

    async def run(self) -> None:
        """Run until :meth:`stop`; then drain, checkpoint and leave the group."""
        if self.health is not None:
            await self.health.start()
        try:
            await self.runtime.start()
            runtime = asyncio.create_task(self.runtime.run(), name="agents-runtime")
            stop = asyncio.create_task(self._stop.wait())
            await asyncio.wait([runtime, stop], return_when=asyncio.FIRST_COMPLETED)
            self.stop()
            await asyncio.gather(runtime, return_exceptions=True)
            stop.cancel()
            if not runtime.cancelled() and runtime.exception() is not None:
                log.error("agents task failed", error=str(runtime.exception()))
                raise runtime.exception()  # type: ignore[misc]
        finally:
            with contextlib.suppress(Exception):
                await self.runtime.close()
            if self.health is not None:
                await self.health.stop()
