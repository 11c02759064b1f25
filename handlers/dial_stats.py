"""What an agent campaign has learned from its own calls, for predictive pacing.

Predictive pacing dials for agents who are not free yet, so it needs four figures it cannot know
in advance and that drift during a day: how many dials a person answers, how long a dial rings
before that, how long an agent is busy with a call (talk and wrap-up), and how many live answers
found no agent in time. The first three are running estimates (:class:`Ewma`); the abandon rate
is counted exactly over the campaign's rolling window, because it is the figure the rules cap.

The handle time needs more care at the start of a campaign: the first calls to end are the
short ones, so a plain mean of the ended calls is about half the truth for the first minutes
(measured: 25 s against 60 s, 2 minutes into a simulated campaign), and predictive pacing then
expects agents back twice as soon as they are and abandons callers. Until the estimate has its
full sample it is the censored one: the ended calls' seconds plus the seconds the calls still
with an agent have lasted so far, over the ended calls (the exponential's maximum likelihood).

Pure and restorable: times are passed in (epoch seconds), :meth:`DialStats.to_json` and
:meth:`DialStats.from_json` carry everything across a restart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from handlers.dial_rate import DialRate

#: A call with an agent that was never reported ended is forgotten after this long.
HANDLING_FORGET_S = 4 * 3600.0

__all__ = ["DialStats", "Ewma"]


@dataclass(slots=True)
class Ewma:
    """A mean that forgets: the plain mean of the first ``1/alpha`` samples, then weighted.

    Starting as the plain mean means the first samples are not pulled toward a guessed start
    value; after that, older behaviour (the morning's answer rate) fades with weight
    ``(1 - alpha)`` per sample.
    """

    alpha: float
    value: float | None = None
    samples: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")

    def add(self, x: float) -> None:
        self.samples += 1
        if self.value is None:
            self.value = x
            return
        weight = max(1.0 / self.samples, self.alpha)
        self.value += weight * (x - self.value)

    def to_json(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "value": self.value, "samples": self.samples}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Ewma:
        return cls(alpha=d["alpha"], value=d["value"], samples=d["samples"])


@dataclass(slots=True)
class DialStats:
    """The campaign's observed answer rate, answer delay, handle time and abandon rate."""

    abandon_window: float = 3600.0
    #: One weight for every estimate: about the last 100 samples matter. Dials come by the
    #: hundred per hour, so the answer rate's estimate stays within a few points of the truth.
    alpha: float = 0.01
    answer_rate: Ewma = field(init=False)
    answer_delay: Ewma = field(init=False)
    handle_time: Ewma = field(init=False)
    answers: DialRate = field(init=False)
    abandons: DialRate = field(init=False)
    live_answers: int = 0
    abandoned: int = 0
    #: Calls with an agent now (call_ref -> since when) and the ended ones' total, for the
    #: censored handle time; bounded by the agents.
    handling: dict[str, float] = field(default_factory=dict)
    handled_seconds: float = 0.0
    handled: int = 0

    def __post_init__(self) -> None:
        if self.abandon_window <= 0:
            raise ValueError("abandon_window must be > 0")
        self.answer_rate = Ewma(self.alpha)
        self.answer_delay = Ewma(self.alpha)
        self.handle_time = Ewma(self.alpha)
        self.answers = DialRate(window=self.abandon_window)
        self.abandons = DialRate(window=self.abandon_window)

    def on_live_answer(self, answered_at: float, rang_for: float) -> None:
        """A person answered a dial after ``rang_for`` seconds."""
        self.answer_rate.add(1.0)
        self.answer_delay.add(max(0.0, rang_for))
        self.answers.add(answered_at)
        self.live_answers += 1

    def on_no_live_answer(self) -> None:
        """A dial ended without a person: a machine, busy, no answer, failed."""
        self.answer_rate.add(0.0)

    def on_abandoned(self, answered_at: float) -> None:
        """A live answer found no agent in time. Counted at its answer, like its denominator."""
        self.abandons.add(answered_at)
        self.abandoned += 1

    def on_bridged(self, call_ref: str, at: float) -> None:
        """An agent took the call at ``at``: it counts toward the handle time until it ends."""
        self.handling[call_ref] = at
        for ref, since in list(self.handling.items()):
            if at - since > HANDLING_FORGET_S:
                del self.handling[ref]

    def on_handled(self, seconds: float, call_ref: str | None = None) -> None:
        """An agent was busy this long with one call: talk and wrap-up."""
        if call_ref is not None:
            self.handling.pop(call_ref, None)
        seconds = max(0.0, seconds)
        self.handle_time.add(seconds)
        self.handled_seconds += seconds
        self.handled += 1

    def handle_estimate(self, now: float) -> float | None:
        """The mean handle time to plan with (None: nothing has ended yet).

        Censored while the running estimate is still a plain mean of its first samples: the
        calls still with an agent have lasted at least this long, and leaving them out would
        count only the short calls that ended first."""
        if self.handled == 0:
            return None
        if self.handle_time.samples >= 1.0 / self.alpha:
            return self.handle_time.value
        ongoing = sum(max(0.0, now - since) for since in self.handling.values())
        return (self.handled_seconds + ongoing) / self.handled

    def abandon_rate(self, now: float) -> float | None:
        """Abandoned over live answers in the window ending at ``now`` (None: no answers)."""
        answered = self.answers.count(now)
        if answered == 0:
            return None
        return min(1.0, self.abandons.count(now) / answered)

    def to_json(self) -> dict[str, Any]:
        return {
            "abandon_window": self.abandon_window,
            "alpha": self.alpha,
            "answer_rate": self.answer_rate.to_json(),
            "answer_delay": self.answer_delay.to_json(),
            "handle_time": self.handle_time.to_json(),
            "answers": list(self.answers.times),
            "abandons": list(self.abandons.times),
            "live_answers": self.live_answers,
            "abandoned": self.abandoned,
            "handling": self.handling,
            "handled_seconds": self.handled_seconds,
            "handled": self.handled,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DialStats:
        stats = cls(abandon_window=d["abandon_window"], alpha=d["alpha"])
        stats.answer_rate = Ewma.from_json(d["answer_rate"])
        stats.answer_delay = Ewma.from_json(d["answer_delay"])
        stats.handle_time = Ewma.from_json(d["handle_time"])
        stats.answers.times = deque(d["answers"])
        stats.abandons.times = deque(d["abandons"])
        stats.live_answers = d["live_answers"]
        stats.abandoned = d["abandoned"]
        # Written before the censored handle time: no calls known to be with an agent.
        stats.handling = dict(d.get("handling", {}))
        stats.handled_seconds = d.get("handled_seconds", 0.0)
        stats.handled = d.get("handled", stats.handle_time.samples)
        return stats
