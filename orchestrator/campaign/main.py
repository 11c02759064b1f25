"""The controller role: the runtime running :class:`ControllerApp`, and its health port.

One consumer group, ``campaign-controller``: it reads ``campaign.control`` (operators' requests,
its own clock ticks, and the results and outcomes of its campaigns' calls, which the dispatcher
and the worker write there directly) and keeps its state in ``campaign.state``. The process is
stateless: any replica can take over a campaign by restoring its state from the changelog.
"""

from __future__ import annotations

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
from orchestrator.runtime.role import RuntimeRole

__all__ = ["CONTROLLER_GROUP", "ControllerService"]

log = get_logger("campaign.controller")

CONTROLLER_GROUP = "campaign-controller"


class ControllerService(RuntimeRole):
    role = "controller"

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
        self._serve_health(health_port, health_host)
