"""Websocket legs on real loopback sockets: the simulator connects as Vonage does, or fails the leg.

Each test runs a real ``websockets`` server (or a plain TCP/HTTP server, or nothing) on
127.0.0.1 and checks what arrives there, the leg's webhooks and the simulator's ledger.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from contracts.webhooks import classify_webhook
from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver

pytestmark = pytest.mark.integration

HEADERS = {"caller-id": "447700900123", "language": "en-GB", "crm": {"id": 42}}


class WsServer:
    """A real WebSocket server on a free loopback port; keeps every message it receives."""

    def __init__(self, close_after_frames: int | None = None) -> None:
        self.close_after_frames = close_after_frames
        self.messages: list[str | bytes] = []
        self.connections = 0
        self.client_close_code: int | None = None  # how the simulator closed, if it did
        self.authorization: str | None = None
        self.closed = asyncio.Event()
        self._server: Server | None = None
        self.port = 0

    async def __aenter__(self) -> WsServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/socket") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def frames(self) -> list[bytes]:
        return [m for m in self.messages if isinstance(m, bytes)]

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        self.authorization = ws.request.headers.get("Authorization")
        try:
            async for msg in ws:
                self.messages.append(msg)
                if self.close_after_frames is not None and (
                    len(self.frames) >= self.close_after_frames
                ):
                    await ws.send(b"\x00" * 640)  # audio back: read and dropped by the simulator
                    await ws.close(1000, "bot done")
                    break
        except ConnectionClosed:
            pass
        else:
            if self.close_after_frames is None:
                self.client_close_code = ws.close_code
        self.closed.set()


def caller_talks(seconds: float, **extra: Any) -> dict[str, Any]:
    """Every call answered; the caller stays ``seconds`` (simulated) unless its NCCO ends first.

    Long enough for a loopback handshake on a loaded machine (20x: 10 s is 0.5 s real).
    """
    prof = only("human", **extra)
    prof["timing"] = {**prof["timing"], "talk": seconds}
    return prof


def ws_endpoint(uri: str, rate: int = 16000, **extra: Any) -> dict[str, Any]:
    return {
        "type": "websocket",
        "uri": uri,
        "content-type": f"audio/l16;rate={rate}",
        "headers": HEADERS,
        **extra,
    }


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def create(sim: Any, token: str, body: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=sim.base_url) as c:
        r = await c.post("/v1/calls", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return str(r.json()["uuid"])


def phone_call(receiver: Receiver, ref: str, ncco: list[Any]) -> dict[str, Any]:
    return {
        "to": [{"type": "phone", "number": "447700900321"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": ncco,
        "event_url": [receiver.url(f"/webhooks/event/{ref}")],
    }


def connect_to(receiver: Receiver, endpoint: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "action": "connect",
        "from": "447700900000",
        "endpoint": [endpoint],
        "eventUrl": [receiver.url("/webhooks/event/ws-leg")],
        **extra,
    }


async def settle(sim: Any) -> None:
    async with asyncio.timeout(20):
        await sim.wait_idle()


def leg_events(receiver: Receiver, ref: str) -> list[dict[str, Any]]:
    return [r.data for r in receiver.under(f"/webhooks/event/{ref}")]


def ws_leg(ledger: dict[str, Any]) -> dict[str, Any]:
    legs: list[dict[str, Any]] = ledger["calls"]
    (leg,) = [c for c in legs if c["to_endpoint"].get("type") == "websocket"]
    return leg


async def connect_call(
    make_sim: Any, receiver: Receiver, name: str, profile: dict[str, Any]
) -> tuple[WsServer, dict[str, Any]]:
    """A phone caller whose NCCO connects to a fresh loopback WebSocket server, run to the end."""
    async with WsServer() as server, make_sim(profile=profile) as sim:
        app = sim.create_application()
        ncco = [connect_to(receiver, ws_endpoint(server.url()))]
        await create(sim, app.jwt(), phone_call(receiver, name, ncco))
        await settle(sim)
        ledger = sim.ledger()
        async with asyncio.timeout(5):
            await server.closed.wait()
    return server, ledger


async def test_connect_sends_connected_message_then_pcm_frames_until_the_caller_hangs_up(
    make_sim: Any, receiver: Receiver
) -> None:
    server, ledger = await connect_call(make_sim, receiver, "caller", caller_talks(10.0))

    first, *rest = server.messages
    assert isinstance(first, str)
    assert json.loads(first) == {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        **HEADERS,
    }
    assert rest and all(isinstance(m, bytes) and len(m) == 640 for m in rest)
    assert server.client_close_code == 1000  # the simulator closed it when the caller hung up

    events = leg_events(receiver, "ws-leg")
    assert [e["status"] for e in events] == ["started", "answered", "completed"]
    assert all(e["headers"] == HEADERS for e in events)
    assert all(e["to"] == server.url() for e in events)
    for e in events:
        classify_webhook(e, "event")  # the product's own contract accepts every body
    assert events[-1]["disconnected_by"] == "platform"

    leg = ws_leg(ledger)
    assert leg["status"] == "completed"
    assert leg["websocket"]["uri"] == server.url()
    assert leg["websocket"]["opened"] is True and leg["websocket"]["reason"] is None
    assert leg["websocket"]["frames_sent"] == len(rest)
    assert leg["websocket"]["closed_by"] == "simulator"


async def test_frames_stop_at_the_cap_and_follow_simulated_time(
    make_sim: Any, receiver: Receiver
) -> None:
    """10 s of simulated talk is 500 frames of 20 ms; the cap (4) binds first."""
    prof = caller_talks(10.0, websocket={"max_frames": 4})
    server, ledger = await connect_call(make_sim, receiver, "capped", prof)
    assert len(server.frames) == 4
    assert ws_leg(ledger)["websocket"]["frames_sent"] == 4


async def test_server_closing_the_socket_ends_a_created_websocket_call(
    make_sim: Any, receiver: Receiver
) -> None:
    async with WsServer(close_after_frames=5) as server, make_sim(profile=only("human")) as sim:
        app = sim.create_application()
        body = {
            "to": [ws_endpoint(server.url("/bot"), rate=8000)],
            "from": {"type": "phone", "number": "447700900000"},
            # plays until someone hangs up: only the server's close can end this call quickly
            "ncco": [{"action": "talk", "text": "hold on", "loop": 0}],
            "event_url": [receiver.url("/webhooks/event/bot")],
        }
        await create(sim, app.jwt(), body)
        await settle(sim)
        ledger = sim.ledger()

    assert json.loads(str(server.messages[0]))["content-type"] == "audio/l16;rate=8000"
    assert len(server.frames) == 5 and all(len(f) == 320 for f in server.frames)
    events = leg_events(receiver, "bot")
    assert [e["status"] for e in events] == ["started", "answered", "disconnected", "completed"]
    disconnected = events[2]
    assert disconnected["headers"] == HEADERS
    assert classify_webhook(disconnected, "event").event_type == "disconnected"
    assert events[-1]["disconnected_by"] == "user"

    leg = ws_leg(ledger)
    assert leg["websocket"]["closed_by"] == "server" and leg["websocket"]["close_code"] == 1000
    assert leg["websocket"]["frames_sent"] >= 5
    assert leg["disconnected_by"] == "user"


async def test_disconnected_reply_ncco_runs_on_the_caller(
    make_sim: Any, receiver: Receiver
) -> None:
    receiver.on(
        "/webhooks/event/ws-leg",
        lambda r: (
            (
                200,
                [
                    {
                        "action": "notify",
                        "payload": {"after": "bot"},
                        "eventUrl": [receiver.url("/n")],
                    }
                ],
            )
            if r.data.get("status") == "disconnected"
            else (200, None)
        ),
    )
    prof = caller_talks(600.0)  # the caller would stay for 30 s real
    async with WsServer(close_after_frames=2) as server, make_sim(profile=prof) as sim:
        app = sim.create_application()
        ncco = [
            connect_to(receiver, ws_endpoint(server.url())),
            {"action": "talk", "text": "replaced by the disconnected reply"},
        ]
        await create(sim, app.jwt(), phone_call(receiver, "caller", ncco))
        await settle(sim)
        ledger = sim.ledger()
    assert ws_leg(ledger)["websocket"]["closed_by"] == "server"
    (note,) = receiver.under("/n")
    assert note.data == {"after": "bot"}
    assert leg_events(receiver, "caller")[-1]["status"] == "completed"


async def test_refused_port_fails_the_leg_and_a_synchronous_connect_moves_on(
    make_sim: Any, receiver: Receiver
) -> None:
    next_agent = [
        {
            "action": "connect",
            "endpoint": [{"type": "phone", "number": "447700900777"}],
            "eventUrl": [receiver.url("/webhooks/event/next")],
        }
    ]
    receiver.on(
        "/webhooks/event/ws-leg",
        lambda r: (200, next_agent) if r.data.get("status") == "failed" else (200, None),
    )
    uri = f"ws://127.0.0.1:{free_port()}/socket"
    prof = caller_talks(600.0, overrides=[{"match": "^447700900777$", "talk": 2.0}])
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        ncco = [connect_to(receiver, ws_endpoint(uri), eventType="synchronous")]
        await create(sim, app.jwt(), phone_call(receiver, "caller", ncco))
        await settle(sim)
        ledger = sim.ledger()

    events = leg_events(receiver, "ws-leg")
    assert [e["status"] for e in events] == ["started", "failed", "completed"]
    assert all(e["headers"] == HEADERS for e in events)
    assert classify_webhook(events[1], "event").event_type == "failed"
    leg = ws_leg(ledger)
    assert leg["status"] == "failed"
    assert leg["websocket"]["opened"] is False
    assert leg["websocket"]["reason"] == "refused"
    assert leg["websocket"]["frames_sent"] == 0
    assert ledger["counters"]["websocket.failed.refused"] == 1
    # the failure's reply connected the caller to the next endpoint
    assert "answered" in [e["status"] for e in leg_events(receiver, "next")]


async def test_plain_http_server_is_not_a_websocket_and_fails_the_leg(
    make_sim: Any, receiver: Receiver
) -> None:
    async def answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nok"
        )
        await writer.drain()
        writer.close()

    http = await asyncio.start_server(answer_http, "127.0.0.1", 0)
    port = http.sockets[0].getsockname()[1]
    try:
        async with make_sim(profile=only("human")) as sim:
            app = sim.create_application()
            body = {
                "to": [ws_endpoint(f"ws://127.0.0.1:{port}/ws")],
                "from": {"type": "phone", "number": "447700900000"},
                "ncco": [{"action": "talk", "text": "never heard"}],
                "event_url": [receiver.url("/webhooks/event/http")],
            }
            await create(sim, app.jwt(), body)
            await settle(sim)
            ledger = sim.ledger()
    finally:
        http.close()
        await http.wait_closed()

    assert [e["status"] for e in leg_events(receiver, "http")] == ["started", "failed", "completed"]
    leg = ws_leg(ledger)
    assert leg["websocket"]["opened"] is False
    assert leg["websocket"]["reason"] == "not_websocket"
    assert "200" in leg["websocket"]["error"]


async def test_silent_server_times_out_and_fails_the_leg(make_sim: Any, receiver: Receiver) -> None:
    """A TCP server that never answers the handshake: failed after ``open_timeout`` (real s)."""

    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    prof = caller_talks(600.0, websocket={"open_timeout": 0.3})
    try:
        async with make_sim(profile=prof) as sim:
            app = sim.create_application()
            ncco = [connect_to(receiver, ws_endpoint(f"ws://127.0.0.1:{port}/ws"))]
            await create(sim, app.jwt(), phone_call(receiver, "caller", ncco))
            await settle(sim)
            ledger = sim.ledger()
    finally:
        for w in held:
            w.close()
        silent.close()
        await silent.wait_closed()
    assert [e["status"] for e in leg_events(receiver, "ws-leg")] == [
        "started",
        "failed",
        "completed",
    ]
    assert ws_leg(ledger)["websocket"]["reason"] == "timeout"


async def test_custom_authorization_is_sent_in_the_handshake(
    make_sim: Any, receiver: Receiver
) -> None:
    async with (
        WsServer(close_after_frames=1) as server,
        make_sim(profile=caller_talks(600.0)) as sim,
    ):
        app = sim.create_application()
        endpoint = ws_endpoint(
            server.url(), authorization={"type": "custom", "value": "Bearer abc123"}
        )
        await create(
            sim, app.jwt(), phone_call(receiver, "caller", [connect_to(receiver, endpoint)])
        )
        await settle(sim)
        ledger = sim.ledger()
    assert server.authorization == "Bearer abc123"
    assert ws_leg(ledger)["websocket"]["opened"] is True
