"""A tiny real HTTP webhook receiver for simulator tests: records and verifies what arrives.

It plays the product's side: every request is kept with its verified signature claims (HS256 with
the shared secret, ``payload_hash`` compared with the body), and per-path handlers choose the
reply (an NCCO for answer/input URLs, a 5xx to force retries...).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
import orjson

from orchestrator.web.embedded import EmbeddedServer

Reply = tuple[int, Any]


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any] | None
    signature_error: str | None

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def data(self) -> dict[str, Any]:
        """The payload, whether it came as a JSON body (POST) or a query string (GET)."""
        return self.json if self.body else dict(self.query)

    @property
    def signed_ok(self) -> bool:
        return self.claims is not None and self.signature_error is None


class Receiver:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self.requests: list[Received] = []
        self.handlers: dict[str, Callable[[Received], Reply]] = {}
        self._server = EmbeddedServer(self, port=0)
        self.base = ""
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Receiver:
        port = await self._server.start()
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()

    def url(self, path: str) -> str:
        return self.base + path

    def on(self, prefix: str, handler: Callable[[Received], Reply]) -> None:
        """Reply to requests whose path starts with ``prefix`` (longest prefix wins)."""
        self.handlers[prefix] = handler

    def clear(self) -> None:
        self.requests.clear()
        self.handlers.clear()

    def _verify(self, auth: str | None, body: bytes) -> tuple[dict[str, Any] | None, str | None]:
        if not auth or not auth.startswith("Bearer "):
            return None, "unsigned"
        if self.secret is None:
            return None, "no secret configured"
        try:
            claims = jwt.decode(auth[7:], self.secret, algorithms=["HS256"])
        except jwt.PyJWTError as err:
            return None, f"bad signature: {err}"
        if claims.get("payload_hash") != hashlib.sha256(body).hexdigest():
            return claims, "payload_hash mismatch"
        for claim in ("iat", "jti", "iss", "api_key"):
            if claim not in claims:
                return claims, f"missing claim {claim}"
        if claims["iss"] != "Vonage":
            return claims, "iss is not Vonage"
        return claims, None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        claims, err = self._verify(headers.get("authorization"), body)
        rec = Received(
            scope["method"],
            scope["path"],
            dict(parse_qsl(scope["query_string"].decode())),
            headers,
            body,
            claims,
            err,
        )
        self.requests.append(rec)
        self._changed.set()
        status, reply = 200, None
        best = ""
        for prefix in self.handlers:
            if rec.path.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        if best:
            status, reply = self.handlers[best](rec)
        out = b"" if reply is None else (reply if isinstance(reply, bytes) else orjson.dumps(reply))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": out})

    # --- queries -------------------------------------------------------------------------------
    def under(self, prefix: str) -> list[Received]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    def statuses(self, prefix: str) -> list[str]:
        return [str(r.data.get("status")) for r in self.under(prefix) if r.data.get("status")]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()
