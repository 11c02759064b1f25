"""The one sliding-window limiter: never more than N admissions in any window (pure, clock-free).

Two places limit a rate on a rolling window, both with this log: the dispatcher (client side,
below) and the Voice API simulator (server side, :class:`ArrivalLog`). A campaign's share of the
CPS is not a rolling-window limit but a long-run rate upstream of the dispatcher's
(``handlers.dial_pacer`` says why a log there starved the dispatcher). Times are plain floats
from the caller's clock; nothing here reads one. What follows is the dispatcher's case, the
demanding one.

Client side: a rolling-window limiter with an AIMD ceiling, never more than N sends in any 1 s.

Vonage counts requests as they *arrive* on a rolling one-second window and refuses the excess with
429 (nothing is queued). A token bucket would let a full burst through at every refill and put
2N requests inside some window; a plain sliding log of *send* times is not enough either, because
two requests sent 1.0 s apart arrive less than 1 s apart when the first one travelled slower.

So this is a sliding log whose entries are held longer than the window by how much *later than
the fastest possible* the request may have arrived. Request i, sent at ``s_i`` with round trip
``L_i``, arrived at ``a_i = s_i + d_i``; its one-way delay beyond the minimum, ``d_i - d_min``, is
at most ``L_i - L_min`` (the rest of the round trip cannot be faster than its own minimum), where
``L_min`` is the fastest round trip this limiter has ever seen. So slot i is held until
``s_i + min(L_i - L_min + floor, cap) + window + guard``; any later send j (arriving no earlier
than ``s_j + d_min``) then lands more than a window after it. While a response is outstanding the
slot is held for the full ``cap``. Against loopback the hold is a few milliseconds (>99 % of the
budget); against a distant API it is the *jitter*, not the latency; a response slower than
``cap`` holds its slot for ``cap`` at most. ``L_min`` is all-time: it can only fall, which only
lengthens holds (safe when a route changes); it is trusted after a few round trips (the first
ones include connection set-up), and until then slots are held for their whole round trip. The
bound assumes the fastest round trip seen is close to the path's true minimum (``floor`` covers
a few milliseconds of error), which holds once a handful of requests went through unqueued.

The ceiling follows AIMD: a 429 (another client on the account, or a lower limit than configured)
cuts it multiplicatively, at most once per window; it then recovers additively to the configured
rate. Admissions per window are ``floor(ceiling)``: fractional ceilings round down, which can only
under-use the budget; below one per window the window is stretched instead (a replica's share of
a small budget, e.g. 10/s over 12 replicas, is one request per 1.2 s). The budget can also be
*paused* (``Retry-After``) and *saturated* (assume the last window was full: at start-up and when
this replica takes over an account's budget from another one that may have sent a moment ago).

:class:`SlidingLog` is the pure core (property-tested in ``tests/unit/dispatcher``);
``orchestrator.dispatcher.limiter.RateLimiter`` puts an asyncio FIFO in front of it.
:class:`ArrivalLog` is the same log counted the way a server counts arrivals: a request stays in
the window for exactly ``window`` seconds after it arrived, with no holds and no guard (the
campaign's pacing and the simulator's limits).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "GUARD",
    "HOLD_FLOOR",
    "JITTER_CAP",
    "RTT_SAMPLES",
    "WINDOW",
    "AimdPolicy",
    "ArrivalLog",
    "SlidingLog",
    "Slot",
]

WINDOW = 1.0
#: Added to every hold so that "exactly one window later" is never inside the same closed window.
GUARD = 0.002
#: Longest a slot is held beyond its send (seconds): a slow or lost response costs at most this.
JITTER_CAP = 1.0
#: Added to every measured hold: ``L_min`` is an estimate of the true minimum round trip.
HOLD_FLOOR = 0.005
#: Round trips to see before trusting ``L_min`` (the first ones include connection set-up);
#: until then a slot is held for its whole round trip.
RTT_SAMPLES = 16


@dataclass(eq=False, slots=True)
class Slot:
    """One admitted send. ``hold`` is fixed when its response (or error) came back."""

    start: float
    done: float | None = None
    phantom: bool = False
    hold: float | None = None

    def release(self, window: float, guard: float, jitter_cap: float) -> float:
        """When this slot stops counting. An upper bound while the response is outstanding."""
        hold = jitter_cap if self.hold is None else min(self.hold, jitter_cap)
        return self.start + hold + window + guard


@dataclass(slots=True)
class AimdPolicy:
    """Multiplicative decrease on 429, additive increase back to the configured rate."""

    decrease: float = 0.5
    #: Ceiling units regained per second once ``hold`` has passed since the last cut.
    increase_per_s: float | None = None  # default: max(1, 10 % of the configured rate)
    hold: float = 1.0
    floor: float = 1.0


@dataclass
class SlidingLog:
    """The limiter's state machine. Times are plain floats from one monotonic clock."""

    rate: float
    window: float = WINDOW
    guard: float = GUARD
    jitter_cap: float = JITTER_CAP
    hold_floor: float = HOLD_FLOOR
    aimd: AimdPolicy = field(default_factory=AimdPolicy)
    #: Fastest round trip seen so far (seconds); ``None`` until the first response.
    rtt_min: float | None = field(default=None, init=False)
    rtt_samples: int = field(default=0, init=False)
    _slots: deque[Slot] = field(default_factory=deque, init=False, repr=False)
    _ceiling: float = field(init=False)
    _cut_at: float | None = field(default=None, init=False)
    _ceiling_at_cut: float = field(init=False)
    _paused_until: float = field(default=-math.inf, init=False)
    throttled: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be > 0")
        self._ceiling = self.rate
        self._ceiling_at_cut = self.rate

    # --- ceiling --------------------------------------------------------------------------

    def _step(self) -> float:
        if self.aimd.increase_per_s is not None:
            return self.aimd.increase_per_s
        return max(1.0, 0.1 * self.rate)

    def ceiling(self, now: float) -> float:
        """The current ceiling (admissions per window), recovered additively since the last cut."""
        if self._cut_at is None:
            return self._ceiling
        since = now - self._cut_at - self.aimd.hold
        if since <= 0:
            return self._ceiling_at_cut
        value = min(self.rate, self._ceiling_at_cut + since * self._step())
        if value >= self.rate:
            self._cut_at = None
            self._ceiling = self.rate
        return value

    def limit(self, now: float) -> int:
        """Admissions allowed per window right now: the ceiling rounded down, at least one."""
        return max(1, math.floor(self.ceiling(now) + 1e-9))

    def on_throttled(self, now: float, retry_after: float | None = None) -> None:
        """A 429 came back: cut the ceiling (once per window), pause if told how long."""
        self.throttled += 1
        if self._cut_at is None or now - self._cut_at >= self.window:
            current = self.ceiling(now)
            floor = min(self.aimd.floor, self.rate)
            self._ceiling_at_cut = max(floor, current * self.aimd.decrease)
            self._ceiling = self._ceiling_at_cut
            self._cut_at = now
        if retry_after is not None and retry_after > 0:
            self.pause_until(now + retry_after)

    def pause_until(self, until: float) -> None:
        self._paused_until = max(self._paused_until, until)

    def set_rate(self, rate: float, now: float) -> None:
        """Change the configured rate (a replica's share after a rebalance).

        Raising it saturates the extra capacity for one window: the replica that owned that share
        until now may have used it a moment ago.
        """
        if not rate > 0:
            raise ValueError("rate must be > 0")
        old_limit = max(1, math.floor(self.rate + 1e-9))
        self.rate = rate
        self._ceiling = min(self._ceiling, rate)
        self._ceiling_at_cut = min(self._ceiling_at_cut, rate)
        if self._cut_at is None:
            self._ceiling = rate
        extra = max(1, math.floor(rate + 1e-9)) - old_limit
        for _ in range(max(0, extra)):
            self._slots.append(Slot(now, now, phantom=True, hold=0.0))

    def saturate(self, now: float) -> None:
        """Assume the last window was full (someone else may have just used the whole budget)."""
        for _ in range(max(1, math.floor(self.rate + 1e-9))):
            self._slots.append(Slot(now, now, phantom=True, hold=0.0))

    # --- admission ------------------------------------------------------------------------

    def _window(self, now: float) -> float:
        """Below one admission per window, stretch the window instead (1 per ``window/ceiling``)."""
        c = self.ceiling(now)
        return self.window if c >= 1.0 else self.window / c

    def _counts(self, slot: Slot, now: float, window: float) -> bool:
        """Whether ``slot`` still counts against the window at ``now``."""
        return slot.release(window, self.guard, self.jitter_cap) > now

    def _prune(self, now: float) -> None:
        w = self._window(now)
        self._slots = deque(s for s in self._slots if self._counts(s, now, w))

    def recent(self, now: float) -> int:
        """Real sends started in the last window (the current rate, for metrics)."""
        return sum(1 for s in self._slots if not s.phantom and s.start > now - self.window)

    def active(self, now: float) -> int:
        self._prune(now)
        return len(self._slots)

    def try_acquire(self, now: float) -> Slot | float:
        """Admit one send at ``now`` (returns its slot) or return the earliest time worth retrying.

        Why the server never sees more than N: take N+1 arrivals and the last of them to be
        admitted, j. When j was admitted fewer than N slots were held, so some other one, i, was
        released: ``s_i + hold_i + window + guard <= s_j``. With ``hold_i >= d_i - d_min`` (see
        the module docstring) and ``a_j >= s_j + d_min``, ``a_j - a_i > window``: the N+1
        arrivals do not fit in one closed window.
        """
        if now < self._paused_until:
            return self._paused_until
        self._prune(now)
        limit = self.limit(now)
        if len(self._slots) < limit:
            slot = Slot(now)
            self._slots.append(slot)
            return slot
        w, g, c = self._window(now), self.guard, self.jitter_cap
        releases = sorted(s.release(w, g, c) for s in self._slots)
        # The (len - limit + 1)-th earliest release brings the count below the limit.
        return releases[len(self._slots) - limit]

    def restart(self, slot: Slot, now: float) -> bool:
        """Move the slot's start to the moment the request really goes out.

        Work between admission and sending (the dial ledger write) must not eat into the jitter
        margin. Moving the start later is safe while the slot is still counted; once it may have
        been released (pruned) it is not, and the caller must acquire again.
        """
        if slot.done is not None or slot not in self._slots:
            return False
        if slot.release(self._window(now), self.guard, self.jitter_cap) <= now:
            return False
        slot.start = max(slot.start, now)
        return True

    def complete(
        self,
        slot: Slot,
        now: float,
        sent_at: float | None = None,
        answered_at: float | None = None,
    ) -> None:
        """The response (or error) is back: fix how long the slot stays held.

        ``sent_at``/``answered_at`` (same clock) are when the request's first byte went out and
        the response headers came back, when the client saw them. They make the hold measure the
        exchange alone: time spent before the first byte (connection set-up, pool wait, our own
        event loop) delays the arrival of nothing, and moving the start later is always safe
        while the slot still counts (see :meth:`restart`). The minimum round trip is learned from
        exchanges only, so connection set-up never inflates it.
        """
        if slot.done is not None:
            return
        if sent_at is not None and slot.start <= sent_at <= now:
            slot.start = sent_at
        done = now
        if answered_at is not None and slot.start <= answered_at <= now:
            done = answered_at
        slot.done = done
        rtt = done - slot.start
        if answered_at is not None and sent_at is not None:
            if self.rtt_min is None or rtt < self.rtt_min:
                self.rtt_min = rtt
            self.rtt_samples += 1
        trusted = self.rtt_min is not None and self.rtt_samples >= RTT_SAMPLES
        fastest = self.rtt_min if trusted and self.rtt_min is not None else 0.0
        slot.hold = min(max(0.0, rtt - fastest) + self.hold_floor, self.jitter_cap)

    def cancel(self, slot: Slot) -> None:
        """Give back a slot whose request was never sent."""
        with contextlib.suppress(ValueError):
            self._slots.remove(slot)

    # --- without acquiring ------------------------------------------------------------------

    def next_free(self, now: float) -> float | None:
        """When an admission would next succeed (None: now); admits nothing."""
        if now < self._paused_until:
            return self._paused_until
        self._prune(now)
        limit = self.limit(now)
        if len(self._slots) < limit:
            return None
        w, g, c = self._window(now), self.guard, self.jitter_cap
        releases = sorted(s.release(w, g, c) for s in self._slots)
        return releases[len(self._slots) - limit]

    def starts(self) -> list[float]:
        """The admissions still held, by start time (to store; see :meth:`restore_starts`)."""
        return [s.start for s in self._slots]

    def restore_starts(self, starts: Iterable[float]) -> None:
        """Admissions made before a restart, each held as if still outstanding."""
        self._slots.extend(Slot(t) for t in starts)

    def clear(self) -> None:
        self._slots.clear()


class ArrivalLog(SlidingLog):
    """A server's rolling window: an admission counts until ``window`` seconds after it arrived.

    No holds and no guard (``now - start < window``, measured the way Vonage counts requests as
    they arrive). Rates below one per window stretch the window, as in :class:`SlidingLog`.
    """

    def __init__(self, rate: float, window: float = WINDOW) -> None:
        super().__init__(rate, window=window, guard=0.0, jitter_cap=0.0, hold_floor=0.0)

    def _counts(self, slot: Slot, now: float, window: float) -> bool:
        return slot.start > now - window

    # Admissions are recorded in time order and all leave the window ``window`` after they came,
    # so the oldest leave first: pruning trims the left end and the next free time is an index
    # (a campaign pacing at 1,000/s would otherwise rebuild a 1,000-slot log for every dial).

    def _prune(self, now: float) -> None:
        w = self._window(now)
        slots = self._slots
        while slots and not self._counts(slots[0], now, w):
            slots.popleft()

    def next_free(self, now: float) -> float | None:
        if now < self._paused_until:
            return self._paused_until
        self._prune(now)
        limit = self.limit(now)
        if len(self._slots) < limit:
            return None
        return self._slots[len(self._slots) - limit].start + self._window(now)
