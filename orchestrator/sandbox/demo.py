"""``orchestrator demo`` (``make demo``): a whole campaign on a laptop in about a minute.

It starts the local Apache Kafka and the Voice API simulator (CPS raised, calls time-scaled, a
realistic outcome mix), runs every role in this process (``orchestrator run``), starts
``examples/demo-campaign.yaml`` (about 1,000 contacts, TTS with the contact's name, an IVR
choice, AMD with voicemail drop, retries, DNC numbers), shows live progress, then prints a
summary checked against the simulator's ledger and where the results file is. Only click and the
stdlib are imported at module level.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

__all__ = ["DEMO_ANCHOR", "demo", "write_demo_files"]

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_FILE = ROOT / "examples" / "demo-campaign.yaml"

#: The demo's controller clock starts here (a Tuesday, 17:00 UTC): business hours in New York,
#: Chicago, Los Angeles and London, night in Sydney, whatever the time on the machine.
DEMO_ANCHOR = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)

DEMO_CPS = 20.0
TIME_SCALE = 10.0

_FIRST = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Femi", "Grace", "Hugo", "Ines", "Jon", "Kai",
          "Lena", "Maya", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
          "Wes", "Xena", "Yusuf", "Zoe"]  # fmt: skip
_LAST = ["Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
         "Jones", "Khan", "Lopez", "Murphy", "Nowak", "Okafor", "Patel", "Rossi", "Silva"]  # fmt: skip
_AREAS = ["212", "312", "415", "617", "305", "206"]  # NY, Chicago, SF, Boston, Miami, Seattle


def write_demo_files(directory: Path, n: int = 1000, seed: int = 7) -> tuple[Path, Path]:
    """The demo contact list and DNC list, generated deterministically (same seed, same files)."""
    rnd = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str, str]] = []
    for i in range(n):
        name = f"{rnd.choice(_FIRST)} {rnd.choice(_LAST)}"
        day = (DEMO_ANCHOR + timedelta(days=rnd.randint(2, 20))).strftime("%A %d %B")
        if i % 10 == 9:  # UK mobiles (drama range, Europe/London)
            number, tz = f"+44 7700 9{i:05d}", ""
        elif i % 200 == 57:  # Sydney mobiles: outside calling hours at the demo's clock
            number, tz = f"+61 412 {i:06d}", ""
        else:
            number, tz = f"({rnd.choice(_AREAS)}) 555-{i % 10000:04d}", ""
        rows.append((number, name, tz, day))
    for i, (bad, who) in zip(
        (n * 123 // 1000, n * 456 // 1000, n * 789 // 1000),
        (("not-a-number", "Nobody"), ("12", "Too Short"), ("+1 415 555", "Cut Off")),
        strict=True,
    ):
        rows[i] = (bad, who, "", rows[i][3])
    contacts = directory / "contacts.csv"
    with contacts.open("w", encoding="utf-8") as fh:
        fh.write("number,name,timezone,date\n")
        for number, name, tz, day in rows:
            fh.write(f'"{number}",{name},{tz},{day}\n')
    # DNC numbers written in other spellings than the list uses: matching is on E.164.
    picks = sorted(rnd.sample(range(n), 12))
    dnc = directory / "dnc.txt"
    with dnc.open("w", encoding="utf-8") as fh:
        fh.write(
            "# Do-not-call list of the demo (any spelling; matched after E.164 normalisation)\n"
        )
        for i in picks:
            number = rows[i][0]
            digits = "".join(ch for ch in number if ch.isdigit())
            if number.startswith("+44"):
                fh.write(f"0044{digits[2:]}\n")
            elif number.startswith("+61"):
                fh.write(f"+{digits}\n")
            elif number.startswith("("):
                fh.write(f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}\n")
            else:
                fh.write(f"{number}\n")
    return contacts, dnc


def _profile(seed: int) -> dict[str, Any]:
    """A realistic mix; telephony times are simulated seconds (TIME_SCALE x faster)."""
    return {
        "seed": seed,
        "outcomes": {
            "human": 60,
            "machine": 14,
            "busy": 8,
            "unanswered": 9,
            "rejected": 1,
            "failed": 3,
            "timeout": 3,
            "cancelled": 2,
        },
        "timing": {
            "setup": [0.2, 0.8],
            "ring": [3, 12],
            "ring_fail": [2, 8],
            "talk": [10, 40],
            "machine_talk": [15, 25],
            "amd": [1.5, 3],
        },
        "input": {
            "dtmf": [
                {"digits": "1", "weight": 6, "delay": [1, 3]},
                {"digits": "2", "weight": 2, "delay": [1, 3]},
                {"digits": "", "weight": 1},
            ]
        },
        "amd": {"accuracy": 0.97, "beep_probability": 0.85},
        "events": {
            "reorder_started_ringing": 0.15,
            "reorder_final_completed": 0.15,
            "duplicate": 0.02,
        },
        "faults": {"endpoints": {"create_call": {"error_rate": 0.005, "error_status": 503}}},
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


async def _latencies(settings: Any) -> list[float]:
    """Webhook received (ingress) -> applied to the call's state (worker), from the topics.

    Each ``voice.state`` record names the ``voice.events`` offset it covers and when the key was
    last touched; the event at that offset says when the ingress received the webhook.
    """
    import orjson
    from aiokafka import ConsumerRecord, TopicPartition

    from contracts.topics import VOICE_EVENTS, VOICE_STATE, topic_name
    from orchestrator.kafka.clients import make_consumer
    from orchestrator.kafka.reading import partitions_of, read_to_end

    received: dict[tuple[int, int], float] = {}
    applied: list[tuple[int, int, float]] = []

    def on_events(tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for m in records:
            doc = orjson.loads(m.value) if m.value is not None else {}
            if doc.get("type") == "vonage.webhook":
                t = datetime.fromisoformat(doc["received_at"]).timestamp()
                received[(tp.partition, m.offset)] = t

    def on_state(tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for m in records:
            doc = orjson.loads(m.value) if m.value is not None else {}
            if isinstance(doc.get("offset"), int) and doc.get("at"):
                applied.append((tp.partition, doc["offset"], float(doc["at"])))

    consumer = make_consumer(settings, group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:  # the run is over, so nobody writes these partitions any more
        for spec, on in ((VOICE_EVENTS, on_events), (VOICE_STATE, on_state)):
            topic = topic_name(spec, settings.topic_prefix)
            await read_to_end(consumer, await partitions_of(consumer, topic), on, within=120.0)
    finally:
        await consumer.stop()
    return [max(0.0, at - received[(p, off)]) for p, off, at in applied if (p, off) in received]


def summarise(results: list[Any], ledger: dict[str, Any], latencies: list[float], cps: float,
              campaign: str) -> tuple[Any, list[str]]:  # fmt: skip
    """The summary table and the list of disagreements with the ledger (empty: all agree)."""
    from collections import Counter

    from rich.table import Table

    from orchestrator.sandbox.cps_used import cps_use, first_attempt_span, max_in_window

    prefix = f"{campaign}."
    calls = [c for c in ledger["calls"] if (c.get("call_ref") or "").startswith(prefix)]
    creates = [
        r
        for r in ledger["requests"]
        if r.get("op") == "create_call" and r.get("auth_ok") is not False
    ]
    created = [r for r in creates if r.get("status") == 201]
    throttled = sum(1 for r in ledger["requests"] if r.get("status") == 429)
    faults = sum(1 for r in creates if r.get("status", 0) >= 500)

    disp = Counter(r.disposition for r in results)
    attempts = sum(r.attempts for r in results)
    attempt_hist = Counter(r.attempts for r in results if r.attempts)
    problems: list[str] = []
    # Every attempt the campaign counts is a call the simulator created, and no call_ref twice.
    refs = [c["call_ref"] for c in calls]
    if len(refs) != len(set(refs)):
        problems.append(f"{len(refs) - len(set(refs))} call_refs created twice")
    result_refs = {ref for r in results for ref in r.call_refs}
    missing = set(refs) - result_refs
    if missing:
        problems.append(f"{len(missing)} created calls missing from the results")
    by_ref = {c["call_ref"]: c for c in calls}
    mismatched = 0
    for r in results:
        if not r.call_refs or r.disposition in ("cancelled", "expired"):
            continue
        c = by_ref.get(r.call_refs[-1])
        if c is None:
            if r.detail not in ("no_outcome",) and r.disposition != "failed":
                mismatched += 1
            continue
        status = c.get("status")
        expected = {
            "answered": {"completed", "answered", "human"},
            "machine": {"completed", "answered", "machine"},
            "busy": {"busy"},
            "unanswered": {"unanswered", "cancelled"},
            "timeout": {"timeout"},
            "rejected": {"rejected"},
            "failed": {"failed", "rejected"},
        }.get(str(r.disposition), set())
        if status not in expected:
            mismatched += 1
    if mismatched:
        problems.append(f"{mismatched} final dispositions differ from the ledger's call status")

    t = Table(title=f"campaign {campaign}: summary (checked against the simulator's ledger)")
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    for k in ("answered", "machine", "busy", "unanswered", "timeout", "failed", "rejected",
              "dnc", "invalid_number", "expired", "cancelled"):  # fmt: skip
        if disp.get(k):
            t.add_row(f"contacts {k}", str(disp[k]))
    t.add_row("contacts total", str(len(results)))
    t.add_row(
        "dial attempts",
        f"{attempts} (" + ", ".join(f"{k}x: {v}" for k, v in sorted(attempt_hist.items())) + ")",
    )
    t.add_row("calls created (ledger)", str(len(calls)))
    times = [r["t"] for r in created]
    if len(times) > 1:
        span = max(times) - min(times)
        t.add_row(
            "achieved CPS",
            f"{len(times) / max(span, 1e-9):.1f} avg, {max_in_window(times)} max in any 1 s "
            f"(limit {cps:g})",
        )
    span_times, span_start, span_end = first_attempt_span(ledger, campaign)
    if span_end > span_start:
        use = cps_use(span_times, cps, start=span_start, end=span_end)
        t.add_row(
            "CPS used while contacts were waiting",
            f"{use.mean:.1%} (worst 10 s window {use.worst_window:.1%}, "
            f"{use.max_1s} max in any 1 s; {span_end - span_start:.0f} s, simulator's ledger)",
        )
    answers: dict[str, Counter[str]] = {}
    for r in results:
        for key, value in r.captures.items():
            if "." not in key and not key.startswith("recording_url"):
                answers.setdefault(key, Counter())[value] += 1
    for key, counts in sorted(answers.items()):
        t.add_row(
            f"captured {key}",
            ", ".join(f"{v!r}: {n}" for v, n in counts.most_common())
            + f" ({sum(counts.values())} answered)",
        )
    t.add_row("429 responses", str(throttled))
    t.add_row("injected 5xx on create", str(faults))
    p50, p99 = _quantile(latencies, 0.5), _quantile(latencies, 0.99)
    if p50 is not None and p99 is not None:
        t.add_row(
            "webhook-to-state latency",
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({len(latencies)} samples)",
        )
    t.add_row("agrees with ledger", "yes" if not problems else "NO: " + "; ".join(problems))
    return t, problems


async def run_demo(out: Path, *, contacts: int, timeout_s: float, quiet_logs: bool) -> int:
    import asyncio
    import secrets
    import time
    import uuid

    from rich.console import Console
    from rich.live import Live

    from contracts.campaign import CampaignStatus, ControlAction, load_campaign_file
    from orchestrator.campaign.cli import progress_table
    from orchestrator.campaign.operations import (
        StateWatcher,
        count_contacts,
        read_results,
        send_control,
        write_results,
    )
    from orchestrator.config import Settings
    from orchestrator.localbroker import LocalBroker, free_port
    from orchestrator.logs import configure_logging
    from orchestrator.run import LocalStack
    from orchestrator.sandbox.simulator import Simulator
    from orchestrator.sandbox.simulator.auth import generate_key_pair

    console = Console()
    t_start = time.monotonic()
    demo_dir = ROOT / "examples" / "demo"
    if contacts != 1000 or not (demo_dir / "contacts.csv").is_file():
        demo_dir = out.parent / "demo-data" if contacts != 1000 else demo_dir
        write_demo_files(demo_dir, n=contacts)
    spec = load_campaign_file(CAMPAIGN_FILE)
    if contacts != 1000:
        spec = spec.model_copy(
            update={
                "contacts": spec.contacts.model_copy(
                    update={"csv": str(demo_dir / "contacts.csv")}
                ),
                "dnc": [str(demo_dir / "dnc.txt")],
            }
        )
    # Calling hours are checked on a clock that starts at DEMO_ANCHOR; stop_at makes contacts
    # whose window opens too late (Sydney) final as "expired" instead of waiting for hours.
    spec = spec.model_copy(update={"stop_at": DEMO_ANCHOR + timedelta(hours=2)})
    t0 = time.time()

    def clock() -> float:
        return DEMO_ANCHOR.timestamp() + (time.time() - t0)

    console.print("[bold]demo[/bold]: starting the local broker and the Voice API simulator ...")
    broker = LocalBroker().start()
    secret = secrets.token_urlsafe(24)
    pem = generate_key_pair().private_pem
    app_id = str(uuid.uuid4())
    sim = Simulator(
        cps=DEMO_CPS,
        rps=60.0,
        seed=2024,
        time_scale=TIME_SCALE,
        profile=_profile(2024),
        signature_secret=secret,
        application_id=app_id,
        private_key=pem,
    )
    await sim.start()
    ingress_port = free_port()
    settings = Settings(
        kafka_bootstrap_servers=broker.bootstrap,
        topic_prefix="demo.",
        topic_partitions=3,
        topic_replication_factor=1,
        create_topics=True,
        vonage_application_id=app_id,
        vonage_private_key=pem,
        vonage_signature_secret=secret,
        vonage_api_host=sim.base_url,
        vonage_cps=DEMO_CPS,
        vonage_rps=60.0,
        public_base_url=f"http://127.0.0.1:{ingress_port}",
        log_level="error" if quiet_logs else "info",
        log_format="console",
    )
    configure_logging(settings)
    stack = LocalStack(settings, ingress_port=ingress_port, clock=clock)
    code = 0
    try:
        await stack.start()
        console.print(
            f"roles running: ingress :{ingress_port}, worker, dispatcher, controller; "
            f"simulator {sim.base_url} at {DEMO_CPS:g} CPS, x{TIME_SCALE:g} time"
        )
        total = count_contacts(spec)
        await send_control(
            settings, spec.name, ControlAction.START, spec=spec, contacts_total=total,
            requested_by="demo",
        )  # fmt: skip
        console.print(f"started campaign [bold]{spec.name}[/bold] ({total} contacts)")
        deadline = time.monotonic() + timeout_s
        async with StateWatcher(settings) as w:
            p = None
            with Live(console=console, refresh_per_second=4) as live:
                while time.monotonic() < deadline:
                    await w.refresh()
                    p = w.progress(spec.name)
                    if p is not None:
                        live.update(progress_table(p))
                        if p.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
                            break
                    if (err := stack.failed()) is not None:
                        console.print(f"[red]a role failed: {err}[/red]")
                        break
                    await asyncio.sleep(0.5)
        if p is None or p.status not in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
            console.print("[red]the campaign did not finish in time[/red]")
            code = 1
        results = await read_results(settings, spec.name)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_results(results, out)
        latencies = await _latencies(settings)
        table, problems = summarise(results, sim.ledger(), latencies, DEMO_CPS, spec.name)
        console.print(table)
        if problems:
            code = 1
        console.print(f"results: [bold]{out}[/bold] ({len(results)} contacts, one row each)")
    finally:
        console.print("shutting down ...")
        await stack.stop()
        await sim.stop()
        broker.stop()
    console.print(f"demo finished in {time.monotonic() - t_start:.0f} s")
    return code


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("build/demo-results.csv"),
    show_default=True,
    help="Where to write the per-contact results (.csv or .jsonl).",
)
@click.option("--contacts", default=1000, show_default=True, help="Size of the generated list.")
@click.option("--timeout", "timeout_s", default=150.0, show_default=True, help="Give up after.")
@click.option("--logs/--no-logs", default=False, help="Show the roles' logs.")
@click.option(
    "--agents",
    "agents",
    is_flag=True,
    help="An agent campaign instead (predictive, simulated agents): orchestrator/sandbox/demo_agents.py.",
)
def demo(out: Path, contacts: int, timeout_s: float, logs: bool, agents: bool) -> None:
    """Run the demo campaign end to end on the local Apache Kafka and the simulator."""
    import asyncio
    import sys

    if agents:
        from orchestrator.sandbox.demo_agents import run_agents_demo

        ctx = click.get_current_context()
        given = ctx.get_parameter_source("contacts") != click.core.ParameterSource.DEFAULT
        sys.exit(
            asyncio.run(
                run_agents_demo(
                    out.with_name("demo-agents-results.csv")
                    if ctx.get_parameter_source("out") == click.core.ParameterSource.DEFAULT
                    else out,
                    timeout_s=timeout_s,
                    quiet_logs=not logs,
                    contacts=contacts if given else None,
                )
            )
        )
    sys.exit(
        asyncio.run(run_demo(out, contacts=contacts, timeout_s=timeout_s, quiet_logs=not logs))
    )
