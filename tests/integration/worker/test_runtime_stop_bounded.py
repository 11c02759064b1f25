"""A runtime's stop is bounded even when its restore swallows the cancel it is sent.

A restore waits inside aiokafka (claims, changelog fetches), and aiokafka has swallowed a cancel
before (``orchestrator.kafka.clients.Consumer``). The runtime cancelled its restore once and
waited for it without a bound, so a stop (or a rebalance) in that state never ended. Here the
restore is a coroutine that swallows its first cancels, on the real broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.runtime import engine
from tests.integration.worker.test_runtime_generic import make_runtime

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(90)
async def test_close_ends_when_the_restore_swallows_its_cancels(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = asyncio.Event()
    swallowed: list[float] = []
    stuck: list[asyncio.Task[Any]] = []

    async def stuck_restore(*_a: Any, **_k: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        stuck.append(task)
        entered.set()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed.append(time.monotonic())
                if len(swallowed) > 10:
                    raise

    monkeypatch.setattr(engine, "restore", stuck_restore)
    monkeypatch.setattr(engine, "RESTORE_CANCEL_S", 2.0)
    rt, _app = make_runtime(kafka_settings, f"rt-stuck-{uuid.uuid4().hex[:8]}")
    await rt.start()
    run = asyncio.create_task(rt.run())
    try:
        await asyncio.wait_for(entered.wait(), 30)
        rt.request_stop()
        await asyncio.wait_for(run, 10)
        started = time.monotonic()
        await rt.close()  # before: cancelled the restore once, then waited for it forever
        took = time.monotonic() - started
    finally:
        run.cancel()
    assert took < 20, took
    assert len(swallowed) >= 2  # cancelled again while it had not ended
    # Left behind, it is ended here (its eleventh cancel is not swallowed).
    task = stuck[0]
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)


@pytest.mark.timeout(90)
async def test_a_checkpoint_that_never_becomes_durable_is_fatal(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fenced transactional producer's sender can die and leave the checkpoint's futures
    unresolved (seen in a soak: 29 calls never got their outcome). The checkpoint used to wait
    forever, so the partition's outputs were never committed; now the runtime stops with a
    FatalError and its records are replayed after restart."""
    monkeypatch.setattr(engine, "CHECKPOINT_DEADLINE_S", 2.0)
    rt, _app = make_runtime(kafka_settings, f"rt-ckpt-{uuid.uuid4().hex[:8]}")
    await rt.start()
    assert rt._writer is not None
    hung = asyncio.Event()

    async def never_durable(*_a: Any, **_k: Any) -> Any:
        hung.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(rt._writer, "finish", never_durable)
    run = asyncio.create_task(rt.run())
    try:
        await asyncio.wait_for(hung.wait(), 30)  # the first checkpoint (every 0.1 s)
        started = time.monotonic()
        with pytest.raises(engine.FatalError, match="checkpoint: not done within 2 s"):
            await asyncio.wait_for(run, 15)
        assert time.monotonic() - started < 10
    finally:
        run.cancel()
        await rt.close()
