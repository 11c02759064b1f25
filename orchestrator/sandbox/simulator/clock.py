"""Simulated time: call lifecycles run ``time_scale`` times faster than the wall clock.

Only the *telephony* timeline is scaled (ringing, talking, TTS, the "too early" window), so a
campaign of thousands of contacts finishes in minutes. Rate limits and HTTP timeouts stay in real
time, because the product's dispatcher and ingress measure them with real clocks. So do the date
filters of ``GET /v1/calls``: a client windows a listing by its own clock, as it would Vonage's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SimClock:
    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = float(time_scale)
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def mono(self) -> float:
        """Real monotonic seconds (for limits and timeouts)."""
        return time.monotonic()

    def wall(self, mono: float | None = None) -> float:
        """Real Unix time of a monotonic instant (ledger timestamps: comparable with the limiter)."""
        m = time.monotonic() if mono is None else mono
        return self._wall0 + (m - self._mono0)

    def sim(self, mono: float | None = None) -> float:
        """Simulated Unix time: starts at the real time, then runs ``time_scale`` times faster."""
        m = time.monotonic() if mono is None else mono
        return self._wall0 + (m - self._mono0) * self.time_scale

    def mono_at(self, sim: float) -> float:
        """The monotonic instant of a simulated time (the inverse of :meth:`sim`)."""
        return self._mono0 + (sim - self._wall0) / self.time_scale

    def real_seconds(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) / self.time_scale

    def sim_elapsed(self, since_mono: float, now_mono: float | None = None) -> float:
        now = time.monotonic() if now_mono is None else now_mono
        return (now - since_mono) * self.time_scale


def iso(ts: float) -> str:
    """Vonage's webhook time format: ISO 8601 UTC with milliseconds and ``Z``."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
