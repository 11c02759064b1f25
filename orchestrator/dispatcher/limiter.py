"""The dispatcher's rate limiter: an asyncio FIFO in front of the pure sliding log.

The log itself, and why it holds each slot longer than the window by the request's jitter, is
:mod:`handlers.sliding_window` (the one sliding-window limiter of the product). Here
:class:`RateLimiter` serves waiters in order, wakes none of them for nothing, and reads the
event loop's clock; :class:`Permit` is one granted send.

It also spreads the sends of a window: no two closer than ``spread`` times the mean interval
(``window / limit``). The log alone lets a whole window's budget go at once whenever it frees,
and a burst is self-perpetuating (its slots free together a window later). At 100 CPS those
bursts kept 64 connections open in httpx's pool, whose bookkeeping costs time in the number of
idle connections times the pool's size on every request, and the dispatcher spent most of its CPU
there (py-spy: 60 % in ``httpcore``'s ``_assign_requests_to_connections``) and fell behind the
campaign. Spread at up to twice the rate, a few connections carry the load, Vonage sees no burst,
and the dispatcher still catches up twice as fast as it fell behind after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from handlers.sliding_window import (
    GUARD,
    JITTER_CAP,
    RTT_SAMPLES,
    WINDOW,
    AimdPolicy,
    SlidingLog,
    Slot,
)

__all__ = ["RTT_SAMPLES", "SPREAD", "AimdPolicy", "Permit", "RateLimiter", "SlidingLog", "Slot"]

#: The shortest gap between two sends, as a share of the mean interval (0: no spreading).
SPREAD = 0.5


class Permit:
    """A granted send; call :meth:`done` when the response (or the error) is back."""

    __slots__ = ("_limiter", "_slot")

    def __init__(self, limiter: RateLimiter, slot: Slot) -> None:
        self._limiter = limiter
        self._slot = slot

    def sending(self) -> bool:
        """Call right before the request goes out; ``False`` means acquire again (see restart)."""
        return self._limiter.log.restart(self._slot, self._limiter.now())

    def done(self, sent_at: float | None = None, answered_at: float | None = None) -> None:
        """The response (or the error) is back; pass the client's exchange marks if it has them."""
        self._limiter._complete(self._slot, sent_at, answered_at)

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
        spread: float = SPREAD,
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
        self.spread = spread
        self._next_at = -float("inf")  # the earliest time of the next grant (spreading)
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

    def _try(self, now: float) -> Slot | float:
        """A slot now, or the time to try again (the log's next free time, or spreading's)."""
        if now < self._next_at:
            return self._next_at
        got = self.log.try_acquire(now)
        if isinstance(got, Slot):
            self.admitted += 1
            if self.spread > 0:
                self._next_at = now + self.spread * self.log.window / self.log.limit(now)
        return got

    def acquire_nowait(self) -> Permit | None:
        """A permit if one is free right now and nobody is queued, else ``None``."""
        if self._waiters:
            return None
        got = self._try(self.now())
        return Permit(self, got) if isinstance(got, Slot) else None

    async def acquire(self) -> Permit:
        if not self._waiters:
            got = self._try(self.now())
            if isinstance(got, Slot):
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
            got = self._try(self.now())
            if isinstance(got, Slot):
                self._waiters.popleft().set_result(got)
                continue
            self._wake.clear()
            delay = max(0.0, got - self.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _complete(
        self, slot: Slot, sent_at: float | None = None, answered_at: float | None = None
    ) -> None:
        self.log.complete(slot, self.now(), sent_at, answered_at)
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
