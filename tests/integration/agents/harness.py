"""Agent campaigns on the real broker and the Voice API simulator: the stack, agents, checks.

Every role runs in this process (``LocalStack``, the agents app included) unless a test runs the
agents role as a process of its own (to kill it). Agents are phone numbers the simulator answers
(its ``overrides``); what happened is read afterwards from the simulator's ledger (legs, who was
called, when each answered and ended, which named conversation each joined) and from the topics,
never from the roles' own bookkeeping.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from contracts.agents import Agent, AgentAction, AgentState
from contracts.call_refs import parse_agent_leg_ref
from contracts.campaign import CampaignSpec, parse_campaign_document
from orchestrator.agents.operations import agent_command, read_pool, send_agent_command
from orchestrator.config import Settings
from orchestrator.localbroker import free_port
from tests.integration.worker.helpers import REPO, http_get

#: Agents' phones: numbers no contact has (contacts are +44 20 7946 ...).
AGENT_PREFIX = "4477009900"


def agent_number(i: int) -> str:
    return f"{AGENT_PREFIX}{i:02d}"


def sim_profile(
    seed: int,
    *,
    machine_share: int = 25,
    agent_outcomes: dict[str, str] | None = None,
    ring: tuple[float, float] = (2, 6),
    patience: tuple[float, float] = (150, 250),
) -> dict[str, Any]:
    """Contacts answer (humans or machines, AMD always right) and stay on long enough to be
    bridged; agents answer fast and talk a while. ``agent_outcomes``: number -> forced outcome
    (busy, failed...) for the agents that must fail. ``patience``: how long (simulated) a callee
    waits alone in the bridge before hanging up (the simulator's talk time, which only runs
    while no agent is there)."""
    overrides: list[dict[str, Any]] = [
        {"match": f"^{number}$", "outcome": outcome}
        for number, outcome in (agent_outcomes or {}).items()
    ]
    overrides.append(
        {"match": f"^{AGENT_PREFIX}", "outcome": "human", "ring": [1, 3], "talk": [40, 80]}
    )
    return {
        "seed": seed,
        "outcomes": {
            "human": 100 - machine_share,
            "machine": machine_share,
            **dict.fromkeys(
                ("busy", "unanswered", "rejected", "failed", "timeout", "cancelled"), 0
            ),
        },
        "timing": {
            "ring": list(ring),
            "ring_fail": [1, 3],
            "talk": list(patience),
            "machine_talk": [20, 40],
            "amd": [1, 2],
        },
        "amd": {"accuracy": 1.0},
        "overrides": overrides,
    }


def write_contacts(directory: Path, n: int) -> Path:
    path = directory / "contacts.csv"
    with path.open("w") as fh:
        fh.write("number,name\n")
        for i in range(n):
            fh.write(f"+44 20 7946 {i:04d},Person {i}\n")
    return path


SPEC = """\
name: {name}
contacts: {{csv: {contacts}, default_region: GB}}
from: {{numbers: ["442079460000"]}}
flow: {{ncco: [{{action: talk, text: "Hello {{{{name}}}}."}}]}}
mode: progressive
agents:
  connect_within: {connect_within}
  abandon_message: "This was Acme calling {{{{name}}}}. Call us back on 0800 000 000."
machine_detection: {{mode: standard, on_machine: hangup}}
pacing: {{max_concurrent: 20}}
retry: {{abandoned: {{delay: 1h, max_attempts: 1}}}}
calling_hours: null
ringing_timer: 30
attempt_timeout: 1h
"""


def agent_spec(
    name: str,
    contacts: Path,
    *,
    connect_within: float = 10.0,
    ratio: float = 1.0,
    mode: str = "progressive",
) -> CampaignSpec:
    text = SPEC.format(name=name, contacts=contacts, connect_within=connect_within)
    text = text.replace("mode: progressive", f"mode: {mode}")
    text = text.replace("  connect_within:", f"  ratio: {ratio}\n  connect_within:")
    return parse_campaign_document(text, "agents.yaml").spec


async def login_agents(
    settings: Settings,
    n: int,
    *,
    wrap_up: float = 1.0,
    endpoints: dict[int, dict[str, Any]] | None = None,
) -> list[str]:
    """Agents ``agent-0`` ... in this order (so ``agent-0`` has been idle longest); each on its
    phone number unless ``endpoints`` gives another endpoint."""
    ids = []
    for i in range(n):
        endpoint = (endpoints or {}).get(i) or {"type": "phone", "number": agent_number(i)}
        agent = Agent.model_validate(
            {"id": f"agent-{i}", "endpoint": endpoint, "wrap_up_seconds": wrap_up}
        )
        cmd = agent_command(agent.id, AgentAction.LOGIN, profile=agent)
        await send_agent_command(settings, cmd)
        ids.append(agent.id)
        await asyncio.sleep(0.05)  # distinct login times: a fixed longest-idle order
    return ids


async def set_state(settings: Settings, agent_id: str, action: AgentAction) -> None:
    await send_agent_command(settings, agent_command(agent_id, action))


class RoleProcess:
    """A role as a real subprocess (to be killed with SIGKILL): by default ``orchestrator
    agents``; ``role`` ``worker`` or ``controller`` for the others."""

    COMMANDS = {
        "agents": ["agents", "--health-host", "127.0.0.1", "--health-port"],
        "worker": ["worker", "--settle-ms", "300", "--health-host", "127.0.0.1", "--health-port"],
        "controller": ["campaign", "controller", "--health-port"],
    }

    def __init__(self, settings: Settings, name: str, role: str = "agents") -> None:
        self.port = free_port()
        fd, path = tempfile.mkstemp(prefix=f"{role}-{name}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(path)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "TOPIC_PREFIX": settings.topic_prefix,
            "PUBLIC_BASE_URL": settings.public_base,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "INSTANCE_ID": "",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "VONAGE_CPS": str(settings.vonage_cps),
        }
        args = [sys.executable, "-m", "orchestrator", *self.COMMANDS[role], str(self.port)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        return http_get(self.port, "/readyz")[0] == 200

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


AgentsProcess = RoleProcess  # the agents role, as the first tests called it


async def wait_pool(settings: Settings, pred: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    pool = None
    while time.monotonic() < deadline:
        pool = await read_pool(settings)
        if pool is not None and pred(pool):
            return pool
        await asyncio.sleep(0.3)
    raise AssertionError(f"pool: {what} not reached in {within}s; last {pool}")


def available(pool: Any) -> int:
    return sum(1 for r in pool.agents if r.state == AgentState.AVAILABLE)


# --- reading the ledger ---------------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    call_ref: str
    to: str
    outcome: str
    status: str
    answered: datetime | None
    ended: datetime | None
    conversation: str | None

    @property
    def agent_leg(self) -> bool:
        return parse_agent_leg_ref(self.call_ref) is not None

    @property
    def callee_ref(self) -> str:
        parsed = parse_agent_leg_ref(self.call_ref)
        return parsed.call_ref if parsed is not None else self.call_ref


def legs_of(ledger: dict[str, Any], campaign: str) -> list[Leg]:
    out = []
    for c in ledger["calls"]:
        ref = c.get("call_ref") or ""
        if not ref.startswith(campaign + "."):
            continue
        times = c.get("times") or {}
        out.append(
            Leg(
                call_ref=ref,
                to=c["to"],
                outcome=c["outcome"],
                status=c["status"],
                answered=datetime.fromisoformat(times["answered"])
                if times.get("answered")
                else None,
                ended=datetime.fromisoformat(times["ended"]) if times.get("ended") else None,
                conversation=c.get("conversation_name"),
            )
        )
    return out


def check_bridges(legs: list[Leg]) -> dict[str, list[Leg]]:
    """The promises of an agent campaign, from the ledger; returns the answered agent legs per
    callee. No agent talks on two calls at once; no callee has two agents at once; every agent
    leg joined its own callee's conversation; no machine-answered callee ever got an agent leg."""
    callees = {leg.call_ref: leg for leg in legs if not leg.agent_leg}
    agent_legs = [leg for leg in legs if leg.agent_leg]
    for leg in agent_legs:
        assert leg.callee_ref in callees, f"agent leg {leg.call_ref} for no callee"
        assert leg.to.startswith((AGENT_PREFIX, "ws://")), leg  # only ever an agent
        if leg.answered is not None:
            assert leg.conversation == f"bridge-{leg.callee_ref}", leg
    for ref, callee in callees.items():
        if callee.outcome == "machine":
            assert not [a for a in agent_legs if a.callee_ref == ref], f"machine {ref} got an agent"
    answered = [a for a in agent_legs if a.answered is not None]
    _no_overlap(answered, key=lambda a: a.to, what="agent on two calls at once")
    _no_overlap(answered, key=lambda a: a.callee_ref, what="callee with two agents at once")
    per_callee: dict[str, list[Leg]] = defaultdict(list)
    for a in answered:
        per_callee[a.callee_ref].append(a)
    return per_callee


def check_conversations(ledger: dict[str, Any], campaign: str) -> int:
    """The same promises from the ledger's record of named conversations (who was in which one,
    from when to when): an agent leg only ever shares its own callee's conversation, never with
    a machine; no agent is in two conversations at once; no conversation holds two agents at
    once. Returns how many callee-agent pairs really shared a conversation."""
    stays: list[tuple[str, dict[str, Any]]] = []
    for conv in ledger.get("conversations", []):
        for leg in conv["legs"]:
            if (leg.get("call_ref") or "").startswith(campaign + "."):
                stays.append((conv["name"], leg))
    assert stays, "the ledger records the named conversations"
    agent_stays = [(n, s) for n, s in stays if parse_agent_leg_ref(s["call_ref"]) is not None]
    callee_stays = [(n, s) for n, s in stays if parse_agent_leg_ref(s["call_ref"]) is None]
    for name, s in agent_stays:
        parsed = parse_agent_leg_ref(s["call_ref"])
        assert parsed is not None and name == f"bridge-{parsed.call_ref}", (name, s)
    pairs = 0
    for name, a in agent_stays:
        for cname, c in callee_stays:
            if cname == name and _overlap(a, c):
                assert c["amd_result"] != "machine" and c["outcome"] != "machine", (name, c)
                pairs += 1
    for what, key in (("agent", "to"), ("conversation", None)):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for name, a in agent_stays:
            groups[a["to"] if key else name].append(a)
        for group, members in groups.items():
            spans = sorted((m["joined"], m["left"] or "9999", m["call_ref"]) for m in members)
            for (_, end, x), (start, _, y) in itertools.pairwise(spans):
                assert start >= end, f"{what} {group}: {x} until {end}, {y} from {start}"
    return pairs


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["joined"] < (b["left"] or "9999") and b["joined"] < (a["left"] or "9999")


def _no_overlap(legs: list[Leg], *, key: Any, what: str) -> None:
    groups: dict[str, list[Leg]] = defaultdict(list)
    for leg in legs:
        groups[key(leg)].append(leg)
    for name, group in groups.items():
        spans = sorted(
            (
                leg.answered,
                leg.ended or datetime.max.replace(tzinfo=leg.answered.tzinfo),
                leg.call_ref,
            )
            for leg in group
        )  # type: ignore[union-attr]
        for (_, end, a), (start, _, b) in itertools.pairwise(spans):
            assert start >= end, f"{what}: {name}: {a} until {end}, {b} from {start}"
