"""Pacing of new dials at the campaign's share of the account CPS.

The dispatcher enforces the account limit again; pacing here keeps the command queue from
filling with work the dispatcher would only hold back (and keeps pause/cancel prompt, since
little is queued). Pure: time is passed in as epoch seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["DialRate", "Pacer"]


@dataclass(slots=True)
class Pacer:
    """A sliding log: at most ``limit`` dials in any window of ``window`` seconds.

    For a rate of at least 1/s the window is one second and the limit ``floor(rate)``; a slower
    rate allows one dial per ``1/rate`` seconds. Either way no rolling second ever holds more
    than ``rate`` dials, and a controller that wakes late can still use its whole budget.
    """

    rate: float
    log: deque[float] = field(default_factory=deque)

    @property
    def limit(self) -> int:
        return max(1, int(self.rate + 1e-9))

    @property
    def window(self) -> float:
        return 1.0 if self.rate >= 1 else 1.0 / self.rate

    def _trim(self, now: float) -> None:
        while self.log and self.log[0] <= now - self.window:
            self.log.popleft()

    def ready(self, now: float) -> bool:
        self._trim(now)
        return len(self.log) < self.limit

    def take(self, now: float) -> None:
        self._trim(now)
        self.log.append(now)

    def next_at(self) -> float | None:
        """When the next dial may go (None: now)."""
        if len(self.log) < self.limit:
            return None
        return self.log[-self.limit] + self.window

    def to_json(self) -> list[float]:
        return list(self.log)


@dataclass(slots=True)
class DialRate:
    """Dials in the last ``window`` seconds (for dials/min and ETA); bounded by rate x window."""

    window: float = 60.0
    times: deque[float] = field(default_factory=deque)

    def add(self, now: float) -> None:
        self.times.append(now)
        self.trim(now)

    def trim(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()

    def per_minute(self, now: float, since: float | None = None) -> float:
        self.trim(now)
        span = self.window
        if since is not None:
            span = min(span, max(now - since, 1.0))
        return len(self.times) * 60.0 / span
