"""``orchestrator worker``: the voice state machines on ``voice.events`` (imports stay lazy)."""

from __future__ import annotations

import sys

import click


@click.command("worker")
@click.option(
    "--health-port",
    default=9100,
    show_default=True,
    envvar="WORKER_HEALTH_PORT",
    help="Port of /healthz, /readyz and /metrics.",
)
@click.option("--health-host", default="0.0.0.0", show_default=True, envvar="WORKER_HEALTH_HOST")
@click.option(
    "--concurrency",
    default=64,
    show_default=True,
    envvar="WORKER_CONCURRENCY",
    help="Keys processed at once by async handlers (the voice machines run inline).",
)
@click.option(
    "--settle-ms",
    default=1000,
    show_default=True,
    envvar="WORKER_SETTLE_MS",
    help="Quiet time before a flow's final outcomes are emitted.",
)
@click.option(
    "--retention-s",
    default=300.0,
    show_default=True,
    envvar="WORKER_RETENTION_S",
    help="Finished flows stay in memory (and on voice.state) this long.",
)
@click.option(
    "--completed-grace-s",
    default=30.0,
    show_default=True,
    envvar="WORKER_COMPLETED_GRACE_S",
    help="Wait for a failure status after a bare 'completed'.",
)
@click.option(
    "--abandon-after-s",
    default=90000.0,
    show_default=True,
    envvar="WORKER_ABANDON_AFTER_S",
    help="Close flows quiet this long as 'unknown'.",
)
@click.option(
    "--commit-interval-ms",
    default=500,
    show_default=True,
    envvar="WORKER_COMMIT_INTERVAL_MS",
    help="Checkpoint period.",
)
@click.option(
    "--group-id",
    default="voice-worker",
    show_default=True,
    envvar="WORKER_GROUP_ID",
    help="Consumer group (replicas of one deployment share it).",
)
def worker(
    health_port: int,
    health_host: str,
    concurrency: int,
    settle_ms: int,
    retention_s: float,
    completed_grace_s: float,
    abandon_after_s: float,
    commit_interval_ms: int,
    group_id: str,
) -> None:
    """Run the per-call state machines: voice.events -> voice.outcomes / voice.commands."""
    from orchestrator.config import load_settings
    from orchestrator.worker.main import WorkerOptions, run_worker

    opts = WorkerOptions(
        health_port=health_port,
        health_host=health_host,
        concurrency=concurrency,
        settle_s=settle_ms / 1000,
        completed_grace_s=completed_grace_s,
        abandon_after_s=abandon_after_s,
        retention_s=retention_s,
        commit_interval_s=commit_interval_ms / 1000,
        group_id=group_id,
    )
    sys.exit(run_worker(load_settings(), opts))
