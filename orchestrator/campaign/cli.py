"""``orchestrator campaign ...``: only click and the stdlib at import time (the CLI loads every role)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


class _CampaignGroup(click.Group):
    """A broker that is down, or goes away during a command, ends it with one line and exit 1.

    An operator who typed ``campaign status`` with the broker stopped got aiokafka's traceback;
    the commands are one-shot, so there is nothing to wait for: say which servers, and stop.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as err:
            from aiokafka.errors import KafkaError

            from orchestrator.kafka.preflight import BrokerUnreachable, denied_by_acls

            if isinstance(err, BrokerUnreachable):
                click.echo(f"error: {err}", err=True)
                sys.exit(1)
            if isinstance(err, KafkaError) and denied_by_acls(err) is None:
                click.echo(f"error: Kafka: {type(err).__name__}: {err}", err=True)
                sys.exit(1)
            raise


@click.group(cls=_CampaignGroup)
def campaign() -> None:
    """Outbound campaigns: validate, start, watch, list, pause, resume, cancel, results."""


def _settings(*, required: bool = True) -> Any:
    """Settings, and one connection to Kafka: a security mistake ends the command with one line
    naming the setting (orchestrator/kafka/preflight.py) instead of a retrying client, and so
    does a broker nobody answers at (``required``: every command but the controller role)."""
    import asyncio

    from orchestrator.config import load_settings
    from orchestrator.kafka.preflight import check_connection

    settings = load_settings()
    asyncio.run(check_connection(settings, timeout=5.0, required=required))
    return settings


def _echo_json(doc: Any) -> None:
    import orjson

    click.echo(orjson.dumps(doc).decode())


def _report(file: Path, flows_dir: Path | None) -> Any:
    """The validation :class:`Report` of FILE, or the lines of a file that does not parse."""
    from contracts.campaign import CampaignFileError, load_campaign_document
    from orchestrator.campaign.validate import validate_campaign
    from orchestrator.clock import utc_now
    from orchestrator.config import load_settings

    try:
        doc = load_campaign_document(file)
    except CampaignFileError as err:
        return str(err).splitlines()
    flow_names = None
    if flows_dir is not None:
        from contracts.flow import FlowError
        from orchestrator.ingress.flows import load_flows

        try:
            flow_names = set(load_flows(flows_dir).by_name)
        except FlowError as err:
            return [str(err)]
    settings = load_settings()
    return validate_campaign(
        doc,
        now=utc_now(),
        public_base=settings.public_base,
        account_cps=settings.vonage_cps,
        flow_names=flow_names,
    )


def _validate(file: Path, flows_dir: Path | None, as_json: bool) -> bool:
    """Run ``validate`` on FILE and print it; True when it found no error."""
    from orchestrator.campaign.validate_print import print_report

    report = _report(file, flows_dir)
    if isinstance(report, list):
        if as_json:
            _echo_json({"ok": False, "errors": [{"text": t} for t in report]})
        for line in report:
            click.echo(f"error: {line}", err=True)
        return False
    if as_json:
        _echo_json(report.to_json())
    else:
        print_report(report)
    return bool(report.ok)


_FLOWS = click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    envvar="ORCHESTRATOR_FLOWS",
    help="The ingress's flow directory, to check flow names (env ORCHESTRATOR_FLOWS).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@campaign.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_FLOWS
@_JSON
def validate(file: Path, flows_dir: Path | None, as_json: bool) -> None:
    """Check FILE and its contacts without dialling; exit 1 on any error.

    Names file, line and field (or contact row and column) for each mistake; shows the DNC and
    invalid counts, three rendered NCCOs, the retries and the estimated duration. Needs no broker.
    """
    if not _validate(file, flows_dir, as_json):
        sys.exit(1)


@campaign.command("start")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--watch/--no-watch", default=False, help="Show live progress after starting.")
@click.option("--dry-run", is_flag=True, help="Only validate (as `campaign validate`); no dial.")
@_FLOWS
def start(file: Path, watch: bool, dry_run: bool, flows_dir: Path | None) -> None:
    """Validate FILE (a campaign YAML) and start it."""
    import asyncio

    from contracts.campaign import CampaignFileError, load_campaign_file
    from orchestrator.campaign.operations import StartRefused, start_campaign

    if dry_run:
        sys.exit(0 if _validate(file, flows_dir, as_json=False) else 1)
    # The same checks as `validate`: a mistake found now costs no call (issue 14).
    report = _report(file, flows_dir)
    errors = report if isinstance(report, list) else report.lines()
    for line in errors:
        click.echo(f"error: {line}", err=True)
    if errors:
        click.echo(
            f"not started: `orchestrator campaign validate {file}` shows the report", err=True
        )
        sys.exit(2)
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
        asyncio.run(watch_status(settings, spec.name, follow=True, as_json=False))


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
@click.option(
    "--follow/--once",
    default=None,
    help="Live display until the campaign ends (default: follow on a terminal, once when piped).",
)
@_JSON
def status(name: str, follow: bool | None, as_json: bool) -> None:
    """Progress of campaign NAME: dialed, in flight, dispositions, retries, dials/min, ETA."""
    import asyncio

    if follow is None:
        follow = sys.stdout.isatty()
    asyncio.run(watch_status(_settings(), name, follow=follow, as_json=as_json))


@campaign.command("list")
@_JSON
def list_(as_json: bool) -> None:
    """Every campaign on campaign.state, with its status and progress."""
    import asyncio

    from orchestrator.campaign.operations import list_campaigns

    found = asyncio.run(list_campaigns(_settings()))
    if as_json:
        _echo_json([progress_json(p) for p in found])
        return
    from orchestrator.campaign.console import make_console

    make_console().print(campaigns_table(found))


@campaign.command("results")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="results.csv or results.jsonl (or --json for JSON lines on stdout)",
)
@_JSON
def results(name: str, out: Path | None, as_json: bool) -> None:
    """Write one final result per contact of campaign NAME to --out (CSV or JSONL).

    A campaign still running has results for the contacts finished so far only; the command
    says so on stderr.
    """
    import asyncio

    from orchestrator.campaign.operations import read_results, results_jsonl, write_results

    if out is None and not as_json:
        raise click.UsageError("give --out FILE, or --json for JSON lines on stdout")
    settings = _settings()

    async def read() -> tuple[Any, Any]:
        from orchestrator.campaign.operations import StateWatcher

        async with StateWatcher(settings) as w:
            await w.refresh()
            progress = w.progress(name)
        return progress, await read_results(settings, name)

    progress, found = asyncio.run(read())
    if progress is None and not found:
        click.echo(f"error: no campaign named {name!r}", err=True)
        sys.exit(1)
    if progress is not None and progress.status not in ("completed", "cancelled"):
        total = progress.contacts_total
        click.echo(
            f"warning: campaign {name} is {progress.status}: results are partial "
            f"({len(found)} of {total if total is not None else '?'} contacts final)",
            err=True,
        )
    if out is None:
        for line in results_jsonl(found):
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        return
    write_results(found, out)
    click.echo(f"{len(found)} results written to {out}")


@campaign.command("controller")
@click.option("--health-port", default=9102, show_default=True, help="/healthz /readyz /metrics.")
@click.option("--health-host", default="0.0.0.0", show_default=True)
def controller(health_port: int, health_host: str) -> None:
    """Run the campaign controller role (long-running; state in Kafka)."""
    import asyncio

    from orchestrator.campaign.main import ControllerService
    from orchestrator.kafka.admin import ensure_topics
    from orchestrator.logs import configure_logging
    from orchestrator.runtime.shutdown import stop_on_signals

    settings = _settings(required=False)  # a role: ensure_topics names the servers it cannot reach
    configure_logging(settings)

    async def main() -> None:
        await ensure_topics(settings, create=settings.create_topics)  # checked by _settings()
        service = ControllerService(settings, health_host=health_host, health_port=health_port)
        stop_on_signals(asyncio.get_running_loop(), service.stop, role="controller")
        await service.run()

    asyncio.run(main())


def progress_json(p: Any) -> dict[str, Any]:
    """A :class:`CampaignProgress` as the control API shows it (with ``eta_s``)."""
    body: dict[str, Any] = p.model_dump(mode="json")
    body["eta_s"] = p.eta_s
    return body


def _when(due: Any, now: Any) -> str:
    if due is None:
        return "-"
    left = (due - now).total_seconds()
    rel = (
        "due now" if left <= 0 else f"in {left / 60:.0f} min" if left >= 60 else f"in {left:.0f} s"
    )
    return f"{due:%H:%M:%S} UTC ({rel})"


def progress_table(p: Any) -> Any:
    """A rich renderable for one :class:`CampaignProgress`, laid out for 80 columns."""
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
    a = p.agents
    if a is not None:
        rate = "-" if a.abandon_rate is None else f"{a.abandon_rate * 100:.1f} %"
        occ = "-" if a.occupancy is None else f"{a.occupancy * 100:.0f} %"
        wait = "-" if a.mean_wait_s is None else f"{a.mean_wait_s:.1f} s"
        per_hour = "-" if a.calls_per_agent_hour is None else f"{a.calls_per_agent_hour:.1f}"
        rows += [
            ("agents free", str(a.agents_free), "agents busy", str(a.agents_busy)),
            ("connected", str(a.connected), "abandoned", f"{a.abandoned} ({rate})"),
            ("wait for agent", wait, "occupancy", occ),
            ("calls/agent-hour", per_hour, "callers waiting", str(a.callers_waiting)),
        ]
    for r in rows:
        t.add_row(*r)
    # In a grid of its own: a bare ProgressBar narrower than the console ends no line, and the
    # table's first row was printed after it, past the 80th column.
    bar = Table.grid()
    bar.add_row(
        ProgressBar(total=float(total or max(p.finished, 1)), completed=float(p.finished), width=60)
    )
    lines: list[Any] = [f"[bold]campaign {p.campaign}[/bold]", bar, t]
    if p.retries_pending:
        waiting = ", ".join(f"{k} {v}" for k, v in sorted(p.retries_pending_by_disposition.items()))
        lines.append(f"[bold]next retry[/bold]  {_when(p.next_retry_at, p.at)}")
        lines.append(f"[bold]retries waiting[/bold]  {waiting or p.retries_pending}")
    return Group(*lines)


def _n(x: int) -> str:
    """A count in at most six characters (list columns stay narrow at any campaign size)."""
    if x < 100_000:
        return str(x)
    if x < 999_500:
        return f"{x / 1000:.0f}k"
    return f"{x / 1_000_000:.1f}M"


def campaigns_table(found: list[Any]) -> Any:
    """``campaign list``: one row per campaign, laid out for 80 columns (long names fold)."""
    from rich.table import Table

    t = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False)
    t.add_column("campaign", max_width=18, overflow="fold")
    t.add_column("status", no_wrap=True)
    for name in ("contacts", "dialed", "in flight", "retries"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("started", no_wrap=True)
    for p in found:
        total = p.contacts_total
        t.add_row(
            p.campaign,
            str(p.status),
            f"{_n(p.finished)}/{_n(total) if total is not None else '?'}",
            _n(p.dialed),
            _n(p.in_flight),
            _n(p.retries_pending),
            f"{p.started_at:%m-%d %H:%M}" if p.started_at else "-",
        )
    return t


async def watch_status(
    settings: Any, name: str, *, follow: bool, as_json: bool, wait_s: float = 10.0
) -> None:
    """Print NAME's progress once, or follow it until it ends (a live table, or JSON lines)."""
    import asyncio
    import time

    from rich.live import Live

    from orchestrator.campaign.console import make_console
    from orchestrator.campaign.operations import StateWatcher

    console = make_console()
    async with StateWatcher(settings) as w:
        await w.refresh()
        t0 = time.monotonic()
        while w.progress(name) is None:
            if time.monotonic() - t0 > wait_s:
                click.echo(f"error: no campaign named {name!r} (yet)", err=True)
                sys.exit(1)
            await asyncio.sleep(0.3)
            await w.refresh()
        p = w.progress(name)
        if as_json:
            last = None
            while p is not None:
                if p != last:
                    _echo_json(progress_json(p))
                    last = p
                if not follow or p.status in ("completed", "cancelled"):
                    return
                await asyncio.sleep(0.5)
                await w.refresh()
                p = w.progress(name) or p
            return
        if not follow:
            console.print(progress_table(p))
            return
        with Live(progress_table(p), console=console, refresh_per_second=4) as live:
            while p is not None and p.status not in ("completed", "cancelled"):
                await asyncio.sleep(0.5)
                await w.refresh()
                p = w.progress(name) or p
                live.update(progress_table(p))
