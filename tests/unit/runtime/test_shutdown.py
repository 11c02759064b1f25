"""The shutdown watch: what a stalled stop was waiting on, and a bounded exit."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import time

import orjson
import pytest

from orchestrator.logs import configure_logging
from orchestrator.runtime.shutdown import (
    ShutdownWatch,
    bounded,
    cancel_and_wait,
    pending_tasks,
    stop_on_signals,
)


async def _stuck_in_close(never: asyncio.Event) -> None:
    await never.wait()


async def _stuck_stop(never: asyncio.Event) -> None:
    await _stuck_in_close(never)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


async def test_a_stalled_stop_is_reported_with_its_await_chain_then_the_process_exits_1() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    exited = threading.Event()
    codes: list[int] = []

    def _exit(code: int) -> None:
        codes.append(code)
        exited.set()

    never = asyncio.Event()
    task = asyncio.create_task(_stuck_stop(never), name="worker-close")
    watch = ShutdownWatch("worker", budget_s=0.6, report_after_s=0.2, exit_process=_exit)
    watch.arm()
    watch.arm()  # a second signal does not restart the clock
    started = time.monotonic()
    assert await asyncio.to_thread(exited.wait, 5.0)
    assert 0.55 <= time.monotonic() - started < 3.0
    assert codes == [1]
    assert watch.reported is not None
    chain = watch.reported["worker-close"]
    assert any("_stuck_stop" in step for step in chain)
    assert any("_stuck_in_close" in step for step in chain)
    assert chain[-1] == "waiting on Future"
    logged = _records(out)
    slow = [r for r in logged if r["event"] == "shutdown slow: still waiting"]
    assert len(slow) == 1 and slow[0]["role"] == "worker" and slow[0]["loop_responsive"] is True
    assert "worker-close" in slow[0]["tasks"]  # type: ignore[operator]
    assert any(r["event"] == "shutdown exceeded its budget: exiting" for r in logged)
    task.cancel()


async def test_a_blocked_loop_is_reported_from_the_threads_stacks() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    exited = threading.Event()
    watch = ShutdownWatch(
        "ingress", budget_s=2.5, report_after_s=0.1, exit_process=lambda _c: exited.set()
    )
    watch.arm()
    time.sleep(2.3)  # blocks the loop through the report's 2 s wait  # noqa: ASYNC251
    exited.wait(2.0)
    slow = [r for r in _records(out) if r["event"] == "shutdown slow: still waiting"]
    assert slow and slow[0]["loop_responsive"] is False
    stacks = slow[0]["threads"]
    assert isinstance(stacks, dict)
    assert any(
        "test_a_blocked_loop_is_reported_from_the_threads_stacks" in step
        for stack in stacks.values()
        for step in stack
    )


async def test_a_clean_stop_inside_the_budget_reports_nothing() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    codes: list[int] = []
    watch = ShutdownWatch("dispatcher", budget_s=30.0, exit_process=codes.append)
    watch.arm()
    await asyncio.sleep(0.1)
    assert watch.reported is None and codes == []
    assert _records(out) == []
    watch.cancel()


async def test_pending_tasks_names_every_pending_task() -> None:
    never = asyncio.Event()
    task = asyncio.create_task(_stuck_stop(never), name="the-one")
    await asyncio.sleep(0)
    tasks = pending_tasks()
    assert "the-one" in tasks
    assert tasks["the-one"][0].endswith("_stuck_stop")
    assert "test_shutdown.py" in tasks["the-one"][0]
    task.cancel()


async def test_stop_on_signals_stops_the_role_and_arms_the_watch() -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    codes: list[int] = []
    watch = stop_on_signals(
        loop,
        stopped.set,
        role="controller",
        watch=ShutdownWatch("controller", exit_process=codes.append),
    )
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stopped.wait(), 5)
        assert watch._armed_at is not None
    finally:
        watch.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    yield
    configure_logging()


async def _swallows_cancels(times: int, started: asyncio.Event | None = None) -> str:
    swallowed = 0
    if started is not None:
        started.set()
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed += 1
            if swallowed > times:
                raise


async def test_bounded_returns_the_result_and_raises_the_error() -> None:
    async def answer() -> int:
        await asyncio.sleep(0.01)
        return 42

    async def broken() -> None:
        raise ValueError("no")

    assert await bounded(answer(), 1.0, what="answer") == 42
    with pytest.raises(ValueError, match="no"):
        await bounded(broken(), 1.0, what="broken")


async def test_bounded_ends_even_when_the_work_swallows_its_cancel() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    work = asyncio.ensure_future(_swallows_cancels(times=1))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"stuck stop: not done within 0\.3 s"):
        await bounded(work, 0.3, what="stuck stop", grace_s=0.3)
    assert time.monotonic() - started < 1.5  # asyncio.wait_for would wait here forever
    left = [r for r in _records(out) if r["event"] == "left behind: did not end when cancelled"]
    assert left and left[0]["what"] == "stuck stop"
    work.cancel()  # its second cancel ends it
    with pytest.raises(asyncio.CancelledError):
        await work


async def test_bounded_cancels_the_work_when_it_is_cancelled_itself() -> None:
    started = asyncio.Event()
    work = asyncio.ensure_future(_swallows_cancels(times=0, started=started))
    outer = asyncio.create_task(bounded(work, 30.0, what="work"))
    await started.wait()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    with pytest.raises(asyncio.CancelledError):
        await work


async def test_cancel_and_wait_cancels_again_until_the_work_ends() -> None:
    started = asyncio.Event()
    work = asyncio.ensure_future(_swallows_cancels(times=2, started=started))
    await started.wait()
    began = time.monotonic()
    assert await cancel_and_wait(work, what="restore", within_s=5.0)
    assert work.cancelled()
    assert time.monotonic() - began < 3.5  # the third cancel, about 2 s in


async def test_cancel_and_wait_leaves_behind_what_never_ends() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    started = asyncio.Event()
    work = asyncio.ensure_future(_swallows_cancels(times=100, started=started))
    await started.wait()
    assert not await cancel_and_wait(work, what="take-over", within_s=1.5)
    left = [r for r in _records(out) if r["event"] == "left behind: did not end when cancelled"]
    assert left and left[0]["what"] == "take-over"
    while not work.done():
        work.cancel()
        await asyncio.wait({work}, timeout=0.01)
