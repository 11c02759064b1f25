"""``orchestrator demo --agents``: a predictive agent campaign on a laptop in under 3 minutes.

Same stack as ``orchestrator demo`` (the local Apache Kafka, the Voice API simulator, every role
in this process, the agents role included), but the campaign bridges people to agents: a roster
of simulated agents (``examples/demo/agents.yaml``: phones and SIP URIs the simulator's
``agents:`` profile answers, 60 s mean handle time) logs in, then
``examples/demo-agents-campaign.yaml`` dials ``examples/demo/agents-contacts.csv`` in predictive
mode. The summary puts each figure the campaign reports (``campaign status``) next to the same
figure computed from the simulator's ledger, and says whether they agree: the product's counters
are what a demo should convince of, so they are checked against what the telephony side saw.

Telephony runs ``TIME_SCALE`` times faster than the wall clock; the roles' own timers
(``connect_within``, wrap-up, the controller's clock) do not, so ledger times are divided by it
before they are compared. Only click and the stdlib are imported at module level.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AGENTS_CAMPAIGN_FILE", "compare", "run_agents_demo", "write_agent_demo_files"]

ROOT = Path(__file__).resolve().parents[2]
AGENTS_CAMPAIGN_FILE = ROOT / "examples" / "demo-agents-campaign.yaml"
DEMO_DIR = ROOT / "examples" / "demo"
CONTACTS_FILE = DEMO_DIR / "agents-contacts.csv"
ROSTER_FILE = DEMO_DIR / "agents.yaml"

DEMO_CPS = 20.0
TIME_SCALE = 10.0
CONTACTS = 240
#: Agents' phones and SIP URIs share this mark, so one ``agents:`` entry of the profile answers
#: them all and no contact (``+1 555 01xx``-style numbers) is taken for an agent.
AGENT_MARK = "447700990"

_FIRST = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Femi", "Grace", "Hugo", "Ines", "Jon", "Kai",
          "Lena", "Maya", "Noah", "Omar", "Priya"]  # fmt: skip


def write_agent_demo_files(n: int = CONTACTS, agents: int = 12, seed: int = 15) -> None:
    """The demo's contacts and agent roster, generated deterministically (same seed, same files)."""
    rnd = random.Random(seed)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    with CONTACTS_FILE.open("w", encoding="utf-8") as fh:
        fh.write("number,name\n")
        for i in range(n):
            fh.write(f"+1 415 555 {i:04d},{rnd.choice(_FIRST)}\n")
    lines = [
        "# The demo's agents (orchestrator demo --agents logs them in before the campaign).",
        "# Each is what PUT /v1/agents/{id}/state {action: login, profile: ...} takes.",
    ]
    for i in range(agents):
        if i % 6 == 5:  # some agents are on SIP desk phones
            endpoint = f'{{type: sip, uri: "sip:{AGENT_MARK}{i:02d}@desk.example.com"}}'
        else:
            endpoint = f'{{type: phone, number: "{AGENT_MARK}{i:02d}"}}'
        lines.append(f"- {{id: agent-{i:02d}, endpoint: {endpoint}, wrap_up_seconds: 0.5}}")
    ROSTER_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_roster(path: Path = ROSTER_FILE) -> list[Any]:
    import yaml

    from contracts.agents import Agent

    return [Agent.model_validate(doc) for doc in yaml.safe_load(path.read_text()) or []]


def sim_profile(seed: int) -> dict[str, Any]:
    """30 % of callees are people (patient enough to wait for an agent), AMD always right, so a
    voicemail reaching an agent could only be the product's doing; agents answer in 1-3 s and
    talk 60 s on average (simulated)."""
    return {
        "seed": seed,
        "outcomes": {
            "human": 30,
            "machine": 20,
            "unanswered": 30,
            "busy": 15,
            "failed": 5,
            "rejected": 0,
            "timeout": 0,
            "cancelled": 0,
        },
        "timing": {
            "setup": [0.2, 0.8],
            "ring": [3, 12],
            "ring_fail": [2, 8],
            "talk": [150, 250],
            "machine_talk": [20, 40],
            "amd": [1.5, 3],
        },
        "amd": {"accuracy": 1.0},
        "agents": [{"match": AGENT_MARK, "answer": [1, 3], "handle_mean": 60}],
    }


@dataclass(frozen=True)
class Row:
    metric: str
    product: str
    ledger: str
    agrees: bool


def compare(progress: Any, pool: Any, results: list[Any], ledger: dict[str, Any],
            campaign: str, agents: int, time_scale: float) -> list[Row]:  # fmt: skip
    """Each figure the campaign reports next to the ledger's; the rows say if they agree.

    Counts must be equal. Ratios and times are measured on different clocks (the roles' wall
    clock, the simulator's scaled one) over slightly different spans (from the campaign's first
    agent figures, from its first dial), and the product's wait starts at the AMD verdict, not
    the answer: those agree within a stated tolerance.
    """
    from contracts.agents import AgentState
    from orchestrator.sandbox.agent_ledger import ledger_figures

    g = ledger_figures(ledger, campaign, agents)
    a = progress.agents
    rows: list[Row] = []
    busy = sum(1 for r in pool.agents if r.state not in (AgentState.AVAILABLE, AgentState.OFFLINE))
    free = sum(1 for r in pool.agents if r.state == AgentState.AVAILABLE)
    rows.append(
        Row("agents busy / free at the end", f"{busy} / {free}",
            f"{g.agents_on_call} on a call / {agents - g.agents_on_call}",
            busy == g.agents_on_call and free == agents - g.agents_on_call)
    )  # fmt: skip
    abandoned_results = sum(1 for r in results if r.disposition == "abandoned")
    rate = a.abandoned / a.live_answers if a.live_answers else 0.0
    rows.append(
        Row("abandon rate (abandoned / live answers)",
            f"{rate:.1%} ({a.abandoned} / {a.live_answers}; results: {abandoned_results})",
            f"{g.abandon_rate:.1%} ({g.abandoned} / {g.live_answers})",
            (a.abandoned, a.live_answers, abandoned_results)
            == (g.abandoned, g.live_answers, g.abandoned))
    )  # fmt: skip
    rows.append(
        Row("connected to an agent", str(a.connected), str(g.bridged), a.connected == g.bridged)
    )
    occ = a.occupancy
    rows.append(
        Row("agent occupancy (talk / logged-in time)",
            f"{occ:.1%}" if occ is not None else "-",
            f"{g.occupancy:.1%} (within 6 points)",
            occ is not None and abs(occ - g.occupancy) <= 0.06)
    )  # fmt: skip
    ledger_wait = g.mean_wait / time_scale if g.mean_wait is not None else None
    pw = a.mean_wait_s
    rows.append(
        Row("mean wait for an agent (s)",
            f"{pw:.2f}" if pw is not None else "-",
            f"{ledger_wait:.2f} (answer -> agent's answer, within 0.4 s)"
            if ledger_wait is not None else "-",
            pw is not None and ledger_wait is not None and abs(pw - ledger_wait) <= 0.4)
    )  # fmt: skip
    per_hour = a.calls_per_agent_hour
    ledger_per_hour = g.calls_per_agent_hour * time_scale  # per wall-clock agent-hour
    rows.append(
        Row("calls per agent-hour (wall clock)",
            f"{per_hour:,.0f}" if per_hour is not None else "-",
            f"{ledger_per_hour:,.0f} (within 15 %; {g.calls_per_agent_hour:.0f} simulated)",
            per_hour is not None and ledger_per_hour > 0
            and abs(per_hour / ledger_per_hour - 1) <= 0.15)
    )  # fmt: skip
    machines = sum(1 for c in ledger["calls"] if (c.get("call_ref") or "").startswith(
        f"{campaign}.") and not c.get("agent") and c.get("amd_result") == "machine")  # fmt: skip
    rows.append(
        Row("calls that reached an agent after a machine answer", "-",
            f"{g.machines_bridged} (of {machines} machine answers)", g.machines_bridged == 0)
    )  # fmt: skip
    rows.append(Row("agents on two calls at once", "-", str(g.double_booked), g.double_booked == 0))
    return rows


def summary_table(rows: list[Row], campaign: str) -> Any:
    from rich.table import Table

    t = Table(title=f"agent campaign {campaign}: the campaign's figures and the simulator's ledger")
    t.add_column("metric", style="bold")
    t.add_column("campaign status", justify="right")
    t.add_column("ledger", justify="right")
    t.add_column("agrees", justify="center")
    for r in rows:
        t.add_row(r.metric, r.product, r.ledger, "yes" if r.agrees else "[red]NO[/red]")
    ok = all(r.agrees for r in rows)
    t.add_row("agrees with ledger", "", "", "yes" if ok else "[red]NO[/red]")
    return t


async def _wait_pool(settings: Any, pred: Any, within: float) -> Any:
    import asyncio
    import time

    from orchestrator.agents.operations import read_pool

    deadline = time.monotonic() + within
    pool = None
    while time.monotonic() < deadline:
        pool = await read_pool(settings)
        if pool is not None and pred(pool):
            return pool
        await asyncio.sleep(0.5)
    return pool


async def run_agents_demo(out: Path, *, timeout_s: float, quiet_logs: bool,
                          contacts: int | None = None) -> int:  # fmt: skip
    import asyncio
    import secrets
    import time
    import uuid

    from rich.console import Console
    from rich.live import Live

    from contracts.agents import AgentAction, AgentState
    from contracts.campaign import CampaignStatus, ControlAction, load_campaign_file
    from orchestrator.agents.operations import agent_command, send_agent_command
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
    if not CONTACTS_FILE.is_file() or not ROSTER_FILE.is_file():
        write_agent_demo_files()
    spec = load_campaign_file(AGENTS_CAMPAIGN_FILE)
    if contacts is not None:  # a shorter list (the test): the first ``contacts`` rows
        short = out.parent / "demo-agents-contacts.csv"
        short.parent.mkdir(parents=True, exist_ok=True)
        lines = CONTACTS_FILE.read_text(encoding="utf-8").splitlines()
        short.write_text("\n".join(lines[: contacts + 1]) + "\n", encoding="utf-8")
        spec = spec.model_copy(
            update={"contacts": spec.contacts.model_copy(update={"csv": str(short)})}
        )
    roster = load_roster()

    console.print("[bold]demo --agents[/bold]: starting the local broker and the simulator ...")
    broker = LocalBroker().start()
    secret = secrets.token_urlsafe(24)
    pem = generate_key_pair().private_pem
    app_id = str(uuid.uuid4())
    sim = Simulator(cps=DEMO_CPS, rps=60.0, seed=15, time_scale=TIME_SCALE,
                    profile=sim_profile(15), signature_secret=secret, application_id=app_id,
                    private_key=pem)  # fmt: skip
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
    stack = LocalStack(settings, ingress_port=ingress_port, with_agents=True)
    code = 0
    try:
        await stack.start()
        console.print(
            f"roles running: ingress :{ingress_port}, worker, dispatcher, controller, agents; "
            f"simulator {sim.base_url} at {DEMO_CPS:g} CPS, x{TIME_SCALE:g} time"
        )
        for agent in roster:
            cmd = agent_command(agent.id, AgentAction.LOGIN, profile=agent, requested_by="demo")
            await send_agent_command(settings, cmd)
        n_agents = len(roster)

        def all_free(pool: Any) -> bool:
            return bool(sum(r.state == AgentState.AVAILABLE for r in pool.agents) == n_agents)

        if await _wait_pool(settings, all_free, 60) is None:
            console.print("[red]the agents did not log in[/red]")
            return 1
        console.print(f"{n_agents} agents logged in ({ROSTER_FILE.relative_to(ROOT)})")
        total = count_contacts(spec)
        await send_control(settings, spec.name, ControlAction.START, spec=spec,
                           contacts_total=total, requested_by="demo")  # fmt: skip
        console.print(
            f"started {spec.mode} campaign [bold]{spec.name}[/bold] ({total} contacts, "
            f"{n_agents} agents)"
        )
        deadline = time.monotonic() + timeout_s
        p = None
        async with StateWatcher(settings) as w:
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
            if p is None or p.status != CampaignStatus.COMPLETED:
                console.print("[red]the campaign did not finish in time[/red]")
                code = 1
            # Agents' legs end after their callee's result; then wrap-up (0.5 s) frees them.
            with_timeout = asyncio.timeout(30)
            async with with_timeout:
                await sim.wait_idle()
            pool = await _wait_pool(settings, all_free, 10)
            await asyncio.sleep(1.0)  # the last agent figures reach the campaign
            await w.refresh()
            p = w.progress(spec.name) or p
        results = await read_results(settings, spec.name)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_results(results, out)
        if p is None or p.agents is None or pool is None:
            console.print("[red]no agent figures to compare[/red]")
            return 1
        import orjson

        ledger = sim.ledger()
        ledger_path = out.with_name("demo-agents-ledger.json")
        ledger_path.write_bytes(orjson.dumps(ledger))  # to look again at what was checked
        rows = compare(p, pool, results, ledger, spec.name, n_agents, TIME_SCALE)
        console.print(summary_table(rows, spec.name))
        if not all(r.agrees for r in rows):
            code = 1
        console.print(f"results: [bold]{out}[/bold] ({len(results)} contacts, one row each)")
        console.print(f"the simulator's ledger: {ledger_path}")
    finally:
        console.print("shutting down ...")
        await stack.stop()
        await sim.stop()
        broker.stop()
    console.print(f"demo finished in {time.monotonic() - t_start:.0f} s")
    return code
