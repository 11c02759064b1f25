"""Resource samples during a soak: contacts done and the resident memory of every process.

A long soak is only convincing if it runs as fast at the end as at the start and nothing grows
without bound; these samples, with the simulator's dial times, are what the plot and the
throughput summary are made of. RSS is read from ``/proc/<pid>/status`` (Linux), so the sampler
costs a few file reads per interval and needs nothing from the processes it watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ResourceSampler", "Sample", "rss_mb"]


def rss_mb(pid: int | None) -> float | None:
    """Resident set size of ``pid`` in MiB, or None when it is not running."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # unix time
    done: int  # contacts with a final result so far
    rss: dict[str, float]  # process name -> MiB


@dataclass
class ResourceSampler:
    """Every ``interval`` s: how many contacts are done and each named process's RSS."""

    pids: Callable[[], dict[str, int | None]]
    done: Callable[[], int]
    interval: float = 5.0
    samples: list[Sample] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def sample(self) -> Sample:
        rss = {name: mb for name, pid in self.pids().items() if (mb := rss_mb(pid)) is not None}
        s = Sample(time.time(), self.done(), rss)
        self.samples.append(s)
        return s

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.sample()
