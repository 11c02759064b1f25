"""The agents app's Prometheus metrics (prefix ``orchestrator_agents_``).

Gauges (agents by state, callers waiting, occupancy) are copied from the pool at most twice a
second; counters and the wait histogram follow the decisions as they are made. A replay after a
crash counts its decisions again (the gauges, read from the restored pool, do not drift).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.agent_calls import AgentNotice
from contracts.agents import AgentState
from handlers.agent_desk import Abandon, AgentDesk, DeskOutput, HangupLeg, PlaceLeg

__all__ = ["AgentsMetrics"]

_INTERVAL_S = 0.5


class AgentsMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        p, r = "orchestrator_agents_", registry
        self.agents = Gauge(p + "agents", "Agents by state.", ["state"], registry=r)
        self.waiting = Gauge(
            p + "callers_waiting", "Live answers waiting for an agent now.", registry=r
        )
        self.occupancy = Gauge(
            p + "occupancy",
            "Talk time over logged-in time of every agent since they logged in (0..1).",
            registry=r,
        )
        self.reservations = Counter(
            p + "reservations_total",
            "Agents reserved for an answered call (an agent leg placed); replaces: after the "
            "previous agent's leg failed.",
            ["kind"],
            registry=r,
        )
        self.abandons = Counter(
            p + "abandons_total",
            "Live answers abandoned: no agent in time (no_agent) or too many waiting (queue_full).",
            ["reason"],
            registry=r,
        )
        self.connected = Counter(
            p + "connected_total", "Live answers bridged to an agent.", registry=r
        )
        self.hangups = Counter(
            p + "leg_hangups_total", "Agent legs hung up because nobody needed them.", registry=r
        )
        self.refused = Counter(
            p + "logins_refused_total", "Logins refused (pool full).", registry=r
        )
        self.wait = Histogram(
            p + "wait_seconds",
            "From the human answer seen to the agent's answer (connected calls).",
            registry=r,
            buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30, 60),
        )
        self._last = 0.0

    def decided(self, outs: list[DeskOutput]) -> None:
        for o in outs:
            if isinstance(o, PlaceLeg):
                self.reservations.labels("replaces" if o.replaces else "first").inc()
            elif isinstance(o, Abandon):
                pass  # counted with its notice (which has the reason)
            elif isinstance(o, HangupLeg):
                self.hangups.inc()
            elif isinstance(o, AgentNotice):
                if o.kind == "connected":
                    self.connected.inc()
                    if o.wait_s is not None:
                        self.wait.observe(o.wait_s)
                elif o.kind == "abandoned":
                    self.abandons.labels(o.reason or "no_agent").inc()

    def observe(self, desk: AgentDesk, *, force: bool = False) -> None:
        t = time.monotonic()
        if not force and t - self._last < _INTERVAL_S:
            return
        self._last = t
        counts = desk.pool.counts(desk.clock)
        for state in AgentState:
            self.agents.labels(state.value).set(getattr(counts, state.value))
        self.waiting.set(sum(1 for c in desk.calls.values() if c.agent_id is None))
        occ = desk.pool.occupancy(desk.clock).occupancy
        self.occupancy.set(occ if occ is not None else 0.0)
