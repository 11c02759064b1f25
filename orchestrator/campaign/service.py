"""The controller role: the runtime running :class:`ControllerApp`, the outcome relay, health.

Consumer groups: ``campaign-controller`` (campaign.control, state in campaign.state) and
``campaign-controller-outcomes`` (the relay). Both are stateless processes: any replica can take
over a campaign by restoring its state from the changelog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from contracts.topics import (
    CAMPAIGN_CONTROL,
    CAMPAIGN_RESULTS,
    CAMPAIGN_STATE,
    VOICE_COMMANDS,
    VOICE_DLQ,
)
from orchestrator.campaign.app import ControllerApp
from orchestrator.campaign.forward import OutcomeForwarder
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
                input_topic=f"{p}{CAMPAIGN_CONTROL.name}",
                changelog_topic=f"{p}{CAMPAIGN_STATE.name}",
                dlq_topic=f"{p}{VOICE_DLQ.name}",
                group_id=CONTROLLER_GROUP,
                # Its own input too: the clock ticks it writes (see orchestrator.campaign.app).
                output_topics=(
                    f"{p}{VOICE_COMMANDS.name}",
                    f"{p}{CAMPAIGN_RESULTS.name}",
                    f"{p}{CAMPAIGN_CONTROL.name}",
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
        self.forwarder = OutcomeForwarder(settings)
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
        self.forwarder.request_stop()

    async def run(self) -> None:
        """Run until :meth:`stop`; then drain, checkpoint and leave the groups."""
        if self.health is not None:
            await self.health.start()
        try:
            await self.runtime.start()
            tasks = [
                asyncio.create_task(self.runtime.run(), name="campaign-runtime"),
                asyncio.create_task(self.forwarder.run(), name="campaign-forwarder"),
            ]
            stop = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
            self.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            stop.cancel()
            for t in done:
                if t is not stop and t.exception() is not None:
                    log.error("controller task failed", error=str(t.exception()))
        finally:
            with contextlib.suppress(Exception):
                await self.runtime.close()
            if self.health is not None:
                await self.health.stop()
