"""``/healthz``, ``/readyz`` and ``/metrics`` for the dispatcher (design item 7: port 9101)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def health_app(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    alive: Callable[[], bool],
    detail: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    async def healthz(_: Request) -> Response:
        ok = alive()
        return JSONResponse({"status": "ok" if ok else "failing"}, status_code=200 if ok else 503)

    async def readyz(_: Request) -> Response:
        ok = ready()
        body: dict[str, Any] = {"ready": ok, **(detail() if detail else {})}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the role owns SIGTERM (drain first, then stop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """A uvicorn server on its own task; ``port=0`` picks a free port (see :attr:`port`)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raise the bind error
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        servers = self._server.servers
        if servers and servers[0].sockets:
            return int(servers[0].sockets[0].getsockname()[1])
        return 0

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
