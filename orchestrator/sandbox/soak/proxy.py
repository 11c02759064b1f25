"""A tiny TCP load balancer in front of the ingress processes (what a Kubernetes Service does).

The simulator delivers every webhook to one public URL; the proxy spreads connections round-robin
over the ingress replicas and skips a replica that refuses the connection (one being restarted),
so a graceful ingress restart is invisible except for the connections it was serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools


class RoundRobinProxy:
    def __init__(self, backends: list[int], host: str = "127.0.0.1") -> None:
        self.backends = backends
        self.host = host
        self._rr = itertools.count()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        start = next(self._rr)
        for i in range(len(self.backends) * 2):
            port = self.backends[(start + i) % len(self.backends)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(self.host, port), 1.0)
            except (OSError, TimeoutError):
                if i >= len(self.backends) - 1:
                    await asyncio.sleep(0.05)
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
