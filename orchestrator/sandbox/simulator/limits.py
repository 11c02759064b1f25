"""The simulator's rate limits, the way Vonage enforces them: at most N admissions in ANY window.

The log is the product's one sliding-window limiter, counted as a server counts arrivals
(:class:`handlers.sliding_window.ArrivalLog`): a sliding log, not a token bucket (a bucket lets a
full burst through at every refill boundary, which would show up as more than N calls inside
some 1-second window in the ledger). Rejections are not recorded, so a client that is being
refused does not push its own window further out (Vonage does not queue: an over-limit request
is simply refused with 429).
"""

from __future__ import annotations

import math

from handlers.sliding_window import ArrivalLog, Slot

__all__ = ["RollingWindowLimiter"]


class RollingWindowLimiter:
    """``rate`` admissions per second over a rolling window.

    A whole rate ``r`` means ``r`` admissions per 1 s window. A fractional rate (``0.5``, ``2.5``)
    keeps the same average with a longer window: ``n = max(1, round(rate))`` admissions per
    ``n / rate`` seconds.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0 or math.isnan(rate):
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.limit = max(1, round(rate))
        self.window = self.limit / self.rate
        self._log = ArrivalLog(self.limit, self.window)

    def try_acquire(self, now: float) -> bool:
        """Admit (and record) one request at monotonic time ``now``, or refuse it."""
        return isinstance(self._log.try_acquire(now), Slot)

    def retry_after(self, now: float) -> float:
        """Seconds until the next admission would succeed (0 when one would now)."""
        at = self._log.next_free(now)
        return 0.0 if at is None else max(0.0, at - now)

    def reset(self) -> None:
        self._log.clear()
