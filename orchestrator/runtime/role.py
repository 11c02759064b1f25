"""A runtime role as a process: the runtime, its health port, and one way to run and stop it.

The campaign controller and the agents role are the same shape (one app on the runtime, a health
server beside it, stop on request, drain and close on the way out), so they share this rather
than each keeping a copy of the start/stop/close sequence.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry

from orchestrator.logs import get_logger
from orchestrator.runtime.engine import Runtime
from orchestrator.runtime.health import HealthServer
from orchestrator.runtime.shutdown import SHUTDOWN_BUDGET_S, bounded

__all__ = ["RuntimeRole"]

log = get_logger("orchestrator.runtime")


class RuntimeRole:
    """Subclasses set ``self.runtime`` then call :meth:`_serve_health`."""

    #: Task name and log label.
    role = "runtime"
    #: Whether a failed runtime task fails :meth:`run` (else it is logged and run returns).
    reraise = False
    runtime: Runtime[object, object]
    registry: CollectorRegistry

    def _serve_health(self, health_port: int | None, health_host: str) -> None:
        self.health: HealthServer | None = None
        if health_port is not None:
            self.health = HealthServer(
                self.registry,
                alive=self.runtime.alive,
                ready=self.runtime.ready,
                detail=self.runtime.detail,
                host=health_host,
                port=health_port,
            )
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()
        self.runtime.request_stop()

    async def run(self) -> None:
        """Run until :meth:`stop`; then drain, checkpoint and leave the group."""
        if self.health is not None:
            await self.health.start()
        try:
            await self.runtime.start()
            runtime = asyncio.create_task(self.runtime.run(), name=f"{self.role}-runtime")
            stop = asyncio.create_task(self._stop.wait())
            await asyncio.wait([runtime, stop], return_when=asyncio.FIRST_COMPLETED)
            self.stop()
            await asyncio.gather(runtime, return_exceptions=True)
            stop.cancel()
            if not runtime.cancelled() and runtime.exception() is not None:
                log.error(f"{self.role} task failed", error=str(runtime.exception()))
                if self.reraise:
                    raise runtime.exception()  # type: ignore[misc]
        finally:
            with contextlib.suppress(Exception):
                await bounded(
                    self.runtime.close(), SHUTDOWN_BUDGET_S - 2, what=f"{self.role} close"
                )
            if self.health is not None:
                await self.health.stop()
