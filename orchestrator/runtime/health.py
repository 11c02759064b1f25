"""``/healthz``, ``/readyz`` and ``/metrics`` of a role on a small HTTP port of its own.

``/healthz`` answers 200 while the process is making progress (liveness: restart me if not);
``/readyz`` 200 once the runtime has joined its group and restored its partitions, 503 while it is
starting, restoring or draining (readiness: do not count me in yet / any more); ``/metrics`` is the
role's Prometheus registry.

Served like every HTTP endpoint of the product (Starlette on uvicorn, request heads capped, see
:mod:`orchestrator.web`), inside the role's own event loop: it starts before anything else and
keeps answering while the role is busy, and it needs nothing the role does not already have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.web.embedded import EmbeddedServer
from orchestrator.web.head import uvicorn_http_options

__all__ = ["HealthServer"]

_JSON = "application/json"


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        detail: Callable[[], dict[str, Any]] | None = None,
        host: str = "0.0.0.0",
        port: int = 9100,
    ) -> None:
        self._registry = registry
        self._alive = alive
        self._ready = ready
        self._detail = detail
        self._host = host
        self._port = port
        self._server: EmbeddedServer | None = None
        self.app = Starlette(
            routes=[
                Route("/healthz", self._healthz, methods=["GET"]),
                Route("/readyz", self._readyz, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
            ]
        )

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else self._port

    async def start(self) -> None:
        # log_config None: the role's logging stays as the role configured it.
        server = EmbeddedServer(
            self.app,
            host=self._host,
            port=self._port,
            log_config=None,
            server_header=False,
            **uvicorn_http_options(),
        )
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            self._port = server.port
            await server.stop()

    async def _healthz(self, _: Request) -> Response:
        ok = self._alive()
        return Response(orjson.dumps({"alive": ok}), 200 if ok else 503, media_type=_JSON)

    async def _readyz(self, _: Request) -> Response:
        ok = self._ready()
        doc: dict[str, Any] = {"ready": ok}
        if self._detail is not None:
            doc.update(self._detail())
        return Response(orjson.dumps(doc), 200 if ok else 503, media_type=_JSON)

    async def _metrics(self, _: Request) -> Response:
        return Response(generate_latest(self._registry), media_type=CONTENT_TYPE_LATEST)
