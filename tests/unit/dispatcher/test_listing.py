"""Resolutions that wait together share one listing pass; one waiter's fate never stops the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.dispatcher.listing import CallLister

T0 = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def _at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


async def test_concurrent_askers_share_one_pass_over_the_union_of_their_windows() -> None:
    windows: list[tuple[datetime, datetime]] = []

    async def fetch(start: datetime, end: datetime) -> list[dict[str, object]]:
        windows.append((start, end))
        await asyncio.sleep(0.01)
        return [{"uuid": "u1"}]

    lister = CallLister(fetch, linger=0.05)
    got = await asyncio.gather(*(lister.calls(_at(i), _at(i + 20)) for i in range(30)))
    assert windows == [(_at(0), _at(49))]
    assert all(g == [{"uuid": "u1"}] for g in got)
    assert (lister.passes, lister.served) == (1, 30)

    # Asking after a pass started opens the next pass.
    await lister.calls(_at(100), _at(120))
    assert windows[-1] == (_at(100), _at(120)) and lister.passes == 2


async def test_a_failed_pass_answers_none_to_everyone() -> None:
    async def fetch(start: datetime, end: datetime) -> list[dict[str, object]]:
        raise RuntimeError("broken")

    lister = CallLister(fetch, linger=0.0)
    assert await asyncio.gather(lister.calls(_at(0), _at(1)), lister.calls(_at(0), _at(2))) == [
        None,
        None,
    ]


async def test_a_cancelled_waiter_does_not_cancel_the_pass_of_the_others() -> None:
    release = asyncio.Event()

    async def fetch(start: datetime, end: datetime) -> list[dict[str, object]]:
        await release.wait()
        return []

    lister = CallLister(fetch, linger=0.0)
    first = asyncio.create_task(lister.calls(_at(0), _at(1)))
    second = asyncio.create_task(lister.calls(_at(0), _at(1)))
    await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == []
