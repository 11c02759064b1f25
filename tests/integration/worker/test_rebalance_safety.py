"""Worker rebalances on a real broker: a restore longer than the session timeout, and a worker
paused past it (SIGSTOP) that wakes after another took over.

The state and outputs are read back from the topics (``read_committed``, as every consumer of
the product reads), never from the workers' own counters, except where the question is about
the worker's own behaviour (how often it restored).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from collections import defaultdict

import pytest

from orchestrator.config import WORKER_RESTORE_IN_CALLBACK, WORKER_SLOW_RESTORE, Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker
from orchestrator.runtime.store import decode_changelog
from orchestrator.sandbox.synthetic import stream
from tests.conftest import make_settings
from tests.integration.worker.helpers import (
    WorkerProcess,
    produce,
    read_json,
    read_topic,
    wait_for,
)
from tests.integration.worker.test_two_workers import dedupe, expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _settings(broker: LocalBroker) -> Settings:
    settings = make_settings(broker.bootstrap)
    await ensure_topics(settings, create=True)
    return settings


async def _outcomes(settings: Settings, want: set[str]) -> dict[str, object] | None:
    records = await read_json(settings, "voice.outcomes")
    by_id, repeats = dedupe(records)
    return {"by_id": by_id, "repeats": repeats} if want <= set(by_id) else None


async def test_a_restore_longer_than_the_session_timeout_expels_nobody(
    broker: LocalBroker,
) -> None:
    settings = await _settings(broker)
    scenarios, records = stream(random.Random(3), 60, calls_per_s=50, jitter_s=0.5, dup_p=0.0)
    await produce(settings, "voice.events", records)
    worker = WorkerProcess(
        settings,
        f"slow-{uuid.uuid4().hex[:6]}",
        "slow",
        env={"ORCHESTRATOR_FAULT": WORKER_SLOW_RESTORE},
    )
    try:
        done = await wait_for(
            lambda: _outcomes(settings, set(expected(scenarios))), 60, "outcomes", every=1.0
        )
        await asyncio.sleep(8)  # longer than the session timeout (6 s): a loop would show now
        assigned = worker.metric("orchestrator_runtime_rebalances_total", kind="assigned")
        restores = worker.metric("orchestrator_runtime_restores_total")
    finally:
        worker.stop()
    assert done is not None and done["repeats"] == 0
    # One assignment, each of the 3 partitions restored once (12 s each, session timeout 6 s).
    assert assigned == 1, worker.log()[-3000:]
    assert restores == 3, worker.log()[-3000:]


async def test_the_checker_catches_a_restore_inside_the_assignment_callback(
    broker: LocalBroker,
) -> None:
    """The deliberately broken variant: the same slow restore, waited for inside the callback,
    gets the member expelled and restored again, over and over."""
    settings = await _settings(broker)
    _, records = stream(random.Random(4), 20, calls_per_s=50, jitter_s=0.5, dup_p=0.0)
    await produce(settings, "voice.events", records)
    fault = f"{WORKER_SLOW_RESTORE},{WORKER_RESTORE_IN_CALLBACK}"
    worker = WorkerProcess(
        settings, f"loop-{uuid.uuid4().hex[:6]}", "loop", env={"ORCHESTRATOR_FAULT": fault}
    )
    try:
        await wait_for(
            lambda: worker.metric("orchestrator_runtime_rebalances_total", kind="assigned") >= 2,
            60,
            "a second assignment (the member was expelled while restoring)",
        )
    finally:
        worker.stop()


async def test_a_paused_worker_that_wakes_after_a_takeover_rolls_nothing_back(
    broker: LocalBroker,
) -> None:
    settings = await _settings(broker)
    scenarios, records = stream(random.Random(11), 300, calls_per_s=40, jitter_s=1.0, dup_p=0.05)
    half = len(records) // 2
    await produce(settings, "voice.events", records[:half])
    group = f"z-{uuid.uuid4().hex[:6]}"
    a = WorkerProcess(settings, group, "a")
    b = WorkerProcess(settings, group, "b")
    try:
        await wait_for(
            lambda: all((r := w.ready()) and r["partitions"] for w in (a, b)),
            60,
            "both workers owning partitions",
        )
        await wait_for(
            lambda: min(w.metric("orchestrator_runtime_checkpoints_total") for w in (a, b)) > 2,
            30,
            "checkpoints on both",
        )
        zombie, heir = (a, b)
        zombie_parts = set(zombie.ready()["partitions"])  # type: ignore[index]
        zombie.proc.send_signal(signal.SIGSTOP)
        paused_at = time.monotonic()
        await produce(settings, "voice.events", records[half:])  # the stream goes on
        want = set(expected(scenarios))
        done = await wait_for(lambda: _outcomes(settings, want), 90, "all outcomes", every=1.0)
        assert set(heir.ready()["partitions"]) == {0, 1, 2}  # type: ignore[index]
        zombie.proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(10)  # it wakes, finds itself expelled, and must not write
        after = await _outcomes(settings, want)
        state = await read_topic(settings, "voice.state")
        zombie_log = zombie.log()
    finally:
        a.stop()
        b.stop()
    print(
        f"\nzombie owned {sorted(zombie_parts)}, paused {time.monotonic() - paused_at:.0f}s; "
        f"outcome repeats {after['repeats'] if after else '?'}"
    )
    assert done is not None and after is not None
    assert {i: o["disposition"] for i, o in after["by_id"].items()} == expected(scenarios)
    # Exactly once: no outcome written twice, not even by the zombie waking up.
    assert after["repeats"] == 0
    # No state rolled back: per key, the changelog's source offsets only grow (a late write of
    # the zombie would carry an older offset after the heir's newer one).
    last: dict[tuple[int, bytes], int] = defaultdict(lambda: -1)
    for rec in state:
        if rec.value is None or rec.key is None:
            last.pop((rec.partition, rec.key), None)
            continue
        offset = decode_changelog(rec.value)[0]
        key = (rec.partition, rec.key)
        assert offset >= last[key], f"state of {rec.key!r} rolled back to offset {offset}"
        last[key] = offset
    assert "lost" in zombie_log or "fenced" in zombie_log, zombie_log[-3000:]
