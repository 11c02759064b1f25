"""``orchestrator soak`` (``make soak``, ``python -m orchestrator.sandbox.soak``): parameters by
option or environment. Only click and the standard library at import time (the main CLI imports
this module to register the command).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from orchestrator.sandbox.soak.run import SoakResult


@click.command("soak")
@click.option("--contacts", envvar="SOAK_CONTACTS", default=3000, show_default=True)
@click.option(
    "--duration",
    envvar="SOAK_DURATION",
    default=60.0,
    show_default=True,
    help="Target dialling time (s); the account CPS is contacts / duration.",
)
@click.option("--kill-interval", envvar="SOAK_KILL_INTERVAL", default=5.0, show_default=True)
@click.option("--kill-pause", envvar="SOAK_KILL_PAUSE", default=2.0, show_default=True)
@click.option(
    "--pause-interval",
    envvar="SOAK_PAUSE_INTERVAL",
    default=20.0,
    show_default=True,
    help="Every this many seconds, freeze a worker or dispatcher (SIGSTOP) past its session "
    "timeout, then wake it (SIGCONT); 0: never.",
)
@click.option("--workers", envvar="SOAK_WORKERS", default=3, show_default=True)
@click.option("--dispatchers", envvar="SOAK_DISPATCHERS", default=2, show_default=True)
@click.option("--ingresses", envvar="SOAK_INGRESSES", default=2, show_default=True)
@click.option("--time-scale", envvar="SOAK_TIME_SCALE", default=30.0, show_default=True)
@click.option("--seed", envvar="SOAK_SEED", default=7, show_default=True)
@click.option(
    "--fault",
    envvar="SOAK_FAULT",
    default=None,
    help="Deliberately broken variant (ORCHESTRATOR_FAULT of the product processes).",
)
@click.option(
    "--driver",
    envvar="SOAK_DRIVER",
    type=click.Choice(["campaign", "commands"]),
    default="campaign",
    show_default=True,
    help="campaign: a controller process dials a CSV; commands: the harness produces creates.",
)
@click.option(
    "--min-throughput-ratio",
    envvar="SOAK_MIN_THROUGHPUT_RATIO",
    default=0.8,
    show_default=True,
    help="Fail unless calls/s in the last tenth of the run is at least this share of the first.",
)
@click.option("--out", "out_dir", default="build/soak", show_default=True, type=Path)
def soak(
    contacts: int,
    duration: float,
    kill_interval: float,
    kill_pause: float,
    pause_interval: float,
    workers: int,
    dispatchers: int,
    ingresses: int,
    time_scale: float,
    seed: int,
    fault: str | None,
    driver: str,
    min_throughput_ratio: float,
    out_dir: Path,
) -> None:
    """Run the soak (kills, restarts, a faulty Voice API) and check the history; exit 1 on anomalies."""
    from orchestrator.sandbox.soak.run import SoakConfig, run_soak

    cfg = SoakConfig(
        contacts=contacts,
        duration=duration,
        kill_interval=kill_interval,
        kill_pause=kill_pause,
        pause_interval=pause_interval,
        workers=workers,
        dispatchers=dispatchers,
        ingresses=ingresses,
        time_scale=time_scale,
        seed=seed,
        product_fault=fault or None,
        driver=driver,
        min_throughput_ratio=min_throughput_ratio or None,
        out_dir=out_dir,
    )
    result = asyncio.run(_until_signalled(run_soak(cfg)))
    click.echo(result.render())
    sys.exit(0 if result.ok else 1)


async def _until_signalled(run: Coroutine[Any, Any, SoakResult]) -> SoakResult:
    """SIGTERM (and SIGINT, even where a shell started us with it ignored) cancels the run, so its
    cleanup stops every process it started instead of leaving them behind."""
    task = asyncio.ensure_future(run)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        raise click.Abort() from None
