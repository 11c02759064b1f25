"""A bound on how long a role takes to stop, and a record of what it was still waiting on.

Kubernetes kills a pod ``terminationGracePeriodSeconds`` after SIGTERM, and the manifests give a
role :data:`SHUTDOWN_BUDGET_S` of it to drain. A role that overruns loses nothing (every guarantee
holds under kill -9), but a SIGKILL from outside tells nobody why the drain stalled. So the watch
runs in a thread of its own (it works while the event loop is blocked too):

- half-way through the budget it logs, once, every asyncio task still pending with its await
  chain (file, line, function; no locals, so no secrets) and every thread's stack;
- at the budget it logs ``shutdown exceeded its budget`` and exits the process with code 1.

Every role's process entry arms it from its stop signal (:func:`stop_on_signals`; the ingress from
uvicorn's own handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, TypeVar

from orchestrator.logs import get_logger

T = TypeVar("T")

__all__ = [
    "SHUTDOWN_BUDGET_S",
    "SLOW_STOP_EVENT",
    "ShutdownWatch",
    "bounded",
    "cancel_and_wait",
    "pending_tasks",
    "stop_on_signals",
]

#: Seconds from the stop signal to the end of the process (deploy-check's DRAIN_SECONDS).
SHUTDOWN_BUDGET_S = 25.0
#: The event of the watch's report (the soak harness looks for it in a role's log).
SLOW_STOP_EVENT = "shutdown slow: still waiting"

_MAX_TASKS = 50
_MAX_DEPTH = 12


def _await_chain(task: asyncio.Task[Any]) -> list[str]:
    """``file:line function`` for each coroutine the task is suspended in, outermost first."""
    chain: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(chain) < _MAX_DEPTH:
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "ag_frame", None)
            or getattr(coro, "gi_frame", None)
        )
        if frame is not None:
            chain.append(
                f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_name}"
            )
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
        )
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is not None:
        chain.append(f"waiting on {type(waiter).__name__}")
    return chain


def _short(path: str) -> str:
    """A file name from ``orchestrator/`` or ``site-packages/`` on, not the install path."""
    for mark in ("site-packages/", "orchestrator/", "handlers/", "contracts/"):
        i = path.rfind(mark)
        if i >= 0:
            return path[i:] if mark != "site-packages/" else path[i + len(mark) :]
    return os.path.basename(path)


def pending_tasks(loop: asyncio.AbstractEventLoop | None = None) -> dict[str, list[str]]:
    """Every pending task of the running (or given) loop: name -> await chain."""
    tasks = asyncio.all_tasks(loop)
    out: dict[str, list[str]] = {}
    for task in sorted(tasks, key=lambda t: t.get_name())[:_MAX_TASKS]:
        if not task.done():
            out[task.get_name()] = _await_chain(task)
    return out


def _thread_stacks() -> dict[str, list[str]]:
    names = {t.ident: t.name for t in threading.enumerate()}
    out: dict[str, list[str]] = {}
    frames: dict[int, FrameType] = sys._current_frames()
    for ident, frame in frames.items():
        if ident == threading.get_ident():
            continue  # the watch itself
        stack = traceback.extract_stack(frame)[-_MAX_DEPTH:]
        out[names.get(ident, str(ident))] = [
            f"{_short(f.filename)}:{f.lineno} {f.name}" for f in stack
        ]
    return out


async def bounded(aw: Awaitable[T], seconds: float, *, what: str, grace_s: float = 1.0) -> T:
    """``aw``'s result, or :class:`TimeoutError` after ``seconds``, and never later than that
    plus ``grace_s``.

    ``asyncio.wait_for`` cancels on timeout and then waits for the cancelled work to end. Work
    that swallows its cancel (aiokafka's fetcher did, see ``orchestrator.kafka.clients``) makes
    that wait endless, and a stop that should have been bounded hangs the process. Here the
    work gets its cancel and ``grace_s`` to act on it; then it is left behind, with a warning
    naming it.
    """
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return task.result()
    await cancel_and_wait(task, what=what, within_s=grace_s)  # the timeout is the answer
    raise TimeoutError(f"{what}: not done within {seconds:g} s")


async def cancel_and_wait(task: asyncio.Future[Any], *, what: str, within_s: float = 5.0) -> bool:
    """Cancel ``task`` and wait for it to end, cancelling again each second it has not; after
    ``within_s`` leave it behind with a warning. True when it ended. Its outcome is consumed:
    the work logs its own failures."""
    deadline = time.monotonic() + within_s
    while not task.done() and time.monotonic() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=min(1.0, max(0.0, deadline - time.monotonic())))
    if not task.done():
        get_logger("orchestrator.shutdown").warning(
            "left behind: did not end when cancelled", what=what, after_s=within_s
        )
        task.add_done_callback(_retrieve)
        return False
    _retrieve(task)
    return True


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a left-behind task's outcome as seen (no "exception never retrieved" later)."""
    if not task.cancelled():
        task.exception()


class ShutdownWatch:
    """Arm on the stop signal; reports at half the budget, exits 1 at the budget."""

    def __init__(
        self,
        role: str,
        *,
        budget_s: float = SHUTDOWN_BUDGET_S,
        report_after_s: float | None = None,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.role = role
        self.budget_s = budget_s
        self.report_after_s = budget_s / 2 if report_after_s is None else report_after_s
        self._exit = exit_process
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed_at: float | None = None
        self._cancelled = threading.Event()
        self._log = get_logger("orchestrator.shutdown")
        #: What the report saw (for tests): task name -> await chain.
        self.reported: dict[str, list[str]] | None = None

    @property
    def armed_at(self) -> float | None:
        """When the first stop signal came (``time.monotonic()``), or None."""
        return self._armed_at

    def arm(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the clock (idempotent: a second signal does not restart it)."""
        if self._armed_at is not None:
            return
        self._armed_at = time.monotonic()
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        threading.Thread(target=self._watch, name="shutdown-watch", daemon=True).start()

    def cancel(self) -> None:
        """The stop finished (for hosts that outlive it, such as tests)."""
        self._cancelled.set()

    def _watch(self) -> None:
        assert self._armed_at is not None
        if self._cancelled.wait(max(0.0, self._armed_at + self.report_after_s - time.monotonic())):
            return
        self._report()
        if self._cancelled.wait(max(0.0, self._armed_at + self.budget_s - time.monotonic())):
            return
        self._log.error(
            "shutdown exceeded its budget: exiting",
            role=self.role,
            budget_s=self.budget_s,
            still_pending=sorted(self.reported or {}),
        )
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # exiting anyway
                stream.flush()
        self._exit(1)

    def _report(self) -> None:
        tasks: dict[str, list[str]] | None = None
        loop = self._loop
        if loop is not None and not loop.is_closed():
            seen = threading.Event()
            box: list[dict[str, list[str]]] = []

            def _in_loop() -> None:
                box.append(pending_tasks(loop))
                seen.set()

            try:
                loop.call_soon_threadsafe(_in_loop)
            except RuntimeError:  # closed in between
                pass
            else:
                if seen.wait(2.0):
                    tasks = box[0]
        self.reported = tasks or {}
        self._log.warning(
            SLOW_STOP_EVENT,
            role=self.role,
            after_s=round(time.monotonic() - (self._armed_at or 0.0), 1),
            loop_responsive=tasks is not None,
            tasks=tasks,
            threads=_thread_stacks(),
        )


def stop_on_signals(
    loop: asyncio.AbstractEventLoop,
    stop: Callable[[], None],
    *,
    role: str,
    watch: ShutdownWatch | None = None,
) -> ShutdownWatch:
    """SIGTERM/SIGINT call ``stop`` and arm a :class:`ShutdownWatch` for the role."""
    watch = watch or ShutdownWatch(role)

    def _on_signal() -> None:
        watch.arm(loop)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal)
    return watch
