"""A revoke during a take-over that will not end is bounded, and the take-over registers nothing.

The dispatcher takes a new partition over in a task (fence the previous owner, load the dial
ledger). A revoke cancels it first. Loading reads the ledger inside aiokafka, which has swallowed
a cancel before (the shutdown watch caught it at a stop), and the revoke waited for it with no
limit: the rebalance, and every partition with it, stalled. The revoke now waits 5 s at most. A
take-over left behind that ends later must not register the partition it no longer owns.

The broker is real (the take-over's transactional init fences on it); the ledger's load is the
one part replaced, by one that swallows cancels until released, because aiokafka cannot be made
to hang on demand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka import TopicPartition

from orchestrator.config import Settings
from orchestrator.dispatcher.service import DispatcherService
from orchestrator.sandbox.simulator import Simulator
from tests.integration.dispatcher.conftest import with_vonage

pytestmark = [pytest.mark.integration]


class StuckLedgerLoad:
    """A dial ledger whose load ignores cancels until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.current: Callable[[], bool] = lambda: True

    async def restore(
        self, settings: Settings, partitions: list[int], *, current: Callable[[], bool]
    ) -> int:
        self.current = current  # what the real load checks before it applies a record
        self.entered.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                continue  # swallowed, as aiokafka's client close once did
        return 0

    def forget_partitions(self, partitions: object) -> None:
        return None


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(cps=5, rps=15, seed=3) as s:
        yield s


@pytest.mark.timeout(60)
async def test_a_revoke_does_not_wait_forever_for_a_stuck_take_over(
    kafka_settings: Settings, sim: Simulator
) -> None:
    settings = with_vonage(kafka_settings, sim, sim.create_application("take-over"))
    service = DispatcherService(settings)
    ledger = StuckLedgerLoad()
    service._ledger = ledger  # type: ignore[assignment]
    tp = TopicPartition(service.commands_topic, 0)
    await service._on_assigned([tp])
    left_behind = service._taking_over
    assert left_behind is not None
    await asyncio.wait_for(ledger.entered.wait(), 30)

    started = time.monotonic()
    await asyncio.wait_for(service._on_revoked([tp]), 20)  # before: no end at all
    assert time.monotonic() - started < 8

    assert not ledger.current()  # its records would not be applied
    ledger.release.set()  # the stuck load ends after all: its round is over
    await asyncio.wait({left_behind}, timeout=15)
    await service.client.aclose()
    assert left_behind.done()
    assert service._parts == {} and service._txns == {}
