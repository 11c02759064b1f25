"""Client-side rolling-window limiter with an AIMD ceiling: never more than N sends in any 1 s.

Vonage counts requests as they *arrive* on a rolling one-second window and refuses the excess with
429 (nothing is queued). A token bucket would let a full burst through at every refill and put
2N requests inside some window; a plain sliding log of *send* times is not enough either, because
two requests sent 1.0 s apart can arrive less than 1 s apart when the first one travels slower.

So this is a sliding log whose entries are held longer than the window, by the one-way delay the
request may have had: a slot taken at send time ``s`` is freed at ``min(done, s + jitter_cap) +
window + guard``, where ``done`` is when the response came back. A request cannot have arrived
after its response, so while responses come back within ``jitter_cap`` the server can never see
more than N arrivals in any closed 1 s window, whatever the network did (proof in
:meth:`SlidingLog.try_acquire`). On loopback ``done - s`` is a few milliseconds, so the budget used
stays above 99 %; against a distant API the cap bounds the cost (``jitter_cap`` is the largest
*difference* in one-way delay we defend against, not the latency itself).

The ceiling follows AIMD: a 429 (another client on the account, or a lower limit than configured)
cuts it multiplicatively, at most once per window; it then recovers additively to the configured
rate. Admissions per window are ``floor(ceiling)``: fractional ceilings round down, which can only
under-use the budget; below one per window the window is stretched instead (a replica's share of
a small budget, e.g. 10/s over 12 replicas, is one request per 1.2 s). The budget can also be *paused* (``Retry-After``) and *saturated* (assume the
last window was full: at start-up and when this replica takes over an account's budget from
another one that may have sent requests a moment ago).

:class:`SlidingLog` is the pure, clock-free core (property-tested); :class:`RateLimiter` puts an
asyncio FIFO in front of it so waiters are served in order and none is woken for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 1.0
#: Added to every hold so that "exactly one window later" is never inside the same closed window.
GUARD = 0.002
#: Largest one-way delay difference we defend against (seconds). See the module docstring.
JITTER_CAP = 0.25


@dataclass(eq=False, slots=True)
class Slot:
    """One admitted send. ``done`` is set when its response (or error) came back."""

    start: float
    done: float | None = None
    phantom: bool = False

    def release(self, window: float, guard: float, jitter_cap: float) -> float:
        """When this slot stops counting. An upper bound while the response is outstanding."""
        end = self.start + jitter_cap
        if self.done is not None and self.done < end:
            end = self.done
        return end + window + guard


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
    aimd: AimdPolicy = field(default_factory=AimdPolicy)
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
            self._slots.append(Slot(now, now, phantom=True))

    def saturate(self, now: float) -> None:
        """Assume the last window was full (someone else may have just used the whole budget)."""
        for _ in range(max(1, math.floor(self.rate + 1e-9))):
            self._slots.append(Slot(now, now, phantom=True))

    # --- admission ------------------------------------------------------------------------

    def _window(self, now: float) -> float:
        """Below one admission per window, stretch the window instead (1 per ``window/ceiling``)."""
        c = self.ceiling(now)
        return self.window if c >= 1.0 else self.window / c

    def _prune(self, now: float) -> None:
        w, g, c = self._window(now), self.guard, self.jitter_cap
        self._slots = deque(s for s in self._slots if s.release(w, g, c) > now)

    def recent(self, now: float) -> int:
        """Real sends started in the last window (the current rate, for metrics)."""
        return sum(1 for s in self._slots if not s.phantom and s.start > now - self.window)

    def active(self, now: float) -> int:
        self._prune(now)
        return len(self._slots)

    def try_acquire(self, now: float) -> Slot | float:
        """Admit one send at ``now`` (returns its slot) or return the earliest time worth retrying.

        Why the server never sees more than N: when slot j is admitted fewer than N slots are
        active, so among the previous sends at most N-1 are still held; every other send i has
        ``min(done_i, s_i + cap) + window + guard <= s_j``. Its arrival a_i is at most that min
        (it arrived before its response, and within the cap by assumption), and a_j >= s_j, so
        a_j - a_i > window: at most N arrivals fit in any closed window.
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

    def complete(self, slot: Slot, now: float) -> None:
        if slot.done is None:
            slot.done = now

    def cancel(self, slot: Slot) -> None:
        """Give back a slot whose request was never sent."""
        with contextlib.suppress(ValueError):
            self._slots.remove(slot)


class Permit:
    """A granted send; call :meth:`done` when the response (or the error) is back."""

    __slots__ = ("_limiter", "_slot")

    def __init__(self, limiter: RateLimiter, slot: Slot) -> None:
        self._limiter = limiter
        self._slot = slot

    def sending(self) -> bool:
        """Call right before the request goes out; ``False`` means acquire again (see restart)."""
        return self._limiter.log.restart(self._slot, self._limiter.now())

    def done(self) -> None:
        self._limiter._complete(self._slot)

    def cancel(self) -> None:
        """The request was not sent after all (e.g. cancelled before the first byte)."""
        self._limiter._cancel(self._slot)


class RateLimiter:
    """An asyncio front for :class:`SlidingLog`: FIFO waiters, one pump, no busy waking."""

    def __init__(
        self,
        rate: float,
        *,
        name: str = "",
        window: float = WINDOW,
        guard: float = GUARD,
        jitter_cap: float = JITTER_CAP,
        aimd: AimdPolicy | None = None,
        clock: Callable[[], float] | None = None,
        saturated: bool = True,
    ) -> None:
        self.name = name
        self.log = SlidingLog(
            rate, window=window, guard=guard, jitter_cap=jitter_cap, aimd=aimd or AimdPolicy()
        )
        self._clock = clock
        self._waiters: deque[asyncio.Future[Slot]] = deque()
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self.admitted = 0
        if saturated:
            self.log.saturate(self.now())

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    # --- introspection for metrics ---------------------------------------------------------

    @property
    def rate(self) -> float:
        return self.log.rate

    def ceiling(self) -> float:
        return self.log.ceiling(self.now())

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    # --- control ---------------------------------------------------------------------------

    def on_throttled(self, retry_after: float | None = None) -> None:
        self.log.on_throttled(self.now(), retry_after)
        self._wake.set()

    def set_rate(self, rate: float) -> None:
        self.log.set_rate(rate, self.now())
        self._wake.set()

    def saturate(self) -> None:
        self.log.saturate(self.now())

    # --- acquisition -----------------------------------------------------------------------

    async def acquire(self) -> Permit:
        if not self._waiters:
            got = self.log.try_acquire(self.now())
            if isinstance(got, Slot):
                self.admitted += 1
                return Permit(self, got)
        fut: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._ensure_pump()
        try:
            slot = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.log.cancel(fut.result())
            raise
        return Permit(self, slot)

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        self._wake.set()

    async def _run_pump(self) -> None:
        while self._waiters:
            while self._waiters and self._waiters[0].done():
                self._waiters.popleft()  # cancelled while waiting
            if not self._waiters:
                break
            got = self.log.try_acquire(self.now())
            if isinstance(got, Slot):
                self.admitted += 1
                self._waiters.popleft().set_result(got)
                continue
            self._wake.clear()
            delay = max(0.0, got - self.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _complete(self, slot: Slot) -> None:
        self.log.complete(slot, self.now())
        if self._waiters:
            self._wake.set()

    def _cancel(self, slot: Slot) -> None:
        self.log.cancel(slot)
        if self._waiters:
            self._wake.set()

    async def aclose(self) -> None:
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        for fut in self._waiters:
            fut.cancel()
        self._waiters.clear()
