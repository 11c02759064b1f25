"""The far end of a websocket leg: the simulator connects to it as Vonage does (DIGEST §4.2, §8).

A websocket endpoint is a server the platform dials, so whether the leg answers is decided by the
socket, not by the profile's drawn outcome: Vonage opens a client WebSocket to ``uri``, sends one
text message (``{"event": "websocket:connected", "content-type": ..., <headers flattened>}``),
then streams the caller's audio as binary frames of 16-bit linear PCM, 20 ms each (320 bytes at
8 kHz, 640 at 16 kHz, 960 at 24 kHz). A socket that cannot be opened fails the leg; a server that
closes the socket ends it.

This module owns only the socket: the lifecycle decides the leg's webhooks. The frames follow the
simulator's clock (at most one per 20 ms of simulated time) but never more than
``websocket.max_frames`` per leg nor more than a batch per real tick, so a long talk time at a
high time scale costs neither memory nor a busy loop. What the server sends is read and dropped,
one bounded message at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from orchestrator.sandbox.simulator.auth import sign_webhook
from orchestrator.sandbox.simulator.calls import Hangup, SocketRecord, endpoint_headers

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.calls import Call
    from orchestrator.sandbox.simulator.engine import SimEngine

__all__ = ["FRAME_SECONDS", "SocketClosed", "WebSocketLeg", "connected_message", "frame_bytes"]

log = structlog.get_logger("simulator.websocket")

FRAME_SECONDS = 0.02
_TICK_REAL = 0.01  # a leg wakes at most ~100 times a real second, whatever the time scale
_BATCH = 50  # frames sent per wake-up at most (a fast clock falls behind rather than floods)
_CLOSE_TIMEOUT = 2.0
_RATE = re.compile(r"rate=(\d+)")


def frame_bytes(content_type: str) -> int:
    """Bytes in one 20 ms frame of 16-bit mono PCM at the content type's rate (16 kHz if unsaid)."""
    m = _RATE.search(content_type)
    rate = int(m.group(1)) if m else 16000
    return int(rate * FRAME_SECONDS) * 2


def connected_message(endpoint: dict[str, Any]) -> str:
    """The first text message; the protocol's own keys win over a header of the same name."""
    msg: dict[str, Any] = {
        "event": "websocket:connected",
        "content-type": str(endpoint.get("content-type") or "audio/l16;rate=16000"),
    }
    for key, value in (endpoint_headers(endpoint) or {}).items():
        msg.setdefault(str(key), value)
    return orjson.dumps(msg).decode()


class SocketClosed(Hangup):
    """The server closed the socket: the far end hung up (Vonage sends ``disconnected``)."""

    def __init__(self) -> None:
        super().__init__("user")


def _failure(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timeout"
    if isinstance(err, InvalidStatus):
        return "not_websocket"  # an HTTP server that answered without upgrading
    if isinstance(err, InvalidURI):
        return "invalid_uri"
    if isinstance(err, InvalidHandshake):
        return "handshake_failed"
    if isinstance(err, ConnectionRefusedError):
        return "refused"
    if isinstance(err, OSError):  # ssl.SSLError is one too
        return "tls" if "SSL" in type(err).__name__ else "unreachable"
    return "error"


class WebSocketLeg:
    """The simulator's client side of one websocket leg: open, stream, drain, close."""

    def __init__(self, engine: SimEngine, call: Call) -> None:
        self.engine = engine
        self.call = call
        self.endpoint = call.to
        self.policy = engine.profile.websocket
        content_type = str(self.endpoint.get("content-type") or "")
        self.record = SocketRecord(str(self.endpoint.get("uri") or ""), frame_bytes(content_type))
        call.websocket = self.record
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def _auth_headers(self) -> dict[str, str]:
        """OAS 1.10 ``authorization``: ``custom`` sends its value, ``vonage`` a signed JWT."""
        auth = self.endpoint.get("authorization")
        if not isinstance(auth, dict):
            return {}
        if auth.get("type") == "custom":
            return {"Authorization": str(auth.get("value") or "")}
        engine = self.engine
        if not engine.signature_secret:
            return {}
        token = sign_webhook(
            b"", engine.signature_secret, api_key=engine.api_key, application_id=self.call.app_id
        )
        return {"Authorization": f"Bearer {token}"}

    async def open(self) -> bool:
        """Connect and send the first message; ``False`` (reason in the record) if it cannot."""
        rec, policy, engine = self.record, self.policy, self.engine
        uri = rec.uri
        try:
            ws = await connect(
                uri,
                additional_headers=self._auth_headers(),
                user_agent_header=None,
                compression=None,
                proxy=None,
                ssl=engine.poster.tls_context() if uri.startswith("wss://") else None,
                open_timeout=policy.open_timeout,
                close_timeout=_CLOSE_TIMEOUT,
                ping_interval=None,
                max_size=policy.max_message,
                max_queue=4,
            )
        except (OSError, TimeoutError, InvalidHandshake) as err:
            rec.reason = _failure(err)
            rec.error = f"{type(err).__name__}: {err}"[:300]
            engine.ledger.count(f"websocket.failed.{rec.reason}")
            log.info("websocket did not open", uuid=self.call.uuid, uri=uri, reason=rec.reason)
            return False
        self._ws = ws
        rec.opened = True
        engine.ledger.count("websocket.opened")
        with contextlib.suppress(ConnectionClosed):  # the reader sees the close, ends the leg
            await ws.send(connected_message(self.endpoint))
        return True

    def start(self) -> None:
        """Stream audio and drain the server's messages until either side closes."""
        if self._ws is None:
            return
        self._tasks = [
            asyncio.create_task(self._stream(self._ws)),
            asyncio.create_task(self._drain(self._ws)),
        ]

    async def _stream(self, ws: ClientConnection) -> None:
        clock, rec = self.engine.clock, self.record
        cap = self.policy.max_frames
        silence = bytes(rec.frame_bytes)
        started = clock.mono()
        tick = max(_TICK_REAL, clock.real_seconds(FRAME_SECONDS))
        try:
            while rec.frames_sent < cap:
                due = min(
                    cap, rec.frames_sent + _BATCH, int(clock.sim_elapsed(started) / FRAME_SECONDS)
                )
                while rec.frames_sent < due:
                    await ws.send(silence)
                    rec.frames_sent += 1
                await asyncio.sleep(tick)
        except ConnectionClosed:
            return

    async def _drain(self, ws: ClientConnection) -> None:
        rec = self.record
        try:
            async for _message in ws:
                rec.messages_received += 1
        except ConnectionClosed:
            pass
        if self._closing:
            return
        rec.closed_by = "server"
        rec.close_code = ws.close_code
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if not self.call.ended:
            self.call.interrupt(SocketClosed())

    @property
    def closed_by_server(self) -> bool:
        return self.record.closed_by == "server"

    async def close(self) -> None:
        """Close from the platform's side (the call ended elsewhere); idempotent."""
        ws = self._ws
        if ws is None or self._closing:
            return
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self.record.closed_by is None:
            self.record.closed_by = "simulator"
            try:
                await ws.close()
            except Exception:  # already gone: nothing left to release but the transport
                ws.transport.abort()
            self.record.close_code = ws.close_code
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
