"""Process entry of ``orchestrator worker``: settings, topics, runtime, health port, signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from contracts.topics import (
    AGENTS_CONTROL,
    CAMPAIGN_CONTROL,
    VOICE_COMMANDS,
    VOICE_DLQ,
    VOICE_EVENTS,
    VOICE_OUTCOMES,
    VOICE_STATE,
    topic_name,
)
from contracts.voice_state import VoiceState
from handlers.voice import SettleConfig
from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.kafka.preflight import check_connection
from orchestrator.logs import configure_logging, get_logger
from orchestrator.runtime import FatalError, HealthServer, Runtime, RuntimeConfig
from orchestrator.runtime.process import tune_gc
from orchestrator.runtime.shutdown import SHUTDOWN_BUDGET_S, bounded, stop_on_signals
from orchestrator.worker.voice_app import VoiceApp

__all__ = ["GROUP_ID", "WorkerOptions", "make_runtime", "run_worker", "runtime_config", "serve"]

GROUP_ID = "voice-worker"


@dataclass(frozen=True)
class WorkerOptions:
    health_port: int = 9100
    health_host: str = "0.0.0.0"
    concurrency: int = 64
    settle_s: float = 1.0
    completed_grace_s: float = 30.0
    abandon_after_s: float = 25 * 3600.0
    retention_s: float = 300.0
    commit_interval_s: float = 0.5
    group_id: str = GROUP_ID


def runtime_config(settings: Settings, opts: WorkerOptions) -> RuntimeConfig:
    prefix = settings.topic_prefix
    return RuntimeConfig(
        input_topic=topic_name(VOICE_EVENTS, prefix),
        changelog_topic=topic_name(VOICE_STATE, prefix),
        dlq_topic=topic_name(VOICE_DLQ, prefix),
        group_id=opts.group_id,
        # A campaign call's outcomes go to its campaign's partition of campaign.control too;
        # an agent campaign's milestones there, its legs' facts to agents.control.
        output_topics=tuple(
            topic_name(t, prefix)
            for t in (VOICE_OUTCOMES, VOICE_COMMANDS, CAMPAIGN_CONTROL, AGENTS_CONTROL)
        ),
        concurrency=opts.concurrency,
        commit_interval_s=opts.commit_interval_s,
        retention_s=opts.retention_s,
        exactly_once=settings.processing_guarantee == "exactly_once",
    )


def make_runtime(
    settings: Settings, opts: WorkerOptions, registry: CollectorRegistry | None = None
) -> Runtime[VoiceState, dict[str, Any]]:
    """The worker's runtime, not started: for hosts that run several roles in one process.

    The caller owns its lifecycle: ``await rt.start()``, ``await rt.run()`` (returns after
    ``rt.request_stop()``), ``await rt.close()``; ``rt.alive``/``rt.ready`` feed health checks.
    """
    app = VoiceApp(
        settings.topic_prefix,
        settle_s=opts.settle_s,
        settle=SettleConfig(
            completed_grace_s=opts.completed_grace_s, abandon_after_s=opts.abandon_after_s
        ),
    )
    return Runtime(settings, app, runtime_config(settings, opts), registry)


async def serve(settings: Settings, opts: WorkerOptions) -> int:
    """Run until SIGTERM/SIGINT; return the exit code (0: clean stop, 1: fatal error)."""
    log = get_logger("orchestrator.worker")
    await check_connection(settings)  # a security mistake: one line naming the setting
    await ensure_topics(settings, create=settings.create_topics)
    tune_gc()
    registry = CollectorRegistry()
    runtime = make_runtime(settings, opts, registry)
    health = HealthServer(
        registry,
        alive=runtime.alive,
        ready=runtime.ready,
        detail=runtime.detail,
        host=opts.health_host,
        port=opts.health_port,
    )
    await health.start()
    loop = asyncio.get_running_loop()

    def _on_stop() -> None:
        if not runtime.stopping:
            log.info("stopping")
        runtime.request_stop()

    watch = stop_on_signals(loop, _on_stop, role="worker")
    code = 0
    try:
        await runtime.start()
        log.info("worker ready to consume", health_port=health.port, group=opts.group_id)
        await runtime.run()
    except FatalError as err:
        log.error("fatal: stopping so the records are replayed after restart", error=str(err))
        code = 1
    finally:
        stop_at = watch.armed_at
        budget = SHUTDOWN_BUDGET_S - 1 - (time.monotonic() - stop_at if stop_at is not None else 0)
        try:
            await bounded(runtime.close(), max(budget, 1), what="worker close")
        except TimeoutError:
            log.error("shutdown exceeded its budget", budget_s=SHUTDOWN_BUDGET_S)
            code = code or 1
        await health.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    if stop_at is not None:
        log.info("worker stopped", shutdown_s=round(time.monotonic() - stop_at, 3), exit_code=code)
    return code


def run_worker(settings: Settings, opts: WorkerOptions) -> int:
    configure_logging(settings)
    try:
        import uvloop

        return uvloop.run(serve(settings, opts))
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        return asyncio.run(serve(settings, opts))
