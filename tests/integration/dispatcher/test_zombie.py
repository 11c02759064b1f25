"""A dispatcher paused past its session timeout (SIGSTOP) while another takes over and dials,
then resumed (SIGCONT): nobody is dialled twice, on the simulator's own ledger.

The paused replica had creates in every stage when it stopped: "sending" entries committed and
requests on the wire, permits waiting, commands queued. The new owner fences its transactional
id before restoring the dial ledger, resolves what the zombie left unresolved, and dials the
rest. When the zombie wakes, its commits fail (fenced) and any create it had not yet sent is
past the send window, so it is not sent.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts.envelopes import CommandStatus
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

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 40
SESSION_MS = 6000
#: Creates take a while to answer, so a pause catches several with their request on the wire.
PROFILE: dict[str, Any] = {
    "faults": {"endpoints": {"create_call": {"latency_ms": 150, "latency_jitter_ms": 150}}}
}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(cps=8, rps=30, seed=9, time_scale=50, profile=PROFILE) as s:
        yield s


def _created(sim: Simulator) -> int:
    return sum(1 for r in sim.ledger(webhooks=False)["requests"] if r.get("op") == "create_call")


async def test_a_paused_dispatcher_that_wakes_after_a_takeover_dials_nobody_twice(
    kafka_settings: Settings, sim: Simulator, processes: list[DispatcherProcess]
) -> None:
    app = sim.create_application("zombie")
    settings = with_vonage(kafka_settings, sim, app)
    args = ("--cps", "8", "--resolve-after", "3")
    env = {"KAFKA_SESSION_TIMEOUT_MS": str(SESSION_MS)}
    zombie = await DispatcherProcess(settings, *args, name="zombie", env=env).start()
    processes.append(zombie)
    await zombie.ready()
    cmds = creates("z", N)
    async with Reader(settings) as reader:
        await produce(settings, cmds)
        for _ in range(300):  # mid-batch: some dialled, most not yet
            if _created(sim) >= N // 4:
                break
            await asyncio.sleep(0.05)
        assert zombie.proc is not None
        zombie.proc.send_signal(signal.SIGSTOP)
        paused_wall = time.time()
        paused_after = _created(sim)
        heir = await DispatcherProcess(settings, *args, name="heir", env=env).start()
        processes.append(heir)
        got = await reader.wait_finals({c.id for c in cmds}, within=N / 8 + 90)
        zombie.proc.send_signal(signal.SIGCONT)
        resumed_wall = time.time()
        await asyncio.sleep(8)  # the zombie wakes: anything it still tries must not dial
        assert await heir.terminate() == 0, heir.tail()
    ledger = sim.ledger(webhooks=False)
    counts = dial_counts(ledger)
    doubled = {ref for ref, n in counts.items() if n > 1}
    when: dict[str, object] = {
        "resumed": round(resumed_wall - paused_wall, 2),
        "paused_at_t": paused_wall,
    }
    for ref in doubled:  # dial times relative to the pause, for the post-mortem
        when[ref] = [
            round(c["t"] - paused_wall, 2)
            for c in ledger["calls"]
            if c.get("leg") == "api" and c["call_ref"] == ref
        ]
    assert not doubled, when
    # Every contact was dialled (or proven not created, never twice), by one or the other.
    finals = {cid: r[-1]["status"] for cid, r in got.results.items()}
    assert set(finals) == {c.id for c in cmds}
    assert set(finals.values()) <= {CommandStatus.SUCCEEDED.value, CommandStatus.FAILED.value}
    assert len(counts) + sum(1 for s in finals.values() if s == "failed") >= N
    assert 0 < paused_after < N, f"the pause was not mid-batch ({paused_after} of {N} dialled)"
    zombie_log = zombie.tail(200_000)
    assert "fenced" in zombie_log or "partitions lost" in zombie_log, zombie_log[-3000:]
