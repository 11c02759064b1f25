"""A command partition whose transactional id another producer initialised is not left unread.

The dispatcher gives a fenced partition up (another replica owns it now) and pauses it. When the
fence came from a producer that does not own the partition (a stale replica, here the test), the
group still assigns it to this dispatcher: without asking the group again, nobody read its
commands any more. One dispatcher, one partition fenced from outside, on the real broker; every
command sent after the fence must still be dialled, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contracts.topics import VOICE_COMMANDS, topic_name
from orchestrator.config import Settings
from orchestrator.dispatcher.service import GROUP_ID
from orchestrator.dispatcher.txn import PartitionTxn
from orchestrator.kafka.clients import group_name
from orchestrator.sandbox.simulator import Simulator
from tests.integration.dispatcher.conftest import (
    DispatcherProcess,
    Reader,
    creates,
    dial_counts,
    produce,
    with_vonage,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(cps=20, rps=60, seed=11, time_scale=50) as s:
        yield s


async def fence_all(settings: Settings) -> None:
    """Claim every command partition's transactional id, as a stale replica would."""
    topic = topic_name(VOICE_COMMANDS, settings.topic_prefix)
    for partition in range(settings.topic_partitions or 1):
        txn = PartitionTxn(settings, group_name(settings, GROUP_ID), topic, partition)
        await txn.start()
        await txn.stop()


@pytest.mark.timeout(180)
async def test_commands_after_a_fence_from_a_stale_producer_are_still_dialled(
    kafka_settings: Settings, sim: Simulator, processes: list[DispatcherProcess]
) -> None:
    settings = with_vonage(kafka_settings, sim, sim.create_application("fenced"))
    only = await DispatcherProcess(settings, "--cps", "20", name="only").start()
    processes.append(only)
    await only.ready()
    before, after = creates("before", 6), creates("after", 12)
    async with Reader(settings) as reader:
        await produce(settings, before)
        await reader.wait_finals({c.id for c in before}, within=60)
        await fence_all(settings)
        await produce(settings, after)
        # Before: each fenced partition was paused for good, and these were never dialled.
        got = await reader.wait_finals({c.id for c in after}, within=90)
    assert await only.terminate() == 0, only.tail()
    statuses = {c.id: got.results[c.id][-1]["status"] for c in after}
    assert statuses == dict.fromkeys(statuses, "succeeded"), statuses
    counts = dial_counts(sim.ledger(webhooks=False))
    assert all(n == 1 for n in counts.values()), counts
    assert len(counts) == len(before) + len(after)
    assert "fenced" in only.tail(200_000)
