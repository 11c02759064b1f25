"""JWT minting/caching, Basic auth, the command -> request mapping, and response/transport sorting.

Mapping tests use ``httpx.MockTransport`` only to see the exact request that would go out; the
behaviour against a server is tested against the simulator in tests/integration/dispatcher.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.envelopes import CommandEnvelope, CommandKind
from orchestrator.dispatcher.auth import JwtMinter, basic_auth_header
from orchestrator.dispatcher.client import (
    InvalidCommand,
    VonageClient,
    build_request,
    parse_retry_after,
)
from orchestrator.dispatcher.retry import Transport


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, key.public_key()


def test_jwt_claims_cache_and_refresh(keypair: tuple[bytes, Any]) -> None:
    pem, public = keypair
    now = [1_000_000.0]
    minter = JwtMinter("app-1", pem, ttl=900, refresh_before=60, clock=lambda: now[0])
    t1 = minter.token()
    claims = jwt.decode(t1, public, algorithms=["RS256"], options={"verify_exp": False})
    assert claims["application_id"] == "app-1"
    assert claims["iat"] == 1_000_000 and claims["exp"] == 1_000_900
    assert claims["jti"]
    assert jwt.get_unverified_header(t1)["alg"] == "RS256"
    now[0] += 800
    assert minter.token() == t1  # cached
    now[0] += 50  # 50 s before expiry: inside the refresh margin
    t2 = minter.token()
    assert t2 != t1 and minter.minted == 2
    # A 401 refreshes once; a second caller holding the same stale token reuses the new one.
    t3 = minter.refresh(stale=t2)
    assert t3 != t2
    assert minter.refresh(stale=t2) == t3
    assert minter.minted == 3
    assert "BEGIN" not in repr(minter)


def test_basic_auth() -> None:
    h = basic_auth_header("key", "secret")
    assert h.startswith("Basic ") and base64.b64decode(h[6:]) == b"key:secret"


def cmd(kind: CommandKind, body: dict[str, Any] | None = None, **kw: Any) -> CommandEnvelope:
    return CommandEnvelope(
        id=f"c-{kind.value}",
        occurred_at=datetime.now(UTC),
        flow_key="ref-1",
        kind=kind,
        body=body or {},
        **kw,
    )


CREATE_BODY = {
    "to": [{"type": "phone", "number": "447700900001"}],
    "from": {"type": "phone", "number": "447700900000"},
    "ncco": [{"action": "talk", "text": "hi"}],
    "event_url": ["https://example.com/webhooks/event/ref-1"],
}


@pytest.mark.parametrize(
    ("kind", "body", "method", "path", "json"),
    [
        (CommandKind.CREATE_CALL, CREATE_BODY, "POST", "/v1/calls", None),
        (CommandKind.HANGUP, {}, "PUT", "/v1/calls/U1", {"action": "hangup"}),
        (CommandKind.MUTE, {}, "PUT", "/v1/calls/U1", {"action": "mute"}),
        (CommandKind.UNMUTE, {}, "PUT", "/v1/calls/U1", {"action": "unmute"}),
        (CommandKind.EARMUFF, {}, "PUT", "/v1/calls/U1", {"action": "earmuff"}),
        (CommandKind.UNEARMUFF, {}, "PUT", "/v1/calls/U1", {"action": "unearmuff"}),
        (
            CommandKind.TRANSFER,
            {"destination": {"type": "ncco", "url": ["https://example.com/ncco"]}},
            "PUT",
            "/v1/calls/U1",
            {
                "action": "transfer",
                "destination": {"type": "ncco", "url": ["https://example.com/ncco"]},
            },
        ),
        (CommandKind.TALK_START, {"text": "hello"}, "PUT", "/v1/calls/U1/talk", {"text": "hello"}),
        (CommandKind.TALK_STOP, {}, "DELETE", "/v1/calls/U1/talk", None),
        (
            CommandKind.STREAM_START,
            {"stream_url": ["https://example.com/a.mp3"]},
            "PUT",
            "/v1/calls/U1/stream",
            {"stream_url": ["https://example.com/a.mp3"]},
        ),
        (CommandKind.STREAM_STOP, {}, "DELETE", "/v1/calls/U1/stream", None),
        (CommandKind.DTMF, {"digits": "12p#"}, "PUT", "/v1/calls/U1/dtmf", {"digits": "12p#"}),
        (
            CommandKind.DTMF_SUBSCRIBE,
            {"event_url": ["https://example.com/webhooks/input/ref-1"]},
            "PUT",
            "/v1/calls/U1/input/dtmf",
            {"event_url": ["https://example.com/webhooks/input/ref-1"]},
        ),
        (CommandKind.DTMF_UNSUBSCRIBE, {}, "DELETE", "/v1/calls/U1/input/dtmf", None),
        (CommandKind.GET_CALL, {}, "GET", "/v1/calls/U1", None),
    ],
)
def test_voice_mapping(
    kind: CommandKind, body: dict[str, Any], method: str, path: str, json: dict[str, Any] | None
) -> None:
    req = build_request(cmd(kind, body, call_uuid="U1"))
    assert (req.method, req.path, req.auth) == (method, path, "jwt")
    if json is not None:
        assert req.json == json
    if kind == CommandKind.CREATE_CALL:
        assert req.json is not None and req.json["to"][0]["number"] == "447700900001"
        assert not req.call_scoped
    else:
        assert req.call_scoped


def test_application_and_list_mapping() -> None:
    r = build_request(cmd(CommandKind.LIST_CALLS, {"page_size": 100, "status": "started"}))
    assert (r.method, r.path, r.params) == (
        "GET",
        "/v1/calls",
        {"page_size": "100", "status": "started"},
    )
    r = build_request(cmd(CommandKind.APPLICATION_CREATE, {"name": "demo"}))
    assert (r.method, r.path, r.auth, r.json) == (
        "POST",
        "/v2/applications",
        "basic",
        {"name": "demo"},
    )
    r = build_request(cmd(CommandKind.APPLICATION_GET, {"id": "A1"}))
    assert (r.method, r.path, r.auth) == ("GET", "/v2/applications/A1", "basic")
    r = build_request(cmd(CommandKind.APPLICATION_DELETE, {"id": "A1"}))
    assert (r.method, r.path) == ("DELETE", "/v2/applications/A1")
    r = build_request(cmd(CommandKind.APPLICATION_UPDATE, {"id": "A1", "name": "x"}))
    assert (r.method, r.path, r.json) == ("PUT", "/v2/applications/A1", {"id": "A1", "name": "x"})
    r = build_request(cmd(CommandKind.APPLICATION_LIST, {"page": 2}))
    assert (r.path, r.params) == ("/v2/applications", {"page": "2"})


@pytest.mark.parametrize(
    ("kind", "body", "kw", "match"),
    [
        (CommandKind.HANGUP, {}, {}, "call_uuid"),
        (CommandKind.CREATE_CALL, {"to": []}, {}, "body"),
        (
            CommandKind.CREATE_CALL,
            {**CREATE_BODY, "answer_url": ["https://x.example/a"]},
            {},
            "body",
        ),
        (CommandKind.DTMF, {"digits": "abc"}, {"call_uuid": "U"}, "digits"),
        (CommandKind.HANGUP, {"action": "mute"}, {"call_uuid": "U"}, "action"),
        (CommandKind.APPLICATION_GET, {}, {}, "id"),
        (CommandKind.APPLICATION_GET, {"id": "../x"}, {}, "id"),
    ],
)
def test_invalid_commands_fail_before_sending(
    kind: CommandKind, body: dict[str, Any], kw: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidCommand, match=match):
        build_request(cmd(kind, body, **kw))


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0) == 6.0


def test_region_trust() -> None:
    c = VonageClient("http://127.0.0.1:8090", jwt=None)
    assert c.trusted_region("https://api-sg-1.nexmo.com") == "https://api-sg-1.nexmo.com"
    assert c.trusted_region("https://api-us-3.vonage.com/") == "https://api-us-3.vonage.com"
    assert c.trusted_region("http://127.0.0.1:9999") == "http://127.0.0.1:9999"  # the API host
    assert c.trusted_region("http://api-sg-1.nexmo.com") is None  # plain HTTP to Vonage: no
    assert c.trusted_region("https://evil.example/nexmo.com") is None
    assert c.trusted_region("https://nexmo.com.evil.example") is None


async def test_send_sorts_responses_and_transport_errors(keypair: tuple[bytes, Any]) -> None:
    pem, public = keypair
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path.endswith("/connect"):
            raise httpx.ConnectError("refused", request=request)
        if path.endswith("/drop"):
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        if path.endswith("/slow"):
            raise httpx.ReadTimeout("timed out", request=request)
        if path.endswith("/limited"):
            return httpx.Response(
                429, json={"title": "Rate Limit Hit"}, headers={"Retry-After": "2"}
            )
        return httpx.Response(201, json={"uuid": "U1", "conversation_uuid": "CON-1"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = VonageClient(
        "https://api.nexmo.com",
        jwt=JwtMinter("app", pem),
        basic=basic_auth_header("k", "s"),
        http=http,
    )
    req = build_request(cmd(CommandKind.CREATE_CALL, CREATE_BODY))
    ok = await client.send(req, "https://api.nexmo.com")
    assert ok.status == 201 and ok.body["uuid"] == "U1" and ok.token
    sent = seen[-1]
    assert sent.headers["content-type"] == "application/json"
    token = sent.headers["authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, public, algorithms=["RS256"])["application_id"] == "app"

    from dataclasses import replace

    limited = await client.send(replace(req, path="/limited"), "https://api.nexmo.com")
    assert limited.status == 429 and limited.retry_after == 2.0
    refused = await client.send(replace(req, path="/connect"), "https://api.nexmo.com")
    assert refused.transport == Transport.NOT_SENT and refused.status is None
    dropped = await client.send(replace(req, path="/drop"), "https://api.nexmo.com")
    assert dropped.transport == Transport.MAYBE_SENT
    slow = await client.send(replace(req, path="/slow"), "https://api.nexmo.com")
    assert slow.transport == Transport.MAYBE_SENT

    app = build_request(cmd(CommandKind.APPLICATION_GET, {"id": "A1"}))
    await client.send(app, client.api_base)
    assert seen[-1].headers["authorization"].startswith("Basic ")
    await client.aclose()


def test_region_routing_modes() -> None:
    req = build_request(cmd(CommandKind.HANGUP, call_uuid="U1"))
    direct = VonageClient("https://api.nexmo.com", jwt=None)
    assert direct.first_base(req, "https://api-sg-1.nexmo.com") == "https://api-sg-1.nexmo.com"
    assert direct.first_base(req, "https://evil.example") == "https://api.nexmo.com"
    fallback = VonageClient("https://api.nexmo.com", jwt=None, region_routing="fallback")
    assert fallback.first_base(req, "https://api-sg-1.nexmo.com") == "https://api.nexmo.com"
    create = build_request(cmd(CommandKind.CREATE_CALL, CREATE_BODY))
    assert direct.first_base(create, "https://api-sg-1.nexmo.com") == "https://api.nexmo.com"
