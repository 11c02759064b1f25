"""What an agent campaign has learned from its own calls, for predictive pacing.

Predictive pacing dials for agents who are not free yet, so it needs four figures it cannot know
in advance and that drift during a day: how many dials a person answers, how long a dial rings
before that, how long an agent is busy with a call (talk and wrap-up), and how many live answers
found no agent in time. The first three are running estimates (:class:`Ewma`); the abandon rate
is counted exactly over the campaign's rolling window, because it is the figure the rules cap.

Pure and restorable: times are passed in (epoch seconds), :meth:`DialStats.to_json` and
:meth:`DialStats.from_json` carry everything across a restart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from handlers.dial_rate import DialRate

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

    def on_handled(self, seconds: float) -> None:
        """An agent was busy this long with one call: talk and wrap-up."""
        self.handle_time.add(max(0.0, seconds))

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
        return stats
