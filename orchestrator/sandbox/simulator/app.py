"""The simulator's ASGI application: routing, auth, limits, faults and the ledger, in that order.

Every request goes through one pipeline so the ledger sees all of them, including the ones
refused before a handler ran (401, 429, injected 5xx). The order mirrors an API gateway:
route -> authenticate -> rate-limit -> injected fault/latency -> parse -> handler -> (maybe drop
the connection instead of answering). Only authenticated requests consume rate-limit slots.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog

from contracts.errors import accept_header
from orchestrator.sandbox.simulator import app_api, problems, voice_api
from orchestrator.sandbox.simulator.auth import AuthFailure, check_basic
from orchestrator.sandbox.simulator.engine import SimEngine
from orchestrator.sandbox.simulator.faults import decide, throttled
from orchestrator.sandbox.simulator.http import Ctx, Resp
from orchestrator.web.body import BodyTooLarge, asgi_chunks, read_limited

__all__ = ["SimulatorApp", "create_app"]

log = structlog.get_logger("simulator.http")

Handler = Callable[[Ctx], Awaitable[Resp]]

# (path regex, {method: op}, auth kind) -- op names are the ledger's and the profile's.
_ROUTES: list[tuple[re.Pattern[str], dict[str, str], str]] = [
    (re.compile(r"^/v1/calls$"), {"GET": "list_calls", "POST": "create_call"}, "jwt"),
    (re.compile(r"^/v1/calls/(?P<uuid>[^/]+)$"), {"GET": "get_call", "PUT": "update_call"}, "jwt"),
    (
        re.compile(r"^/v1/calls/(?P<uuid>[^/]+)/talk$"),
        {"PUT": "start_talk", "DELETE": "stop_talk"},
        "jwt",
    ),
    (
        re.compile(r"^/v1/calls/(?P<uuid>[^/]+)/stream$"),
        {"PUT": "start_stream", "DELETE": "stop_stream"},
        "jwt",
    ),
    (re.compile(r"^/v1/calls/(?P<uuid>[^/]+)/dtmf$"), {"PUT": "start_dtmf"}, "jwt"),
    (
        re.compile(r"^/v1/calls/(?P<uuid>[^/]+)/input/dtmf$"),
        {"PUT": "subscribe_dtmf", "DELETE": "unsubscribe_dtmf"},
        "jwt",
    ),
    (re.compile(r"^/v1/files/(?P<id>[^/]+)$"), {"GET": "get_file"}, "jwt"),
    (
        re.compile(r"^/v2/applications$"),
        {"GET": "list_applications", "POST": "create_application"},
        "basic",
    ),
    (
        re.compile(r"^/v2/applications/(?P<id>[^/]+)$"),
        {"GET": "get_application", "PUT": "update_application", "DELETE": "delete_application"},
        "basic",
    ),
]

_HANDLERS: dict[str, Handler] = {**voice_api.HANDLERS, **app_api.HANDLERS}
_JSON = b"application/json"
#: Largest request body (an NCCO-carrying create is a few KiB); 413 above, before reading on.
MAX_BODY_BYTES = 1024 * 1024
#: Integers orjson can write back (a query value echoed in a body or a link must fit).
_INT_RANGE = (-(2**63), 2**63 - 1)


def _json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


class SimulatorApp:
    """ASGI 3 callable. Runs inside any ASGI server; dropped connections need ours (server.py)."""

    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        started = False

        async def tracked(msg: dict[str, Any]) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self._http(method, path, scope, receive, tracked)
        except ConnectionAbortedError:
            raise
        except Exception:
            # Vonage answers a failure with a problem body, never uvicorn's bare text/plain 500.
            log.exception("request failed", path=path)
            if not started:
                await _send(send, Resp(500, problems.server_error(500)))

    async def _http(
        self,
        method: str,
        path: str,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if path.startswith("/_sim/"):
            await self._control(method, path, scope, receive, send)
            return
        resp, drop = await self._api(method, path, scope, receive)
        if drop:
            dropper = scope.get("sim.drop")
            if callable(dropper):
                dropper()
                return
            # Not served by our server: the best available approximation is an aborted response.
            await send({"type": "http.response.start", "status": resp.status, "headers": []})
            raise ConnectionAbortedError("simulated dropped connection")
        await _send(send, resp)

    async def _lifespan(
        self,
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await self.engine.poster.start()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.engine.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- the API pipeline -------------------------------------------------------------------------
    async def _api(
        self,
        method: str,
        path: str,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
    ) -> tuple[Resp, bool]:
        engine = self.engine
        clock = engine.clock
        mono = clock.mono()
        rec = engine.ledger.new_request(clock.wall(mono), method, path)
        try:
            body_bytes = await _read_body(scope, receive)
        except BodyTooLarge as err:
            rec.status = 413
            return Resp(413, problems.too_large(err.limit), headers=_CLOSE), False
        resp, drop = await self._pipeline(method, path, scope, body_bytes, rec, mono)
        rec.status = resp.status
        rec.dropped = drop
        return resp, drop

    async def _pipeline(
        self,
        method: str,
        path: str,
        scope: dict[str, Any],
        body_bytes: bytes,
        rec: Any,
        mono: float,
    ) -> tuple[Resp, bool]:
        engine = self.engine
        route = None
        params: dict[str, str] = {}
        for pattern, methods, auth_kind in _ROUTES:
            m = pattern.match(path)
            if m:
                route = (methods, auth_kind)
                params = m.groupdict()
                break
        if route is None:
            return Resp(404, problems.not_found(path)), False
        methods, auth_kind = route
        op = methods.get(method)
        if op is None:
            rec.op = None
            return Resp(405, problems.wrong_verb(method)), False
        rec.op = op
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        authorization = headers.get("authorization")
        app = None
        try:
            if auth_kind == "jwt":
                app_id = engine.verifier.verify(authorization)
                app = engine.apps.get(app_id)
                rec.app_id = app_id
            else:
                check_basic(authorization, engine.api_key, engine.api_secret)
            rec.auth_ok = True
        except AuthFailure as err:
            rec.auth_ok = False
            rec.reason = str(err)
            problem = problems.unauthorized() if auth_kind == "jwt" else problems.bad_credentials()
            return Resp(401, problem), False

        # Rate limits: creating calls against --cps, other Voice API requests against --rps.
        now = engine.clock.mono()
        if throttled(engine.profile, op, engine.fault_rng):
            rec.t = engine.clock.wall(now)
            rec.fault = "throttled"
            rec.reason = "rate limited (injected)"
            engine.ledger.count("faults.throttled")
            return Resp(429, problems.rate_limited()), False
        if auth_kind == "jwt":
            limiter, kind = (
                (engine.cps_limiter, "cps") if op == "create_call" else (engine.rps_limiter, "rps")
            )
            if not limiter.try_acquire(now):
                rec.t = engine.clock.wall(now)
                rec.reason = f"rate limited ({kind})"
                engine.ledger.count(f"rate_limited.{kind}")
                return Resp(429, problems.rate_limited()), False
            rec.t = engine.clock.wall(now)
            rec.limit = kind

        accept = headers.get("accept")
        if accept and op != "get_file" and not _accepts_json(accept):
            return Resp(406, _accept_problem()), False

        fault = decide(engine.profile, op, engine.fault_rng)
        if fault.latency > 0:
            await asyncio.sleep(fault.latency)
        if fault.error_status is not None:
            rec.fault = f"error {fault.error_status}"
            engine.ledger.count("faults.error")
            return Resp(fault.error_status, problems.server_error(fault.error_status)), False

        body: Any = None
        if body_bytes and method in ("POST", "PUT"):
            ctype = headers.get("content-type", "")
            if "json" not in ctype:
                return Resp(415, problems.content_type_header()), False
            try:
                body = orjson.loads(body_bytes)
            except orjson.JSONDecodeError:
                return Resp(400, problems.invalid_json()), False
        query = dict(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        ctx = Ctx(
            engine=engine,
            method=method,
            path=path,
            params=params,
            query=query,
            headers=headers,
            body=body,
            raw_body=body_bytes,
            rec=rec,
            mono=now,
            app=app,
        )
        try:
            resp = await _HANDLERS[op](ctx)
        except Exception:
            log.exception("handler failed", op=op, path=path)
            resp = Resp(500, problems.server_error(500))
        if fault.drop:
            rec.fault = "dropped"
            engine.ledger.count("faults.dropped")
            return resp, True
        return resp, False

    # --- /_sim control endpoints ------------------------------------------------------------------
    async def _control(
        self,
        method: str,
        path: str,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        try:
            body = await _read_body(scope, receive)
        except BodyTooLarge as err:
            await _send(send, Resp(413, problems.too_large(err.limit), headers=_CLOSE))
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        engine = self.engine
        if path == "/_sim/ledger" and method == "GET":

            def flag(name: str, default: bool = True) -> bool:
                v = query.get(name)
                return default if v is None else v.lower() not in ("0", "false", "no")

            snap = engine.snapshot(
                since=_int(query.get("since")),
                include_requests=flag("requests"),
                include_calls=flag("calls"),
                include_webhooks=flag("webhooks"),
                call_ref=query.get("call_ref"),
                calls_since=_int(query.get("calls_since")),
            )
            await _send(send, Resp(200, snap))
        elif path == "/_sim/inbound" and method == "POST":
            await _send(send, self._inbound(body))
        elif path == "/_sim/reset" and method == "POST":
            engine.reset()
            await _send(send, Resp(200, {"reset": True}))
        elif path == "/_sim/health" and method == "GET":
            await _send(
                send,
                Resp(
                    200, {"ok": True, "live_calls": engine.live_tasks, "calls": len(engine.calls)}
                ),
            )
        else:
            await _send(send, Resp(404, problems.not_found(path)))

    def _inbound(self, raw: bytes) -> Resp:
        """``POST /_sim/inbound {"from", "to", "app_id"?}``: a person calls the application.

        The application's ``answer_url`` is fetched (GET by default, as Vonage does), its NCCO
        runs, and events go to its ``event_url``. Not part of Vonage's API: a sandbox control.
        """
        try:
            req = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return Resp(400, problems.invalid_json())
        if not isinstance(req, dict) or not req.get("from") or not req.get("to"):
            return Resp(400, problems.bad_request("give from (caller) and to (your number)"))
        try:
            call = self.engine.start_inbound(
                str(req["from"]), str(req["to"]), str(req["app_id"]) if req.get("app_id") else None
            )
        except LookupError as err:
            return Resp(404, problems.not_found(str(err)))
        except ValueError as err:
            return Resp(400, problems.bad_request(str(err)))
        return Resp(
            201,
            {"uuid": call.uuid, "conversation_uuid": call.conversation_uuid, "app_id": call.app_id},
        )


def _int(value: str | None) -> int:
    """A sandbox query number; anything unreadable or out of range counts as 0 (no filter)."""
    try:
        n = int(value or 0)
    except ValueError:
        return 0
    return n if _INT_RANGE[0] <= n <= _INT_RANGE[1] else 0


def _accepts_json(accept: str) -> bool:
    a = accept.lower()
    return "json" in a or "*/*" in a or "application/*" in a


def _accept_problem() -> dict[str, Any]:
    return accept_header()


_CLOSE = [(b"connection", b"close")]  # the rest of a refused body is not worth reading


async def _read_body(
    scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]]
) -> bytes:
    length = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k == b"content-length"), None
    )
    return await read_limited(asgi_chunks(receive), MAX_BODY_BYTES, length)


async def _send(send: Callable[[dict[str, Any]], Awaitable[None]], resp: Resp) -> None:
    if resp.body is None:
        payload = b""
        headers: list[tuple[bytes, bytes]] = []
    elif isinstance(resp.body, bytes | bytearray):
        payload = bytes(resp.body)
        headers = [(b"content-type", resp.content_type.encode())]
    else:
        try:
            payload = _json_bytes(resp.body)
        except orjson.JSONEncodeError:  # a value orjson cannot write (an int >= 2**64)
            log.exception("response not serialisable", status=resp.status)
            resp = Resp(500, problems.server_error(500))
            payload = _json_bytes(resp.body)
        headers = [(b"content-type", _JSON)]
    if resp.status != 204:
        headers.append((b"content-length", str(len(payload)).encode()))
    else:
        payload = b""
    headers.extend(resp.headers)
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def create_app(engine: SimEngine) -> SimulatorApp:
    return SimulatorApp(engine)
