"""Run a uvicorn server inside the current event loop (no signal handlers, no thread).

``uvicorn.Server.serve`` installs signal handlers, which is wrong for a server embedded in a test
or in another role's process; this drives the same startup/main-loop/shutdown steps directly.
The roles' health ports, ``orchestrator run``'s ingress and the simulator all serve this way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

__all__ = ["EmbeddedServer"]


class EmbeddedServer:
    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        config.setdefault("lifespan", "off")
        config.setdefault("log_level", "warning")
        config.setdefault("access_log", False)
        self.config = uvicorn.Config(app, host=host, port=port, **config)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (a free one when ``port=0``)."""
        cfg = self.config
        if not cfg.loaded:
            cfg.load()
        server = uvicorn.Server(cfg)
        server.lifespan = cfg.lifespan_class(cfg)
        try:
            await server.startup()
        except SystemExit:
            raise OSError(f"cannot listen on {self.host}:{self.port}") from None
        if server.should_exit or not server.servers:  # the app's lifespan startup failed
            await server.shutdown()
            raise OSError(f"the application did not start on {self.host}:{self.port}")
        self._server = server
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self._task = asyncio.create_task(server.main_loop(), name=f"uvicorn-{self.port}")
        return self.port

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        server = self._server
        if server is None:
            return
        server.should_exit = True
        if self._task is not None:
            await self._task
        await server.shutdown()
        self._server = None
