"""Injected 429s (the simulator's ``throttle_rate``): the dispatcher backs off and retries them,
and every create command still places its call exactly once.

Unlike the 429s of ``test_faults.py`` (a wrong ``--cps`` and a noisy neighbour), these come at
random whatever the dispatcher's pacing: Vonage refusing for reasons a client cannot see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.config import Settings
from orchestrator.sandbox.simulator import Simulator
from tests.integration.dispatcher.conftest import (
    DispatcherProcess,
    Reader,
    creates,
    dial_counts,
    produce,
    with_vonage,
)

pytestmark = [pytest.mark.integration]

PROFILE = {
    "webhooks": {"event_attempts": 1},
    "faults": {"endpoints": {"create_call": {"throttle_rate": 0.3}}},
}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(cps=10, rps=30, seed=31, time_scale=50, profile=PROFILE) as s:
        yield s


async def test_injected_429s_are_retried_and_each_call_is_created_once(
    kafka_settings: Settings, sim: Simulator, processes: list[DispatcherProcess]
) -> None:
    app = sim.create_application("throttle")
    settings = with_vonage(kafka_settings, sim, app)
    cmds = creates("t", 30)
    refs = {c.id: c.call_ref or "" for c in cmds}
    proc = await DispatcherProcess(settings, "--cps", "10", name="throttle").start()
    processes.append(proc)
    await proc.ready()
    async with Reader(settings) as reader:
        await produce(settings, cmds)
        got = await reader.wait_finals(set(refs), within=120)
        metrics = await proc.metrics()
    assert await proc.terminate() == 0, proc.tail()

    ledger = sim.ledger(webhooks=False)
    throttled = [
        r for r in ledger["requests"] if r["op"] == "create_call" and r["fault"] == "throttled"
    ]
    assert throttled and all(r["status"] == 429 for r in throttled)
    assert ledger["counters"]["faults.throttled"] == len(throttled)
    assert 'orchestrator_dispatcher_429_total{budget="cps"}' in metrics
    # Every command succeeded once, and every call_ref was dialled exactly once.
    assert got.statuses() == {"succeeded": len(cmds)}
    assert dial_counts(ledger) == dict.fromkeys(refs.values(), 1)
    # Each throttled create was sent again; exactly one create per command was accepted.
    sent = [r for r in ledger["requests"] if r["op"] == "create_call"]
    assert len([r for r in sent if r["status"] == 201]) == len(cmds)
    assert len(sent) >= len(cmds) + len(throttled)
