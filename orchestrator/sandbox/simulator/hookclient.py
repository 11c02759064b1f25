"""A small keep-alive HTTP/1.1 client for webhook delivery (the simulator's hottest path).

Why not httpx: measured in ``bench/simulator_throughput.py``, httpcore's connection pool rescans
every connection for every request (quadratic in open connections) and probes for ``sniffio`` on
each request; at ~1,000 webhooks/s that alone saturated a core. Webhook delivery needs very
little of HTTP: one request per connection at a time, ``Content-Length`` or chunked bodies,
keep-alive, TLS, connect/read timeouts. That is all this does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

__all__ = ["HookClient", "HookConnectError", "HookError", "HookResponse", "HookTimeout"]

_MAX_HEADER = 64 * 1024
_MAX_BODY = 4 * 1024 * 1024


class HookError(Exception):
    """The request failed below HTTP (connection closed/reset, malformed response)."""


class HookConnectError(HookError):
    pass


class HookTimeout(HookError):
    def __init__(self, phase: str) -> None:
        super().__init__(f"{phase} timeout")
        self.phase = phase  # "connect" or "read"


@dataclass(frozen=True, slots=True)
class HookResponse:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class _Target:
    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    host_header: str
    path: str  # path + query


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HookConnectError(f"unsupported URL {url[:80]!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname
    default = (tls and port == 443) or (not tls and port == 80)
    bracket = f"[{host}]" if ":" in host else host
    host_header = bracket if default else f"{bracket}:{port}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target((parts.scheme, host, port), host, port, tls, host_header, path)


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class HookClient:
    def __init__(
        self,
        *,
        verify: bool | ssl.SSLContext = True,
        max_per_host: int = 128,
        user_agent: str = "Vonage-Simulator/1.0",
    ) -> None:
        if isinstance(verify, ssl.SSLContext):
            self._ssl = verify
        else:
            self._ssl = ssl.create_default_context()
            if not verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._idle: dict[tuple[str, str, int], list[_Conn]] = defaultdict(list)
        self._slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}
        self._max = max_per_host
        self._ua = user_agent.encode()
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for c in conns:
                c.close()
        self._idle.clear()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 10.0,
    ) -> HookResponse:
        target = _target(url)
        path = target.path
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        head = [
            f"{method} {path} HTTP/1.1\r\nHost: {target.host_header}\r\n".encode(),
            b"User-Agent: " + self._ua + b"\r\n",
        ]
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}\r\n".encode("latin-1"))
        if body or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body)}\r\n".encode())
        head.append(b"\r\n")
        raw = b"".join(head) + body
        slot = self._slots.get(target.key)
        if slot is None:
            slot = self._slots[target.key] = asyncio.Semaphore(self._max)
        async with slot:
            conn, reused = await self._acquire(target, connect_timeout)
            try:
                return await self._exchange(conn, raw, method, target, read_timeout)
            except _Stale:
                if not reused:
                    raise HookError("connection closed before any response") from None
            # A pooled connection the server had already closed: one fresh attempt.
            conn, _ = await self._acquire(target, connect_timeout, fresh=True)
            try:
                return await self._exchange(conn, raw, method, target, read_timeout)
            except _Stale:
                raise HookError("connection closed before any response") from None

    async def _acquire(
        self, target: _Target, connect_within: float, fresh: bool = False
    ) -> tuple[_Conn, bool]:
        idle = self._idle[target.key]
        while idle and not fresh:
            conn = idle.pop()
            if conn.usable:
                return conn, True
            conn.close()
        try:
            async with asyncio.timeout(connect_within):
                reader, writer = await asyncio.open_connection(
                    target.host,
                    target.port,
                    ssl=self._ssl if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                    limit=_MAX_HEADER,
                )
        except TimeoutError:
            raise HookTimeout("connect") from None
        except (OSError, ssl.SSLError) as err:
            raise HookConnectError(f"connect failed: {type(err).__name__}") from None
        return _Conn(reader, writer), False

    async def _exchange(
        self, conn: _Conn, raw: bytes, method: str, target: _Target, read_within: float
    ) -> HookResponse:
        got_any = False
        try:
            async with asyncio.timeout(read_within):
                conn.writer.write(raw)
                await conn.writer.drain()
                head = await conn.reader.readuntil(b"\r\n\r\n")
                got_any = True
                status, keep, length, chunked = _parse_head(head)
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    body = b""
                elif chunked:
                    body = await _read_chunked(conn.reader)
                elif length is not None:
                    if length > _MAX_BODY:
                        raise HookError("response body too large")
                    body = await conn.reader.readexactly(length)
                else:
                    body = await conn.reader.read(_MAX_BODY)
                    keep = False
        except TimeoutError:
            conn.close()
            raise HookTimeout("read") from None
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as err:
            conn.close()
            if not got_any:
                raise _Stale() from err
            raise HookError(f"connection failed: {type(err).__name__}") from None
        except asyncio.LimitOverrunError:
            conn.close()
            raise HookError("response headers too large") from None
        except HookError:
            conn.close()
            raise
        if keep and not self._closed:
            self._idle[target.key].append(conn)
        else:
            conn.close()
        return HookResponse(status, body)


class _Stale(Exception):
    """Nothing came back on this connection (closed/reset before the status line)."""


def _parse_head(head: bytes) -> tuple[int, bool, int | None, bool]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HookError("malformed status line")
    try:
        status = int(parts[1])
    except ValueError:
        raise HookError("malformed status code") from None
    keep = parts[0] == b"HTTP/1.1"
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise HookError("malformed content-length") from None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            v = value.lower()
            if b"close" in v:
                keep = False
            elif b"keep-alive" in v:
                keep = True
    return status, keep, length, chunked


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # trailers until an empty line
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(out)
        if len(out) + size > _MAX_BODY:
            raise HookError("response body too large")
        out += await reader.readexactly(size)
        await reader.readexactly(2)
