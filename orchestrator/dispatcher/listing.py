"""One ``GET /v1/calls`` pass for every ambiguous create that is waiting at the same time.

Ambiguous creates come in clusters: a dispatcher killed mid-batch leaves every create it had
admitted in the ledger as ``sending``, and the next owner must resolve them all. Listing the
calls separately for each costs one pass over the same window per create, out of the same
15 requests/s budget that live calls need for their updates (the soak found 30 resolutions
paging through thousands of calls each, still unresolved minutes later). Here the resolutions
that ask within ``linger`` seconds of each other share one pass over the union of their windows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

__all__ = ["CallLister"]

Calls = list[dict[str, Any]]
#: Lists every call created in [start, end]; None when the listing failed (caller retries).
Fetch = Callable[[datetime, datetime], Awaitable[Calls | None]]


class _Batch:
    __slots__ = ("end", "future", "start")

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end
        self.future: asyncio.Future[Calls | None] = asyncio.get_running_loop().create_future()


class CallLister:
    def __init__(self, fetch: Fetch, *, linger: float = 0.2) -> None:
        self._fetch = fetch
        self.linger = linger
        self._open: _Batch | None = None
        #: Listing passes made, and resolutions they served (for metrics and tests).
        self.passes = 0
        self.served = 0

    async def calls(self, start: datetime, end: datetime) -> Calls | None:
        """Every call created in [start, end] (and maybe more: the batch's window is the union)."""
        batch = self._open
        if batch is None:
            batch = self._open = _Batch(start, end)
            asyncio.get_running_loop().create_task(self._run(batch))
        else:
            batch.start = min(batch.start, start)
            batch.end = max(batch.end, end)
        self.served += 1
        # A waiter that is cancelled (its partition revoked) must not cancel the others' pass.
        return await asyncio.shield(batch.future)

    async def _run(self, batch: _Batch) -> None:
        await asyncio.sleep(self.linger)
        self._open = None  # later askers start the next pass
        self.passes += 1
        calls: Calls | None = None
        try:
            calls = await self._fetch(batch.start, batch.end)
        except Exception:
            # The waiters only learn that the listing failed, and try again on their own terms.
            calls = None
        finally:
            if not batch.future.done():
                batch.future.set_result(calls)
