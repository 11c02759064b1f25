"""A campaign's share of the account CPS as a long-run rate that lends back time it lost.

The wire limit is not this module's job: the dispatcher keeps every rolling second of the
account under its CPS (:mod:`handlers.sliding_window`). This pacer only keeps one campaign at its
``cps_share`` on average, and it sits *upstream* of that limiter, which changes what is right.

It used to be a sliding log of the same rate (CPS x 2 over 2 s). Two limiters of one rate in
series starve the second: the log frees a slot exactly two seconds after each dial was written,
the commands then cross a transaction and a fetch before the dispatcher sees them, and whenever
that took longer than the dispatcher's next free second, the second went partly unused and the
log never gave the time back. The campaign bench at 20 CPS read 100 % in some 10 s windows and
80-90 % in others, with whole seconds of 0 creates on the simulator's ledger.

A rate with a burst allowance (the generic cell rate algorithm: one float, the theoretical
arrival time) keeps the same long-run bound, ``rate x T + burst`` dials in any ``T`` seconds, but
time the campaign did not use (because the dispatcher or the broker was slow) accumulates up to
``burst`` and is spent as soon as there is room. While the campaign has the account to itself at
share 1, the dispatcher is the binding limit and this pacer never is; the queue ahead of the
dispatcher is bounded separately (the campaign's unacked window), which also keeps a pause
prompt. Pure: times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DialPacer"]


@dataclass(slots=True)
class DialPacer:
    """At most ``rate x T + burst`` admissions in any ``T`` seconds (``burst`` >= 1)."""

    rate: float
    burst: float
    #: Theoretical arrival time of the next admission; 0 = never used (a full burst ready).
    tat: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be > 0")
        self.burst = max(1.0, self.burst)

    @property
    def _interval(self) -> float:
        return 1.0 / self.rate

    @property
    def _tolerance(self) -> float:
        return (self.burst - 1.0) * self._interval

    def next_free(self, now: float) -> float | None:
        """None if a dial may go now, else the time it may."""
        at = self.tat - self._tolerance
        return None if now >= at - 1e-9 else at  # 1e-9: sums of intervals round up

    def try_acquire(self, now: float) -> bool:
        if self.next_free(now) is not None:
            return False
        self.tat = max(self.tat, now) + self._interval
        return True

    def to_json(self) -> float:
        return self.tat

    def restore(self, tat: float | None) -> None:
        """A state from before this pacer (or none) restores with a full burst: the unacked
        window still bounds what is queued, and the dispatcher still bounds the wire."""
        self.tat = float(tat or 0.0)
