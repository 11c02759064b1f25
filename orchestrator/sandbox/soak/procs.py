"""Role processes the soak starts, kills with SIGKILL, stops with SIGTERM and restarts.

Each slot (``worker-2``) keeps its ``INSTANCE_ID`` across restarts, like a Kubernetes pod name,
so a restarted consumer rejoins its group as the same static member. Output of every
incarnation is appended to one log file per slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from orchestrator.runtime.shutdown import SHUTDOWN_BUDGET_S, SLOW_STOP_EVENT


@dataclass
class Slot:
    role: str
    index: int
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    graceful: int = 0
    pauses: int = 0
    bad_exits: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child
        log.write(f"\n==== start #{self.starts + 1} at {time.time():.3f}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", self.role, *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.starts += 1

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop_signal(self) -> bool:
        """SIGSTOP: the process freezes (no heartbeats, no writes) as under a long GC pause or
        a partitioned network, with its sockets and its view of the world intact."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.pauses += 1
            return True
        return False

    def continue_signal(self) -> None:
        """SIGCONT: the frozen process wakes and carries on from where it stopped."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)

    async def terminate(self, limit_s: float = SHUTDOWN_BUDGET_S + 5) -> int | None:
        """SIGTERM and wait; a process that does not exit in time is killed (and recorded).

        The product's own watch ends a stalled stop at its budget with code 1 and logs what it
        waited on (:meth:`stall_report`); the kill here is only for a process beyond that.
        """
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        os.kill(proc.pid, signal.SIGTERM)
        self.continue_signal()  # a paused process acts on SIGTERM only once it runs again
        deadline = time.monotonic() + limit_s
        while proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            self.bad_exits.append(-9)
            return -9
        if proc.returncode != 0:
            self.bad_exits.append(proc.returncode)
        return proc.returncode

    def stall_report(self) -> str | None:
        """What the last stalled stop in this slot's log was waiting on (the watch's record)."""
        path = self.log_dir / f"{self.name}.log"
        try:
            lines = path.read_bytes().splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            if SLOW_STOP_EVENT.encode() not in line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                return line.decode(errors="replace")[:2000]
            tasks = rec.get("tasks") or {}
            if not tasks:  # the loop did not answer: the threads' stacks say where it is
                tasks = rec.get("threads") or {}
            return "; ".join(
                f"{name}: {' > '.join(chain[-4:])}" for name, chain in sorted(tasks.items())
            )[:4000]
        return None

    def crashed(self) -> int | None:
        """The exit code of a process that died on its own (not by our hand), else None."""
        if self.proc is not None and self.proc.poll() is not None:
            return self.proc.returncode
        return None

    def force_stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
