"""``orchestrator campaign ...``: only click and the stdlib at import time (the CLI loads every role)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


@click.group()
def campaign() -> None:
    """Outbound campaigns: start, watch, pause, resume, cancel, export results; the controller."""


def _settings() -> Any:
    """Settings, and one connection to Kafka: a security mistake ends the command with one line
    naming the setting (orchestrator/kafka/preflight.py) instead of a retrying client."""
    import asyncio

    from orchestrator.config import load_settings
    from orchestrator.kafka.preflight import check_connection

    settings = load_settings()
    asyncio.run(check_connection(settings))
    return settings


@campaign.command("start")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--watch/--no-watch", default=False, help="Show live progress after starting.")
def start(file: Path, watch: bool) -> None:
    """Validate FILE (a campaign YAML) and start it."""
    import asyncio

    from contracts.campaign import CampaignFileError, load_campaign_file
    from orchestrator.campaign.operations import StartRefused, start_campaign

    settings = _settings()
    try:
        spec = load_campaign_file(file)
        started = asyncio.run(start_campaign(settings, spec, requested_by="cli"))
    except (CampaignFileError, StartRefused) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    for note in started.notes:
        click.echo(f"warning: {note}", err=True)
    total = started.contacts_total
    click.echo(f"started {spec.name}" + (f" ({total} contacts)" if total is not None else ""))
    if watch:
        asyncio.run(watch_status(settings, spec.name, follow=True))


def _control(name: str, action: str) -> None:
    import asyncio

    from contracts.campaign import ControlAction
    from orchestrator.campaign.operations import send_control

    asyncio.run(send_control(_settings(), name, ControlAction(action), requested_by="cli"))
    click.echo(f"{action} requested for {name}")


@campaign.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Stop new dials (calls in flight finish)."""
    _control(name, "pause")


@campaign.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Continue a paused campaign where it stopped."""
    _control(name, "resume")


@campaign.command("cancel")
@click.argument("name")
def cancel(name: str) -> None:
    """Stop for good: contacts not yet finished get the result ``cancelled``."""
    _control(name, "cancel")


@campaign.command("status")
@click.argument("name")
@click.option("--follow/--once", default=True, help="Live display until the campaign ends.")
def status(name: str, follow: bool) -> None:
    """Progress of campaign NAME: dialed, in flight, dispositions, dials/min, ETA."""
    import asyncio

    asyncio.run(watch_status(_settings(), name, follow=follow))


@campaign.command("results")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="results.csv or results.jsonl",
)
def results(name: str, out: Path) -> None:
    """Write one final result per contact of campaign NAME to --out (CSV or JSONL)."""
    import asyncio

    from orchestrator.campaign.operations import read_results, write_results

    found = asyncio.run(read_results(_settings(), name))
    write_results(found, out)
    click.echo(f"{len(found)} results written to {out}")


@campaign.command("controller")
@click.option("--health-port", default=9102, show_default=True, help="/healthz /readyz /metrics.")
@click.option("--health-host", default="0.0.0.0", show_default=True)
def controller(health_port: int, health_host: str) -> None:
    """Run the campaign controller role (long-running; state in Kafka)."""
    import asyncio
    import signal

    from orchestrator.campaign.main import ControllerService
    from orchestrator.kafka.admin import ensure_topics
    from orchestrator.logs import configure_logging

    settings = _settings()
    configure_logging(settings)

    async def main() -> None:
        await ensure_topics(settings, create=settings.create_topics)  # checked by _settings()
        service = ControllerService(settings, health_host=health_host, health_port=health_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    asyncio.run(main())


def progress_table(p: Any) -> Any:
    """A rich renderable for one :class:`CampaignProgress`."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    d = p.dispositions
    total = p.contacts_total
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_column(style="bold")
    t.add_column(justify="right")
    eta = p.eta_s
    rows = [
        (
            "status",
            str(p.status),
            "contacts",
            f"{p.finished}/{total if total is not None else '?'}",
        ),
        ("dialed", str(p.dialed), "in flight", f"{p.in_flight}/{p.max_concurrent}"),
        ("answered", str(d.get("answered", 0)), "machine", str(d.get("machine", 0))),
        (
            "busy",
            str(d.get("busy", 0)),
            "no answer",
            str(d.get("unanswered", 0) + d.get("timeout", 0)),
        ),
        (
            "failed",
            str(d.get("failed", 0) + d.get("rejected", 0)),
            "dnc / invalid",
            f"{d.get('dnc', 0)} / {d.get('invalid_number', 0)}",
        ),
        ("retries pending", str(p.retries_pending), "waiting for hours", str(p.waiting_for_hours)),
        (
            "dials/min",
            f"{p.dials_per_min:.0f} (limit {p.cps_limit * 60:.0f})",
            "ETA",
            "-" if eta is None else f"{eta:.0f} s",
        ),
    ]
    if d.get("cancelled") or d.get("expired"):
        rows.append(("cancelled", str(d.get("cancelled", 0)), "expired", str(d.get("expired", 0))))
    for r in rows:
        t.add_row(*r)
    bar = ProgressBar(
        total=float(total or max(p.finished, 1)), completed=float(p.finished), width=60
    )
    return Group(f"[bold]campaign {p.campaign}[/bold]", bar, t)


async def watch_status(settings: Any, name: str, *, follow: bool, wait_s: float = 10.0) -> None:
    import asyncio
    import time

    from rich.console import Console
    from rich.live import Live

    from orchestrator.campaign.operations import StateWatcher

    console = Console()
    async with StateWatcher(settings) as w:
        await w.refresh()
        t0 = time.monotonic()
        while w.progress(name) is None:
            if time.monotonic() - t0 > wait_s:
                console.print(f"no campaign named {name!r} (yet)")
                sys.exit(1)
            await asyncio.sleep(0.3)
            await w.refresh()
        p = w.progress(name)
        if not follow:
            console.print(progress_table(p))
            return
        with Live(progress_table(p), console=console, refresh_per_second=4) as live:
            while p is not None and p.status not in ("completed", "cancelled"):
                await asyncio.sleep(0.5)
                await w.refresh()
                p = w.progress(name) or p
                live.update(progress_table(p))
