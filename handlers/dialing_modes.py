"""How many new dials the agents allow now: agentless, progressive and predictive pacing.

Only the agents' side of the limit. The account's CPS and the campaign's concurrency cap are the
campaign machine's pacer (:mod:`handlers.campaign`); the caller dials the smaller of the two.

- **agentless**: no agent limit (the flow alone talks to the callee).
- **progressive**: ``ratio`` dials per free agent, minus the dials still ringing. Agents wait
  while every dial rings, so most of their time is spent waiting at a 30 % answer rate.
- **predictive**: dials for the agents expected to be free when the dials are answered. A dial
  placed now is answered after the learned answer delay; a busy agent is free by then with the
  probability a learned mean handle time gives; each expected free agent gets ``1 / answer
  rate`` lines, so that on average one person answers per free agent. Dialing for expected
  rather than actual agents is what abandons calls, so the abandon rate over the campaign's
  window steers it: below ``taper_from`` of the cap it dials at full level, from there the
  level and the prediction taper linearly, and at or over the cap it drops to one dial per free
  agent (VICIdial's ADAPT_HARD_LIMIT). Until ``warmup_answers`` live answers have been seen it
  dials progressively: the estimates are not worth betting callers on yet.

The level is recomputed on a cadence of campaign time (15 s by default, VICIdial's), not on every
dial, so it holds still long enough for its effect to show in the figures it is computed from;
the number of dials still follows the live counts between recomputations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from contracts.campaign import AgentsSpec
from handlers.agents import PoolCounts
from handlers.dial_stats import DialStats

__all__ = [
    "AgentLoad",
    "DialAllowance",
    "DialPlan",
    "Phase",
    "PredictiveConfig",
    "PredictivePacer",
    "agentless",
    "progressive",
]

Phase = Literal["agentless", "progressive", "warmup", "adaptive", "hard_limit"]
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """What the pacing sees of the campaign's agents and calls at one moment."""

    available: int
    busy: int  # on a call or wrapping up: free again by themselves
    ringing: int  # dials placed and not answered or ended yet
    waiting: int = 0  # live answers waiting for an agent (within connect_within)

    @classmethod
    def of(cls, counts: PoolCounts, ringing: int, waiting: int = 0) -> AgentLoad:
        return cls(counts.available, counts.busy, ringing, waiting)

    @property
    def free(self) -> int:
        """Available agents no waiting caller has a claim on."""
        return max(0, self.available - self.waiting)


@dataclass(frozen=True, slots=True)
class DialAllowance:
    """Dials that may start now; ``None``: the agents set no limit (agentless)."""

    dials: int | None
    level: float  # lines per (expected) free agent behind the number
    phase: Phase


def agentless() -> DialAllowance:
    return DialAllowance(None, 0.0, "agentless")


def progressive(load: AgentLoad, ratio: float = 1.0, phase: Phase = "progressive") -> DialAllowance:
    """``ratio`` dials per free agent, minus the dials still ringing."""
    if ratio <= 0:
        raise ValueError("ratio must be > 0")
    dials = max(0, math.floor(ratio * load.free + _EPS) - load.ringing)
    return DialAllowance(dials, ratio, phase)


@dataclass(frozen=True, slots=True)
class PredictiveConfig:
    abandon_cap: float = 0.03
    connect_within: float = 2.0
    ratio: float = 1.0  # progressive ratio during warm-up
    cadence: float = 15.0
    warmup_answers: int = 20
    #: Most lines per expected free agent, whatever the answer rate says (a 5 % answer rate
    #: would otherwise ask for 20 lines an agent, and one bad estimate would flood the agents).
    max_level: float = 5.0
    #: Share of the cap from which the dial level tapers toward 1:1.
    taper_from: float = 0.5
    #: Guesses until the first samples: only the horizon and the free chance use them.
    default_answer_delay: float = 10.0
    default_handle_time: float = 120.0

    def __post_init__(self) -> None:
        if not 0 <= self.abandon_cap <= 1:
            raise ValueError("abandon_cap must be in [0, 1]")
        if self.cadence <= 0 or self.connect_within < 0 or self.ratio <= 0:
            raise ValueError("cadence and ratio must be > 0, connect_within >= 0")
        if self.max_level < 1 or not 0 <= self.taper_from < 1 or self.warmup_answers < 0:
            raise ValueError("max_level >= 1, taper_from in [0, 1), warmup_answers >= 0")

    @classmethod
    def from_spec(cls, agents: AgentsSpec, **overrides: Any) -> PredictiveConfig:
        return cls(
            abandon_cap=agents.abandon_cap,
            connect_within=agents.connect_within,
            ratio=agents.ratio,
            **overrides,
        )


@dataclass(frozen=True, slots=True)
class DialPlan:
    """One recomputation: the level and the figures it came from (for status and metrics)."""

    at: float
    phase: Phase
    level: float
    share: float  # how much of the busy agents' expected freeing is dialed for, in [0, 1]
    free_chance: float  # that a busy agent is free within the horizon
    horizon: float
    answer_rate: float | None
    handle_time: float | None
    abandon_rate: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "phase": self.phase,
            "level": self.level,
            "share": self.share,
            "free_chance": self.free_chance,
            "horizon": self.horizon,
            "answer_rate": self.answer_rate,
            "handle_time": self.handle_time,
            "abandon_rate": self.abandon_rate,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DialPlan:
        return cls(**d)


class PredictivePacer:
    """Predictive pacing for one campaign: its learned figures and its current plan."""

    def __init__(self, config: PredictiveConfig, stats: DialStats | None = None) -> None:
        self.config = config
        self.stats = stats if stats is not None else DialStats()
        self.plan: DialPlan | None = None

    def allowance(self, now: float, load: AgentLoad) -> DialAllowance:
        """Dials that may start at ``now``; recomputes the plan when a cadence has passed."""
        plan = self.plan
        if plan is None or not plan.at <= now < plan.at + self.config.cadence:
            plan = self.plan = self.replan(now)
        return self.apply(plan, load)

    def replan(self, now: float) -> DialPlan:
        cfg, stats = self.config, self.stats
        rate = stats.abandon_rate(now)
        p = stats.answer_rate.value
        handle = stats.handle_time.value
        horizon = (stats.answer_delay.value or cfg.default_answer_delay) + cfg.connect_within
        free_chance = 1.0 - math.exp(-horizon / max(handle or cfg.default_handle_time, 1.0))

        def plan(phase: Phase, level: float, share: float) -> DialPlan:
            return DialPlan(now, phase, level, share, free_chance, horizon, p, handle, rate)

        if stats.live_answers < cfg.warmup_answers or p is None or p <= 0:
            return plan("warmup", cfg.ratio, 0.0)
        if rate is not None and rate >= cfg.abandon_cap:
            return plan("hard_limit", 1.0, 0.0)
        full = min(cfg.max_level, max(1.0, 1.0 / p))
        taper_at = cfg.taper_from * cfg.abandon_cap
        share = 1.0
        if rate is not None and rate > taper_at:
            share = (cfg.abandon_cap - rate) / (cfg.abandon_cap - taper_at)
        return plan("adaptive", 1.0 + (full - 1.0) * share, share)

    @staticmethod
    def apply(plan: DialPlan, load: AgentLoad) -> DialAllowance:
        """The plan's dials for the live counts."""
        if plan.phase == "warmup":
            return progressive(load, plan.level, "warmup")
        if plan.phase == "hard_limit":
            return progressive(load, 1.0, "hard_limit")
        expected_free = max(
            0.0, load.available + plan.share * plan.free_chance * load.busy - load.waiting
        )
        dials = max(0, math.floor(plan.level * expected_free + _EPS) - load.ringing)
        return DialAllowance(dials, plan.level, plan.phase)

    def to_json(self) -> dict[str, Any]:
        return {
            "stats": self.stats.to_json(),
            "plan": self.plan.to_json() if self.plan is not None else None,
        }

    @classmethod
    def from_json(cls, config: PredictiveConfig, d: dict[str, Any]) -> PredictivePacer:
        pacer = cls(config, DialStats.from_json(d["stats"]))
        pacer.plan = DialPlan.from_json(d["plan"]) if d.get("plan") else None
        return pacer
