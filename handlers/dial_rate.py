"""A campaign's dial rate over the last minute, for its progress (dials/min and the ETA).

A meter, not a limiter: pacing itself is the one sliding-window limiter
(:mod:`handlers.sliding_window`). Pure: time is passed in as epoch seconds. The same meter counts
a predictive campaign's live answers and abandons over its abandon window
(:mod:`handlers.dial_stats`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["DialRate"]


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

    def count(self, now: float) -> int:
        """Events in the window ending at ``now``."""
        self.trim(now)
        return len(self.times)

    def per_minute(self, now: float, since: float | None = None) -> float:
        self.trim(now)
        span = self.window
        if since is not None:
            span = min(span, max(now - since, 1.0))
        return len(self.times) * 60.0 / span
