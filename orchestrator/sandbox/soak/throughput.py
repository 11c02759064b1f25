"""Does throughput hold? Dial rates by tenth of the run, from the simulator's ledger.

The question a long soak answers is whether the system is as fast after an hour as after a
minute (a broker whose memory grows with its log is not). Calls placed per second are read from
the simulator's ledger (when each call was created), never from the roles' own counters; the
run's dialling phase, from the first dial to the last, is cut into ten equal slices, and the
last slice's rate is compared with the first's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Throughput", "by_tenth"]


@dataclass(frozen=True, slots=True)
class Throughput:
    rates: tuple[float, ...]  # calls/s in each tenth of the dialling phase
    span_s: float
    calls: int

    @property
    def ratio(self) -> float:
        """Last tenth's rate over the first tenth's (1.0 = no slow-down)."""
        if not self.rates or self.rates[0] <= 0:
            return 0.0
        return self.rates[-1] / self.rates[0]

    def held(self, at_least: float = 0.8) -> bool:
        return self.ratio >= at_least

    def render(self) -> str:
        curve = " ".join(f"{r:.1f}" for r in self.rates)
        return (
            f"throughput: {self.calls} calls in {self.span_s:.0f} s; calls/s by tenth: {curve}; "
            f"last/first tenth {self.ratio:.2f}"
        )


def by_tenth(created_at: Sequence[float], tenths: int = 10) -> Throughput:
    """Calls per second in each of ``tenths`` equal slices between the first and last dial."""
    times = sorted(created_at)
    if len(times) < 2:
        return Throughput((), 0.0, len(times))
    start, end = times[0], times[-1]
    span = max(end - start, 1e-9)
    width = span / tenths
    counts = [0] * tenths
    for t in times:
        counts[min(int((t - start) / width), tenths - 1)] += 1
    return Throughput(tuple(c / width for c in counts), span, len(times))
