"""The controller role: the runtime running :class:`ControllerApp`, and its health port.

One consumer group, ``campaign-controller``: it reads ``campaign.control`` (operators' requests,
its own clock ticks, and the results and outcomes of its campaigns' calls, which the dispatcher
and the worker write there directly) and keeps its state in ``campaign.state``. The process is
stateless: any replica can take over a campaign by restoring its state from the changelog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from contracts.topics import (
    AGENTS_CONTROL,
    CAMPAIGN_CONTROL,
    CAMPAIGN_RESULTS,
    CAMPAIGN_STATE,
    VOICE_COMMANDS,
    VOICE_DLQ,
    topic_name,
)
from orchestrator.campaign.controller import ControllerApp
from orchestrator.config import Settings
from orchestrator.logs import get_logger
from orchestrator.runtime.engine import Runtime, RuntimeConfig
from orchestrator.runtime.health import HealthServer

__all__ = ["CONTROLLER_GROUP", "ControllerService"]

log = get_logger("campaign.controller")

CONTROLLER_GROUP = "campaign-controller"


class ControllerService:
    def __init__(
        self,
        settings: Settings,
        *,
        health_host: str = "0.0.0.0",
        health_port: int | None = 9102,
        clock: Callable[[], float] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        p = settings.topic_prefix
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.app = ControllerApp(settings, clock=clock, registry=self.registry)
        self.runtime: Runtime[object, object] = Runtime(
            settings,
            self.app,  # type: ignore[arg-type]
            RuntimeConfig(
                input_topic=topic_name(CAMPAIGN_CONTROL, p),
                changelog_topic=topic_name(CAMPAIGN_STATE, p),
                dlq_topic=topic_name(VOICE_DLQ, p),
                group_id=CONTROLLER_GROUP,
                # Its own input too: the clock ticks it writes (see orchestrator.campaign.controller).
                output_topics=(
                    topic_name(VOICE_COMMANDS, p),
                    topic_name(CAMPAIGN_RESULTS, p),
                    topic_name(CAMPAIGN_CONTROL, p),
                    topic_name(AGENTS_CONTROL, p),  # agent campaigns: demand and reserve
                ),
                tick_s=0.02,
                commit_interval_s=0.3,
                retention_s=10 * 365 * 86400.0,
                # A campaign's state (calls in flight, contacts waiting) is one record; it stays
                # well under the 1 MB record limit (see the unit test). A larger record goes in a
                # batch of its own; batches never exceed the topics' max.message.bytes.
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
        """Run until :meth:`stop`; then drain, checkpoint and leave the groups."""
        if self.health is not None:
            await self.health.start()
        try:
            await self.runtime.start()
            runtime = asyncio.create_task(self.runtime.run(), name="campaign-runtime")
            stop = asyncio.create_task(self._stop.wait())
            await asyncio.wait([runtime, stop], return_when=asyncio.FIRST_COMPLETED)
            self.stop()
            await asyncio.gather(runtime, return_exceptions=True)
            stop.cancel()
            if not runtime.cancelled() and runtime.exception() is not None:
                log.error("controller task failed", error=str(runtime.exception()))
        finally:
            with contextlib.suppress(Exception):
                await self.runtime.close()
            if self.health is not None:
                await self.health.stop()
