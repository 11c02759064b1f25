"""A seeded, pure simulation of one agent campaign: dials, answers, agents, abandons.

It drives the real pool (:class:`handlers.agents.AgentPool`), statistics and pacing with
simulated time, so progressive and predictive can be compared on the same agents and the same
callee behaviour. Nothing here is wall-clock or I/O; the same seed gives the same figures.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contracts.agents import Agent, AgentAction, AgentCommand, PhoneEndpoint
from handlers.agents import AgentPool, CallEnded, Connected, PoolCounts, Reserve, Reserved
from handlers.dial_stats import DialStats
from handlers.dialing_modes import AgentLoad, PredictiveConfig, PredictivePacer, progressive


@dataclass(frozen=True)
class SimConfig:
    agents: int = 20
    answer_rate: float = 0.30  # dials a person answers
    talk_mean: float = 50.0  # exponential; with the wrap-up, a 60 s mean handle time
    wrap_up: float = 10.0
    human_ring: tuple[float, float] = (4.0, 16.0)  # seconds before a person answers
    other_ring: tuple[float, float] = (5.0, 30.0)  # before a dial ends without a person
    agent_answers_after: float = 1.0  # the agent's leg rings this long before the bridge
    connect_within: float = 2.0
    cps: float = 5.0  # the account's limit, applied as the campaign pacer would
    pace_every: float = 0.5
    duration: float = 2 * 3600.0
    abandon_window: float = 3600.0
    #: The pipeline's delay (webhook -> worker -> controller -> desk, and back to the network):
    #: a live answer reaches the pool this much later, and a dial starts ringing this much later.
    latency: float = 0.0
    #: A contact list of this size instead of an endless one (the run ends when it is dialled
    #: and every call is over).
    contacts: int | None = None
    #: A call's end reaches the pool this much later (agent's hangup -> worker -> agents role):
    #: the agent is busy that much longer than the talk.
    end_latency: float = 0.0
    #: The pacing sees the pool's counts as they were this long ago (the load notices' path).
    view_lag: float = 0.0
    #: The view refreshes only this often, with a stall of ``stall`` seconds every ``stall_every``
    #: (batched notices; a loaded machine at x10 time).
    view_every: float = 0.0
    stall: float = 0.0
    stall_every: float = 0.0


@dataclass
class SimResult:
    dials: int = 0
    live_answers: int = 0
    abandoned: int = 0
    occupancy: float = 0.0
    agent_hours: float = 0.0
    max_concurrent_reserved: int = 0
    phases: dict[str, int] = field(default_factory=dict)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def dials_per_agent_hour(self) -> float:
        return self.dials / self.agent_hours if self.agent_hours else 0.0


def simulate(
    mode: str, seed: int, cfg: SimConfig = SimConfig(), pacing: PredictiveConfig | None = None
) -> SimResult:
    rng = random.Random(seed)
    pool = AgentPool()
    t0 = 0.0
    for i in range(cfg.agents):
        agent = Agent(
            id=f"a{i:02d}",
            endpoint=PhoneEndpoint(number=f"44770090{i:04d}"),
            wrap_up_seconds=cfg.wrap_up,
        )
        cmd = AgentCommand(
            id=f"login-{i}",
            occurred_at=datetime.fromtimestamp(t0, UTC),
            agent_id=agent.id,
            action=AgentAction.LOGIN,
            agent=agent,
        )
        pool.apply(cmd, t0)
    pacer = PredictivePacer(
        pacing if pacing is not None else PredictiveConfig(connect_within=cfg.connect_within),
        DialStats(abandon_window=cfg.abandon_window),
    )
    stats = pacer.stats
    out = SimResult()
    events: list[tuple[float, int, str, str]] = []
    seq = 0
    dialed_at: dict[str, float] = {}
    answered_at: dict[str, float] = {}
    waiting: dict[str, float] = {}  # call -> answered at (insertion order = FIFO)
    ringing = 0
    last_pace = 0.0
    seen: deque[tuple[float, PoolCounts]] = deque()  # the pool's counts, for the view's lag

    def at(t: float, kind: str, ref: str = "") -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ref))

    def connect(ref: str, t: float) -> None:
        at(t + cfg.agent_answers_after, "connect", ref)

    def serve(t: float) -> None:
        for ref in list(waiting):
            decision = pool.apply(Reserve(f"r2:{ref}", ref), t)[0]
            if not isinstance(decision, Reserved):
                return
            del waiting[ref]
            connect(ref, t)

    at(t0, "pace")
    budget_per_step = cfg.cps * cfg.pace_every
    credit = 0.0
    while events:
        t, _, kind, ref = heapq.heappop(events)
        if t > cfg.duration:
            break
        if kind == "pace":
            pool.tick(t)
            serve(t)
            stalled = cfg.stall_every > 0 and (t % cfg.stall_every) < cfg.stall
            if not seen or (not stalled and t - seen[-1][0] >= cfg.view_every):
                seen.append((t, pool.counts(t)))
            while len(seen) > 1 and seen[1][0] <= t - cfg.view_lag:
                seen.popleft()
            load = AgentLoad.of(seen[0][1], ringing, len(waiting))
            if mode == "progressive":
                allowance = progressive(load, 1.0)
            else:
                allowance = pacer.allowance(t, load)
            out.phases[allowance.phase] = out.phases.get(allowance.phase, 0) + 1
            credit = min(credit + budget_per_step, budget_per_step)
            n = min(allowance.dials or 0, int(credit))
            credit -= n
            if cfg.contacts is not None:
                n = min(n, cfg.contacts - out.dials)
            for _ in range(n):
                out.dials += 1
                ref = f"c{out.dials}"
                dialed_at[ref] = t
                ringing += 1
                if rng.random() < cfg.answer_rate:
                    at(t + cfg.latency + rng.uniform(*cfg.human_ring), "answer", ref)
                else:
                    at(t + cfg.latency + rng.uniform(*cfg.other_ring), "no_answer", ref)
            if cfg.contacts is None or out.dials < cfg.contacts or ringing or waiting:
                at(t + cfg.pace_every, "pace")
            else:
                last_pace = t
        elif kind == "answer":
            out.live_answers += 1
            answered_at[ref] = t
            at(t + cfg.latency, "noticed", ref)
        elif kind == "no_answer":
            ringing -= 1
            stats.on_no_live_answer()
        elif kind == "noticed":
            ringing -= 1
            stats.on_live_answer(t, t - dialed_at[ref])
            decision = pool.apply(Reserve(f"r1:{ref}", ref), t)[0]
            if isinstance(decision, Reserved):
                connect(ref, t)
            else:
                waiting[ref] = t
                at(answered_at[ref] + cfg.latency + cfg.connect_within, "deadline", ref)
        elif kind == "deadline":
            if ref in waiting:
                del waiting[ref]
                out.abandoned += 1
                stats.on_abandoned(answered_at[ref])
        elif kind == "connect":
            pool.apply(Connected(f"k:{ref}", ref), t)
            stats.on_bridged(ref, t)
            talk = rng.expovariate(1.0 / cfg.talk_mean)
            at(t + talk, "end", ref)
            dialed_at[ref] = t  # reused: when the agent became busy with it
        elif kind == "end" and cfg.end_latency > 0:
            at(t + cfg.end_latency, "end_noticed", ref)
        elif kind in ("end", "end_noticed"):
            pool.apply(CallEnded(f"e:{ref}", ref), t)
            stats.on_handled(t - dialed_at[ref] + cfg.wrap_up, ref)
            at(t + cfg.wrap_up, "freed")
        elif kind == "freed":
            pool.tick(t)
            serve(t)
        counts = pool.counts(t)
        out.max_concurrent_reserved = max(out.max_concurrent_reserved, counts.reserved)
    end = cfg.duration if cfg.contacts is None else min(cfg.duration, max(last_pace, t))
    occ = pool.occupancy(end)
    out.occupancy = occ.occupancy or 0.0
    out.agent_hours = occ.logged_in_seconds / 3600.0
    return out


if __name__ == "__main__":
    import sys

    overrides: dict[str, object] = {}
    for arg in sys.argv[1:]:
        k, v = arg.split("=")
        overrides[k] = tuple(map(float, v.split(","))) if "," in v else float(v)
    if "contacts" in overrides:
        overrides["contacts"] = int(overrides["contacts"])  # type: ignore[call-overload]
    config = SimConfig(**overrides)  # type: ignore[arg-type]
    for seed in (1, 2, 3):
        for mode in ("progressive", "predictive"):
            r = simulate(mode, seed, config)
            print(
                f"seed {seed} {mode:11s} dials {r.dials:5d} live {r.live_answers:4d} "
                f"abandoned {r.abandoned:3d} rate {r.abandon_rate:.4f} occupancy "
                f"{r.occupancy:.3f} dials/agent-h {r.dials_per_agent_hour:.1f} {r.phases}"
            )
