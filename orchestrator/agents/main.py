"""The agents role: the runtime running :class:`~orchestrator.agents.app.AgentsApp`, and its health
port (9103 by default).

One consumer group, ``agents``, on the one-partition ``agents.control``: one member owns the pool
at a time; another member (a second replica) waits as a hot spare and takes over on a rebalance,
restoring the pool from ``agents.state`` like every runtime app. With ``exactly_once`` (the
default) the new owner fences the previous one before it reads the changelog, so a paused old
owner cannot reserve an agent the new one also reserves.
"""

from __future__ import annotations

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
from orchestrator.runtime.role import RuntimeRole

__all__ = ["AGENTS_GROUP", "AgentsService"]

log = get_logger("agents.service")

AGENTS_GROUP = "agents"


class AgentsService(RuntimeRole):
    role = "agents"
    reraise = True

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
        self._serve_health(health_port, health_host)
