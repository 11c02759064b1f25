"""How many new dials the agents allow now: agentless, progressive and predictive pacing.

Only the agents' side of the limit. The account's CPS and the campaign's concurrency cap are the
campaign machine's pacer (:mod:`handlers.campaign`); the caller dials the smaller of the two.

- **agentless**: no agent limit (the flow alone talks to the callee).
- **progressive**: ``ratio`` dials per free agent, minus the dials still ringing. Agents wait
  while every dial rings, so most of their time is spent waiting at a 30 % answer rate.
- **predictive**: dials for the agents expected to be free when the dials are answered. A dial
  placed now is answered after the learned answer delay; a busy agent is free by then with the
  probability a learned mean handle time gives. How far ahead to dial is a bet on callers, so
  it is priced: the number of people answering the lines in flight is binomial (the learned
  answer rate), the busy agents freeing in time are binomial too, and the dials are the most
  whose *expected abandons* (people beyond the agents there for them) stay under a target
  share of the expected live answers (:func:`expected_abandons`). Averaging over the pool is
  what makes a large team dial further ahead than a small one at the same abandon risk, which
  a fixed lines-per-agent level cannot do. The target is ``aim`` of the cap while the observed
  abandon rate over the campaign's window is under ``taper_from`` of the cap; from there it
  tapers linearly, and at or over the cap it drops to one dial per free agent (VICIdial's
  ADAPT_HARD_LIMIT). Never fewer dials than one per free agent, never more than ``1 / answer
  rate`` (at most ``max_level``) per expected free agent. Until ``warmup_answers`` live answers
  have been seen it dials progressively: the estimates are not worth betting callers on yet.

  The mean alone under-prices the tail, and the cap is on a count: with 26 live answers in
  the window, one abandon is 3.8 %, over a 3 % cap, and the hard limit follows until the rate
  is back under it (a bench run spent 16 % of its time there after one abandon at answer 26;
  others 22 % after a cluster of three around answer 70). So the dials must also keep the
  *probability* that their abandons outrun the window's remaining budget (``cap x answers``,
  those the lines in flight will add included, minus the abandons already counted) under
  ``tail_risk`` (:func:`abandon_tail`). Early in a campaign that budget is 0 or 1 abandons
  and binds; later, with budget to spare, it does not (near the cap, the taper binds first).

The plan (phase, target, estimates) is recomputed on a cadence of campaign time (15 s by default,
VICIdial's), so it holds still long enough for its effect to show in the figures it is computed
from, and at once when the warm-up ends or an abandon is counted: the cap is not left to a timer.
The number of dials follows the live counts between recomputations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
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
    "abandon_tail",
    "agentless",
    "expected_abandons",
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
    #: Share of the cap each decision aims at (expected abandons / expected live answers): the
    #: model's estimates lag and the pipeline adds delay, so it aims under the cap, not at it.
    aim: float = 0.6
    #: Live answers in the window from which the full target applies; before, the target grows
    #: with them. One abandon moves the rate by 1 / answers: at 25 answers that is 4 % (over a
    #: 3 % cap, and the hard limit for the next 10 answers), at 100 it is 1 %.
    ramp_answers: int = 100
    #: Most chance a decision's abandons exceed what is left of the window's budget.
    tail_risk: float = 0.003
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
        if not 0 <= self.aim <= 1 or not 0 < self.tail_risk <= 1:
            raise ValueError("aim must be in [0, 1], tail_risk in (0, 1]")

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
    #: Expected abandons per expected live answer that the dials may risk (adaptive only).
    target: float = 0.0
    #: Abandons counted when the plan was made: one more replans at once.
    abandoned: int = 0
    #: Live answers and abandons in the window when the plan was made (the abandon budget).
    window_answers: int = 0
    window_abandons: int = 0

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
            "target": self.target,
            "abandoned": self.abandoned,
            "window_answers": self.window_answers,
            "window_abandons": self.window_abandons,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DialPlan:
        return cls(**d)  # plans written before a field existed take its default


class PredictivePacer:
    """Predictive pacing for one campaign: its learned figures and its current plan."""

    def __init__(self, config: PredictiveConfig, stats: DialStats | None = None) -> None:
        self.config = config
        self.stats = stats if stats is not None else DialStats()
        self.plan: DialPlan | None = None

    def allowance(self, now: float, load: AgentLoad) -> DialAllowance:
        """Dials that may start at ``now``; recomputes the plan when a cadence has passed."""
        plan = self.plan
        if (
            plan is None
            or not plan.at <= now < plan.at + self.config.cadence
            or plan.abandoned != self.stats.abandoned
            or (plan.phase == "warmup" and self.stats.live_answers >= self.config.warmup_answers)
        ):
            plan = self.plan = self.replan(now)
        return self.apply(plan, load)

    def replan(self, now: float) -> DialPlan:
        cfg, stats = self.config, self.stats
        rate = stats.abandon_rate(now)
        p = stats.answer_rate.value
        handle = stats.handle_estimate(now)
        # Plan with the pessimistic side of each estimate (one standard error): a few hundred
        # calls leave the answer rate a few points and the handle time a tenth off, and the
        # optimistic side of either is what abandons callers.
        if p is not None and 0 < p < 1:
            p = min(1.0, p + math.sqrt(p * (1 - p) / _effective(stats.answer_rate, stats.alpha)))
        if handle is not None:
            handle *= 1.0 + 1.0 / math.sqrt(max(1, stats.handled))
        horizon = (stats.answer_delay.value or cfg.default_answer_delay) + cfg.connect_within
        free_chance = 1.0 - math.exp(-horizon / max(handle or cfg.default_handle_time, 1.0))

        answered = stats.answers.count(now)
        ramp = min(1.0, answered / cfg.ramp_answers) if cfg.ramp_answers > 0 else 1.0

        def plan(phase: Phase, level: float, share: float) -> DialPlan:
            target = cfg.aim * cfg.abandon_cap * share * ramp if phase == "adaptive" else 0.0
            return DialPlan(
                now, phase, level, share, free_chance, horizon, p, handle, rate, target,
                stats.abandoned, answered, stats.abandons.count(now),
            )  # fmt: skip

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

    def apply(self, plan: DialPlan, load: AgentLoad) -> DialAllowance:
        """The plan's dials for the live counts."""
        if plan.phase == "warmup":
            return progressive(load, plan.level, "warmup")
        if plan.phase == "hard_limit":
            return progressive(load, 1.0, "hard_limit")
        expected_free = max(
            0.0, load.available + plan.share * plan.free_chance * load.busy - load.waiting
        )
        ceiling = max(0, math.floor(plan.level * expected_free + _EPS) - load.ringing)
        floor = min(ceiling, max(0, load.free - load.ringing))
        p = plan.answer_rate or 0.0
        if ceiling <= floor or p <= 0:
            return DialAllowance(floor, plan.level, plan.phase)
        p = round(p, 4)
        free = load.available - load.waiting
        # The lines already ringing are answered before any new one, while fewer busy agents
        # have freed: checked part way through the answer delay (their answers spread over it),
        # a new dial is only worth its risk if theirs is already within the target.
        cw, delay = self.config.connect_within, max(0.0, plan.horizon - self.config.connect_within)
        handle = max(plan.handle_time or self.config.default_handle_time, 1.0)
        for part in _CHECKPOINTS:
            q = round(1.0 - math.exp(-(delay * part + cw) / handle), 4)
            risk = expected_abandons(load.ringing, round(p * part, 4), free, load.busy, q)
            if risk > plan.target * load.ringing * p + _EPS:
                return DialAllowance(floor, plan.level, plan.phase)
        dials = _priced_dials(
            plan.target,
            p,
            round(plan.free_chance, 4),
            free,
            load.busy,
            load.ringing,
            floor,
            ceiling,
            self.config.abandon_cap,
            plan.window_answers,
            plan.window_abandons,
            self.config.tail_risk,
        )
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


def _effective(estimate: Any, alpha: float) -> float:
    """How many samples a running mean stands for: all of them at first, then ``(2 - a) / a``."""
    return float(max(1, min(estimate.samples, (2 - alpha) / alpha)))


#: Where in the answer delay the lines already ringing are checked (shares of it).
_CHECKPOINTS = (0.25, 0.5, 0.75)


@lru_cache(maxsize=8192)
def expected_abandons(lines: int, p: float, free: int, busy: int, q: float) -> float:
    """Expected people with no agent: ``E[max(0, H - free - K)]``.

    ``H ~ Binomial(lines, p)``: the people who answer the lines in flight. ``K ~ Binomial(busy,
    q)``: the busy agents free by the time they answer. ``free`` may be negative (callers
    already waiting hold a claim on agents still to come).
    """
    k_pmf = _binomial(busy, q)
    # g[x] = E[max(0, x - K)]: g[x] = g[x-1] + P(K <= x-1), and x - E[K] once x > busy.
    mean_k = busy * q
    top = max(0, lines - free)
    g = [0.0] * (top + 1)
    below = 0.0
    for x in range(1, top + 1):
        if x - 1 <= busy:
            below += k_pmf[x - 1]
        g[x] = g[x - 1] + below if x <= busy + 1 else x - mean_k
    h_pmf = _binomial(lines, p)
    return sum(ph * g[h - free] for h, ph in enumerate(h_pmf) if h - free > 0)


@lru_cache(maxsize=8192)
def abandon_tail(lines: int, p: float, free: int, busy: int, q: float, budget: int) -> float:
    """The chance of more than ``budget`` people with no agent: ``P(H - free - K > budget)``,
    with ``H`` and ``K`` as in :func:`expected_abandons`."""
    if budget < 0:
        return 1.0
    k_cdf: list[float] = []  # k_cdf[j] = P(K <= j)
    acc = 0.0
    for pk in _binomial(busy, q):
        acc += pk
        k_cdf.append(acc)
    tail = 0.0
    for h, ph in enumerate(_binomial(lines, p)):
        short = h - free - budget  # more than budget abandons when K <= short - 1
        if short > 0 and ph > 0.0:
            tail += ph * (1.0 if short - 1 >= busy else k_cdf[short - 1])
    return min(1.0, tail)


def _budget(cap: float, answers: int, abandons: int, expected_answers: float) -> int:
    """Abandons the window can still take: ``cap`` of its live answers, those the lines in
    flight are expected to add included, minus those already counted."""
    return math.floor(cap * (answers + expected_answers) + _EPS) - abandons


def _binomial(n: int, p: float) -> list[float]:
    if n <= 0 or p <= 0:
        return [1.0] + [0.0] * max(0, n)
    if p >= 1:
        return [0.0] * n + [1.0]
    lp, lq, ln = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return [
        math.exp(ln - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq)
        for k in range(n + 1)
    ]


@lru_cache(maxsize=4096)
def _priced_dials(
    target: float,
    p: float,
    q: float,
    free: int,
    busy: int,
    ringing: int,
    lo: int,
    hi: int,
    cap: float,
    answers: int,
    abandons: int,
    tail_risk: float,
) -> int:
    """The most dials in ``[lo, hi]`` whose lines' expected abandons stay within ``target`` of
    their expected live answers, and whose chance of more abandons than the window's budget
    stays within ``tail_risk`` (``lo`` when none does). Both grow with the lines, so a
    bisection finds the edge. Cached: within a plan the same counts come back tick after tick."""

    def fits(n: int) -> bool:
        lines = ringing + n
        if expected_abandons(lines, p, free, busy, q) > target * lines * p + _EPS:
            return False
        if tail_risk >= 1.0:
            return True
        budget = _budget(cap, answers, abandons, lines * p)
        return abandon_tail(lines, p, free, busy, q, budget) <= tail_risk + _EPS

    if not fits(lo + 1):
        return lo
    good, bad = lo + 1, hi + 1
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good
