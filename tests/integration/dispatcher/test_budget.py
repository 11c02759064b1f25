"""Done-when: at --cps 3, creates use >= 95 % of the budget, cause no 429 and no window above 3,
with one and with two ``orchestrator dispatcher`` processes.

The simulator's rate limits run in real time (its ``time_scale`` only speeds up call lifecycles),
so N creates at 3/s take N/3 seconds whatever the scale. The default suite runs 60 creates
(20 s); the full 300 (100 s per replica count) is marked ``slow``: ``pytest -m slow``.
With two replicas, control commands (``list_calls``, spread over every partition) run at the same
time, to show the RPS budget holds in total too: each replica takes its share of partitions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import chain

import pytest

from contracts.envelopes import CommandEnvelope, CommandKind
from orchestrator.config import Settings
from orchestrator.sandbox.simulator import Simulator
from tests.integration.dispatcher.conftest import (
    DispatcherProcess,
    Reader,
    accepted_create_times,
    create_requests,
    creates,
    dial_counts,
    produce,
    utilisation,
    window_anomalies,
    with_vonage,
)

#: How much of a budget is used is measured, so these run after the parallel suite, alone on the
#: machine (``make test``'s second step): next to other tests a starved event loop stretches the
#: round trips the limiter holds each slot for, and the share used falls for that reason alone.
pytestmark = [pytest.mark.integration, pytest.mark.budget]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(cps=3, rps=15, seed=5, time_scale=50) as s:
        yield s


def list_commands(prefix: str, n: int) -> list[CommandEnvelope]:
    return [
        CommandEnvelope(
            id=f"{prefix}-{i}",
            occurred_at=datetime.now(UTC),
            flow_key=f"{prefix}-flow-{i}",
            kind=CommandKind.LIST_CALLS,
            body={"page_size": 1},
        )
        for i in range(n)
    ]


async def run_budget(
    kafka_settings: Settings,
    sim: Simulator,
    processes: list[DispatcherProcess],
    *,
    n: int,
    replicas: int,
) -> None:
    app = sim.create_application("budget")
    settings = with_vonage(kafka_settings, sim, app)
    procs = [
        await DispatcherProcess(settings, "--cps", "3", "--rps", "15", name=f"r{i}").start()
        for i in range(replicas)
    ]
    processes.extend(procs)
    owned = [await p.ready() for p in procs]
    if replicas > 1:
        # Wait for the group to settle: every partition owned, each replica owning some.
        for _ in range(150):
            owned = [await p.ready() for p in procs]
            if all(owned) and sorted(chain(*owned)) == [0, 1, 2]:
                break
            await asyncio.sleep(0.2)
        assert all(owned) and sorted(chain(*owned)) == [0, 1, 2], owned
    cmds = creates(f"b{replicas}", n)
    controls = list_commands(f"l{replicas}", 90) if replicas > 1 else []
    async with Reader(settings) as reader:
        await produce(settings, cmds + controls)
        got = await reader.wait_finals({c.id for c in cmds + controls}, within=n / 3 + 60)
    for p in procs:
        assert await p.terminate() == 0, p.tail()  # SIGTERM: drained, exit 0

    assert got.statuses() == {"succeeded": n + len(controls)}
    assert got.dlq == []
    ledger = sim.ledger(webhooks=False)
    assert window_anomalies(ledger, cps=3, rps=15) == []
    assert set(dial_counts(ledger).values()) == {1} and len(dial_counts(ledger)) == n
    times = accepted_create_times(ledger)
    assert len(times) == n
    used = utilisation(times, 3)
    assert used >= 0.95, f"only {used:.1%} of the CPS budget used"
    first = times[0]
    late_429 = [r for r in create_requests(ledger) if r["status"] == 429 and r["t"] > first + 1]
    assert late_429 == []
    assert [r for r in ledger["requests"] if r["status"] == 429] == []
    print(f"\n{replicas} replica(s), {n} creates: {used:.1%} of 3 cps used, 0 x 429")


async def test_60_creates_one_replica(
    kafka_settings: Settings, sim: Simulator, processes: list[DispatcherProcess]
) -> None:
    await run_budget(kafka_settings, sim, processes, n=60, replicas=1)


async def test_60_creates_two_replicas(
    kafka_settings: Settings, sim: Simulator, processes: list[DispatcherProcess]
) -> None:
    await run_budget(kafka_settings, sim, processes, n=60, replicas=2)


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize("replicas", [1, 2])
async def test_300_creates(
    kafka_settings: Settings,
    sim: Simulator,
    processes: list[DispatcherProcess],
    replicas: int,
) -> None:
    await run_budget(kafka_settings, sim, processes, n=300, replicas=replicas)
