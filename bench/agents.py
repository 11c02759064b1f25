"""Agent campaigns: predictive against progressive dialing, same contacts, same agents, one run.

Every role runs as its own process, as in production (ingress, worker, dispatcher, campaign
controller and the agents role), against the Voice API simulator as a process too. Simulated
agents are phone numbers the simulator's ``agents:`` profile answers (after 1-3 s, an
exponential handle time); callees answer as people 30 % of the time. The same contact list is
dialled twice: first as a progressive campaign (the baseline), then, after the simulator has
been reset (so every contact draws the same outcome and timings again), as a predictive one, by
the same logged-in agents.

Every figure is computed from what the simulator saw (its ledger: which callee shared a named
conversation with which agent leg, when each joined and left, what AMD said) and from
``campaign.results``; never from the roles' own counters, which are what is being checked.
Times are simulated seconds (the simulator's clock, ``--time-scale`` times the wall clock); the
product's own timers (``connect_within``, wrap-up) run on the wall clock.

Run: ``.venv/bin/python -m bench.agents [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench._result import BenchResult, report
from bench.campaign import SECRET, _http_ok, _sim_idle
from orchestrator.config import Settings
from orchestrator.localbroker import LocalBroker, free_port
from orchestrator.sandbox.agent_ledger import LedgerFigures, ledger_figures
from orchestrator.sandbox.simulator.auth import generate_key_pair
from orchestrator.sandbox.soak.procs import Slot

#: Agents' phones: a prefix no contact has (contacts are +4479...).
AGENT_PREFIX = "4477009900"


def sim_profile(seed: int, *, human: int = 30) -> dict[str, Any]:
    """Callees: ``human`` % people who wait long enough to be bridged (their ``talk`` is their
    patience while no agent is with them), the rest machines, no answer, busy or failed; AMD
    always right, so a machine bridged to an agent can only be the product's fault. Agents
    answer in 1-3 s and handle a call for 60 s on average (exponential).

    Of the dials nobody answers, half ring out: they ring until the campaign's ringing timer (30
    s) and end ``timeout``, as a phone nobody picks up does (the US telemarketing safe harbour
    also has a dialer let an unanswered call ring 15 s or four rings). The other half
    end within seconds: busy, unavailable (``unanswered``), or failed. This is the time a
    progressive dialer's agents spend waiting, so it decides how far ahead predictive can gain.
    """
    machine = 20
    rest = 100 - human - machine
    rings_out = rest // 2
    busy = unavailable = (rest - rings_out) * 4 // 10
    return {
        "seed": seed,
        "outcomes": {
            "human": human,
            "machine": machine,
            "timeout": rings_out,
            "unanswered": unavailable,
            "busy": busy,
            "failed": rest - rings_out - busy - unavailable,
            **dict.fromkeys(("rejected", "cancelled"), 0),
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
        "agents": [{"match": f"^{AGENT_PREFIX}", "answer": [1, 3], "handle_mean": 60}],
        "limits": {"max_calls": 50_000, "max_requests": 200_000},
    }


SPEC = """\
name: {name}
contacts: {{csv: {contacts}, default_region: GB}}
from: {{numbers: ["447700900000"]}}
flow: {{ncco: [{{action: talk, text: "Hello {{{{name}}}}."}}]}}
mode: {mode}
agents:
  connect_within: {connect_within}
  abandon_message: "This was Acme calling {{{{name}}}}. Call us back on 0800 000 000."
machine_detection: {{mode: standard, on_machine: hangup}}
pacing: {{max_concurrent: {max_concurrent}}}
retry:
  abandoned: {{delay: 1h, max_attempts: 1}}
  busy: {{delay: 1h, max_attempts: 1}}
  unanswered: {{delay: 1h, max_attempts: 1}}
  failed: {{delay: 1h, max_attempts: 1}}
  timeout: {{delay: 1h, max_attempts: 1}}
  machine: {{delay: 1h, max_attempts: 1}}
calling_hours: null
ringing_timer: 30
attempt_timeout: 1h
"""


def campaign_spec(
    name: str, contacts: Path, mode: str, *, connect_within: float, max_concurrent: int
) -> Any:
    from contracts.campaign import parse_campaign_document

    text = SPEC.format(
        name=name,
        contacts=contacts,
        mode=mode,
        connect_within=connect_within,
        max_concurrent=max_concurrent,
    )
    return parse_campaign_document(text, f"{name}.yaml").spec


def write_contacts(directory: Path, n: int) -> Path:
    path = directory / "contacts.csv"
    with path.open("w") as fh:
        fh.write("number,name\n")
        for i in range(n):
            fh.write(f"+4479{i:08d},Contact {i}\n")
    return path


# --- the figures, from the ledger and the results --------------------------------------------


@dataclass
class ModeFigures:
    """One mode's ledger figures, and what ``campaign.results`` says of its abandons."""

    mode: str
    ledger: LedgerFigures
    abandoned_results: int
    results: int
    contacts: int


def figures(
    mode: str, agents: int, campaign: str, ledger: dict[str, Any], results: list[Any], n: int
) -> ModeFigures:
    latest: dict[str, Any] = {r.contact_id: r for r in results}
    return ModeFigures(
        mode=mode,
        ledger=ledger_figures(ledger, campaign, agents),
        abandoned_results=sum(1 for r in latest.values() if r.disposition == "abandoned"),
        results=len(latest),
        contacts=n,
    )


# --- the run ---------------------------------------------------------------------------------


async def _login(settings: Settings, n: int, wrap_up: float) -> None:
    from contracts.agents import Agent, AgentAction
    from orchestrator.agents.operations import agent_command, send_agent_command

    for i in range(n):
        agent = Agent.model_validate(
            {
                "id": f"agent-{i:02d}",
                "endpoint": {"type": "phone", "number": f"{AGENT_PREFIX}{i:02d}"},
                "wrap_up_seconds": wrap_up,
            }
        )
        await send_agent_command(
            settings, agent_command(agent.id, AgentAction.LOGIN, profile=agent)
        )


async def _wait_available(settings: Settings, n: int, within: float) -> None:
    from contracts.agents import AgentState
    from orchestrator.agents.operations import read_pool

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pool = await read_pool(settings)
        if pool is not None and sum(r.state == AgentState.AVAILABLE for r in pool.agents) >= n:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{n} agents did not become available in {within:.0f} s")


async def _run_mode(
    settings: Settings,
    sim_url: str,
    mode: str,
    csv: Path,
    n: int,
    agents: int,
    connect_within: float,
    limit_s: float,
    tmp: Path,
) -> tuple[ModeFigures, float]:
    import httpx

    from contracts.campaign import CampaignStatus, ControlAction
    from orchestrator.campaign.operations import StateWatcher, read_results, send_control

    name = f"{mode[:4]}{int(time.time())}"
    spec = campaign_spec(name, csv, mode, connect_within=connect_within, max_concurrent=agents * 8)
    print(f"[agents] {mode}: {n} contacts, {agents} agents")
    start = time.monotonic()
    await send_control(settings, name, ControlAction.START, spec=spec, contacts_total=n)
    p = None
    phases: dict[str, int] = {}  # what the pacing said, sampled twice a second
    levels: list[float] = []
    async with StateWatcher(settings) as watcher:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            await watcher.refresh()
            p = watcher.progress(name)
            if p is not None and p.status == CampaignStatus.COMPLETED:
                break
            if p is not None and p.agents is not None and p.agents.phase:
                phases[p.agents.phase] = phases.get(p.agents.phase, 0) + 1
                if p.agents.dial_level is not None:
                    levels.append(p.agents.dial_level)
            await asyncio.sleep(0.5)
    if phases:
        total = sum(phases.values())
        share = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(phases.items()))
        level = f"{sum(levels) / len(levels):.2f}" if levels else "-"
        print(f"[agents] {mode}: pacing phases {share}; mean dial level {level}")
    elapsed = time.monotonic() - start
    if p is None or p.status != CampaignStatus.COMPLETED:
        raise RuntimeError(f"{mode} campaign did not complete in {limit_s:.0f} s: {p}")
    await _sim_idle(sim_url, 60)  # agents' legs end after their callee's result
    results = await read_results(settings, name)
    async with httpx.AsyncClient() as client:
        ledger = (await client.get(f"{sim_url}/_sim/ledger?webhooks=0", timeout=60)).json()
    (tmp / f"ledger-{mode}.json").write_bytes(orjson.dumps(ledger))  # for a second look
    print(f"[agents] {mode}: completed in {elapsed:.0f} s (ledger: {tmp})")
    return figures(mode, agents, name, ledger, results, n), elapsed


def _print(f: ModeFigures, elapsed: float) -> None:
    g = f.ledger
    wait = f"{g.mean_wait:.1f}" if g.mean_wait is not None else "-"
    print(
        f"[agents] {f.mode}: {g.dials} dials, {g.live_answers} live answers, {g.bridged} bridged, "
        f"{g.abandoned} abandoned (campaign.results: {f.abandoned_results}), "
        f"occupancy {g.occupancy:.1%}, span {g.span_s:.0f} sim s ({elapsed:.0f} s real), "
        f"mean wait {wait} sim s, double-booked {g.double_booked}, "
        f"machines bridged {g.machines_bridged}"
    )


async def main_async(
    contacts: int, agents: int, cps: float, time_scale: float, connect_within: float
) -> int:
    from orchestrator.kafka.admin import ensure_topics

    tmp = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    broker = LocalBroker().start()
    slots: list[Slot] = []
    try:
        settings = Settings(
            kafka_bootstrap_servers=broker.bootstrap,
            topic_partitions=6,
            topic_replication_factor=1,
        )
        await ensure_topics(settings, create=True)
        pem, app_id = generate_key_pair().private_pem, str(uuid.uuid4())
        sim_port, ingress_port = free_port(), free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        profile = tmp / "profile.json"
        profile.write_bytes(orjson.dumps(sim_profile(15)))
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VONAGE_", "KAFKA_", "TOPIC_", "ORCHESTRATOR_"))
        }
        sim_args = ["--port", str(sim_port), "--cps", str(cps), "--rps", str(cps * 3),
                    "--seed", "15", "--time-scale", str(time_scale), "--profile", str(profile),
                    "--application-id", app_id, "--signature-secret", SECRET]  # fmt: skip
        env_sim = {**base, "VONAGE_PRIVATE_KEY": pem, "LOG_LEVEL": "warning"}
        sim = Slot("simulate", 0, sim_args, env_sim, tmp)
        slots.append(sim)
        sim.start()
        await _http_ok(f"{sim_url}/_sim/health", 30)
        env = {
            **base,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "TOPIC_PARTITIONS": "6",
            "VONAGE_APPLICATION_ID": app_id,
            "VONAGE_PRIVATE_KEY": pem,
            "VONAGE_API_HOST": sim_url,
            "VONAGE_SIGNATURE_SECRET": SECRET,
            "VONAGE_CPS": str(cps),
            "VONAGE_RPS": str(cps * 3),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{ingress_port}",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            "LOG_FORMAT": "json",
        }
        health = ["--health-host", "127.0.0.1", "--health-port"]
        roles = [
            ("ingress", ["--host", "127.0.0.1", "--port", str(ingress_port)]),
            ("worker", [*health, str(free_port())]),
            ("dispatcher", [*health, str(free_port())]),
            ("campaign", ["controller", "--health-port", str(free_port())]),
            ("agents", [*health, str(free_port())]),
        ]
        for role, args in roles:
            role_env = {**env, "INSTANCE_ID": f"bench-{role}"}
            if level := os.environ.get(f"BENCH_LOG_LEVEL_{role.upper()}"):
                role_env["LOG_LEVEL"] = level  # e.g. the controller's pacing decisions (debug)
            s = Slot(role, 0, args, role_env, tmp)
            slots.append(s)
            s.start()
        await _http_ok(f"http://127.0.0.1:{ingress_port}/healthz", 60)
        await asyncio.sleep(3.0)  # consumers join their groups
        # Wrap-up on the wall clock, as the agents role keeps it: 0.5 s is 5 s simulated at x10.
        await _login(settings, agents, wrap_up=0.5)
        await _wait_available(settings, agents, 60)
        csv = write_contacts(tmp, contacts)
        # Same contacts, same agents: the simulator forgets its dials between the modes, so each
        # contact's n-th dial (and so its outcome and timings) is the same in both.
        limit = max(300.0, contacts * 1.0)
        base_f, base_s = await _run_mode(
            settings, sim_url, "progressive", csv, contacts, agents, connect_within, limit, tmp
        )
        _print(base_f, base_s)
        import httpx

        async with httpx.AsyncClient() as client:
            await client.post(f"{sim_url}/_sim/reset")
        await _wait_available(settings, agents, 60)
        pred_f, pred_s = await _run_mode(
            settings, sim_url, "predictive", csv, contacts, agents, connect_within, limit, tmp
        )
        _print(pred_f, pred_s)
        _report(base_f, pred_f, time_scale, connect_within, base_s, pred_s)
        bad = sum(f.ledger.double_booked + f.ledger.machines_bridged for f in (base_f, pred_f))
        return 1 if bad else 0
    finally:
        for s in reversed(slots):
            with contextlib.suppress(Exception):
                await s.terminate(20)
            s.force_stop()
        broker.stop()


def _report(
    base: ModeFigures,
    pred: ModeFigures,
    time_scale: float,
    connect_within: float,
    base_s: float,
    pred_s: float,
) -> None:
    b, p = base.ledger, pred.ledger
    common = {
        "contacts": pred.contacts,
        "agents": p.agents,
        "time scale": time_scale,
        "connect_within (wall s)": connect_within,
        "wall s (progressive, predictive)": f"{base_s:.0f}, {pred_s:.0f}",
    }
    label = "progressive, same contacts and agents, same run"
    report(
        BenchResult(
            name="agents",
            metric="agent occupancy, predictive (talk / logged-in time, simulator's ledger)",
            value=p.occupancy * 100,
            unit="%",
            baseline=label,
            baseline_value=b.occupancy * 100,
            target="ratio >= 1.3",
            extra={
                **common,
                "occupancy while contacts were left to dial (pred, prog; ratio)": (
                    f"{p.occupancy_dialing:.1%}, {b.occupancy_dialing:.1%}; "
                    f"{p.occupancy_dialing / b.occupancy_dialing if b.occupancy_dialing else 0:.2f}"
                ),
                "calls per agent-hour (pred, prog)": (
                    f"{p.calls_per_agent_hour:.1f}, {b.calls_per_agent_hour:.1f}"
                ),
                "dials per agent-hour (pred, prog)": (
                    f"{p.dials_per_agent_hour:.1f}, {b.dials_per_agent_hour:.1f}"
                ),
                "logged-in span sim s (pred, prog)": f"{p.span_s:.0f}, {b.span_s:.0f}",
            },
        )
    )
    report(
        BenchResult(
            name="agents",
            metric="abandon rate, predictive (abandoned / live answers, simulator's ledger)",
            value=p.abandon_rate * 100,
            unit="%",
            baseline=label,
            baseline_value=b.abandon_rate * 100,
            higher_is_better=False,
            target="predictive <= 3 %",
            extra={
                "abandoned / live answers (pred)": f"{p.abandoned} / {p.live_answers}",
                "abandoned / live answers (prog)": f"{b.abandoned} / {b.live_answers}",
                "abandoned on campaign.results (pred, prog)": (
                    f"{pred.abandoned_results}, {base.abandoned_results}"
                ),
            },
        )
    )
    report(
        BenchResult(
            name="agents",
            metric="mean wait for an agent, predictive (callee answered -> agent answered)",
            value=p.mean_wait or 0.0,
            unit="sim s",
            baseline=label,
            baseline_value=b.mean_wait or 0.0,
            higher_is_better=False,
            extra={
                "double-booked agents (pred, prog; must be 0)": (
                    f"{p.double_booked}, {b.double_booked}"
                ),
                "machine answers bridged to an agent (pred, prog; must be 0)": (
                    f"{p.machines_bridged}, {b.machines_bridged}"
                ),
            },
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 contacts, 10 agents")
    parser.add_argument("--contacts", type=int, default=None)
    parser.add_argument("--agents", type=int, default=None)
    parser.add_argument("--cps", type=float, default=30.0, help="The simulator's limit.")
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument(
        "--connect-within", type=float, default=1.0, help="Wall seconds (x time scale simulated)."
    )
    args = parser.parse_args()
    contacts = args.contacts or (200 if args.quick else 2400)
    agents = args.agents or (10 if args.quick else 20)
    raise SystemExit(
        asyncio.run(main_async(contacts, agents, args.cps, args.time_scale, args.connect_within))
    )


if __name__ == "__main__":
    main()
