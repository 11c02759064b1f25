"""``/healthz``, ``/readyz`` and ``/metrics`` on a small HTTP port (asyncio streams, no framework).

``/healthz`` answers 200 while the process is making progress (liveness: restart me if not);
``/readyz`` 200 once the runtime has joined its group and restored its partitions, 503 while it is
starting, restoring or draining (readiness: do not count me in yet / any more); ``/metrics`` is the
role's Prometheus registry. Kept dependency-free and tiny so it starts before anything else and
keeps answering while the role is busy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HealthServer"]

#: Header lines read at most before the connection is dropped (a probe sends a handful).
_MAX_HEADERS = 100
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


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
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            for _ in range(_MAX_HEADERS + 1):  # skip headers (each line capped by the reader)
                header = await asyncio.wait_for(reader.readline(), 5)
                if header in (b"\r\n", b"\n", b""):
                    break
            else:
                return  # a head this long is nobody's probe
            parts = line.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("", "")
            status, ctype, body = self._route(method, path)
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # ValueError: a line over the reader's 64 KiB limit
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _route(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/healthz":
            ok = self._alive()
            return (200 if ok else 503), "application/json", orjson.dumps({"alive": ok})
        if path == "/readyz":
            ok = self._ready()
            doc: dict[str, Any] = {"ready": ok}
            if self._detail is not None:
                doc.update(self._detail())
            return (200 if ok else 503), "application/json", orjson.dumps(doc)
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        return 404, "text/plain", b"not found\n"
