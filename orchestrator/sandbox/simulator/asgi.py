"""The simulator's HTTP front on Starlette: routing, auth, limits, faults and the ledger, in order.

Every request goes through one pipeline so the ledger sees all of them, including the ones
refused before a handler ran (401, 429, injected 5xx) and the ones no route takes (404, 405).
The order mirrors an API gateway: route -> authenticate -> rate-limit -> injected fault/latency
-> parse -> handler -> (maybe drop the connection instead of answering). Only authenticated
requests consume rate-limit slots. ``/_sim/...`` are the sandbox's own controls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.errors import accept_header
from orchestrator.sandbox.simulator import applications_api, problems, voice_api
from orchestrator.sandbox.simulator.auth import AuthFailure, check_basic
from orchestrator.sandbox.simulator.engine import SimEngine
from orchestrator.sandbox.simulator.faults import decide, throttled
from orchestrator.sandbox.simulator.http import Ctx, Resp
from orchestrator.sandbox.simulator.ledger import RequestRecord
from orchestrator.sandbox.simulator.lifecycle import Legs
from orchestrator.web.body import BodyTooLarge, request_body

__all__ = ["create_app"]

log = structlog.get_logger("simulator.http")

Handler = Callable[[Ctx], Awaitable[Resp]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One API path: its operation per method (the ledger's and the profile's names), its auth."""

    path: str
    ops: dict[str, str]
    auth: str  # jwt | basic


API_ROUTES = (
    ApiRoute("/v1/calls", {"GET": "list_calls", "POST": "create_call"}, "jwt"),
    ApiRoute("/v1/calls/{uuid}", {"GET": "get_call", "PUT": "update_call"}, "jwt"),
    ApiRoute("/v1/calls/{uuid}/talk", {"PUT": "start_talk", "DELETE": "stop_talk"}, "jwt"),
    ApiRoute("/v1/calls/{uuid}/stream", {"PUT": "start_stream", "DELETE": "stop_stream"}, "jwt"),
    ApiRoute("/v1/calls/{uuid}/dtmf", {"PUT": "start_dtmf"}, "jwt"),
    ApiRoute(
        "/v1/calls/{uuid}/input/dtmf",
        {"PUT": "subscribe_dtmf", "DELETE": "unsubscribe_dtmf"},
        "jwt",
    ),
    ApiRoute("/v1/files/{id}", {"GET": "get_file"}, "jwt"),
    ApiRoute(
        "/v2/applications", {"GET": "list_applications", "POST": "create_application"}, "basic"
    ),
    ApiRoute(
        "/v2/applications/{id}",
        {"GET": "get_application", "PUT": "update_application", "DELETE": "delete_application"},
        "basic",
    ),
)

_HANDLERS: dict[str, Handler] = {**voice_api.HANDLERS, **applications_api.HANDLERS}
#: Largest request body (an NCCO-carrying create is a few KiB); 413 above, before reading on.
MAX_BODY_BYTES = 1024 * 1024
#: Integers orjson can write back (a query value echoed in a body or a link must fit).
_INT_RANGE = (-(2**63), 2**63 - 1)
_CLOSE = {"Connection": "close"}  # the rest of a refused body is not worth reading


class _DroppedConnection(Response):
    """No answer at all: the TCP connection is aborted (the client cannot know what happened).

    Served by the simulator's own server, the request's scope carries ``sim.drop`` (see
    ``server.py``); elsewhere the closest approximation is an aborted response.
    """

    def __init__(self, status: int) -> None:
        super().__init__(status_code=status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dropper = scope.get("sim.drop")
        if callable(dropper):
            dropper()
            return
        await send({"type": "http.response.start", "status": self.status_code, "headers": []})
        raise ConnectionAbortedError("simulated dropped connection")


class _AnyMethod:
    """An endpoint for every method: the pipeline answers a wrong one itself (405, in the ledger).

    (Starlette gives a function endpoint GET and HEAD only; an ASGI endpoint takes all.)
    """

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class _NoTrailingSlash:
    """``/v1/calls/`` is ``/v1/calls``, as on Vonage (no redirect)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


class SimulatorFront:
    """The endpoints; every API route ends in :meth:`api` (one pipeline, one ledger record)."""

    def __init__(self, engine: SimEngine, legs: Legs) -> None:
        self.engine = engine
        self.legs = legs

    def routes(self) -> list[Route]:
        routes = [Route(r.path, _AnyMethod(self._api(r))) for r in API_ROUTES]
        routes += [
            Route("/_sim/ledger", self.ledger, methods=["GET"]),
            Route("/_sim/inbound", self.inbound, methods=["POST"]),
            Route("/_sim/reset", self.reset, methods=["POST"]),
            Route("/_sim/health", self.health, methods=["GET"]),
            Route("/_sim/{rest:path}", _AnyMethod(self.unknown_control)),
            Route("/{rest:path}", _AnyMethod(self._api(None))),
        ]
        return routes

    # --- the API pipeline -------------------------------------------------------------------------
    def _api(self, route: ApiRoute | None) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.api(request, route)

        return endpoint

    async def api(self, request: Request, route: ApiRoute | None) -> Response:
        engine = self.engine
        clock = engine.clock
        rec = engine.ledger.new_request(clock.wall(clock.mono()), request.method, request.url.path)
        try:
            body_bytes = await request_body(request, MAX_BODY_BYTES)
        except BodyTooLarge as err:
            rec.status = 413
            return _response(Resp(413, problems.too_large(err.limit)), _CLOSE)
        try:
            resp, drop = await self._pipeline(request, route, body_bytes, rec)
        except Exception:
            # Vonage answers a failure with a problem body, never a bare text/plain 500.
            log.exception("request failed", path=request.url.path)
            resp, drop = Resp(500, problems.server_error(500)), False
        rec.status = resp.status
        rec.dropped = drop
        if drop:
            return _DroppedConnection(resp.status)
        return _response(resp)

    async def _pipeline(
        self,
        request: Request,
        route: ApiRoute | None,
        body_bytes: bytes,
        rec: RequestRecord,
    ) -> tuple[Resp, bool]:
        engine = self.engine
        method, path = request.method, request.url.path
        if route is None:
            return Resp(404, problems.not_found(path)), False
        op = route.ops.get(method)
        if op is None:
            rec.op = None
            return Resp(405, problems.wrong_verb(method)), False
        rec.op = op
        auth_kind = route.auth
        params = {k: str(v) for k, v in request.path_params.items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
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
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        ctx = Ctx(
            engine=engine,
            legs=self.legs,
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
    async def ledger(self, request: Request) -> Response:
        query = dict(parse_qsl(request.url.query))

        def flag(name: str, default: bool = True) -> bool:
            v = query.get(name)
            return default if v is None else v.lower() not in ("0", "false", "no")

        snap = self.engine.snapshot(
            live_calls=self.legs.live,
            since=_int(query.get("since")),
            include_requests=flag("requests"),
            include_calls=flag("calls"),
            include_webhooks=flag("webhooks"),
            call_ref=query.get("call_ref"),
            calls_since=_int(query.get("calls_since")),
            include_conversations=flag("conversations"),
        )
        return _response(Resp(200, snap))

    async def inbound(self, request: Request) -> Response:
        try:
            body = await request_body(request, MAX_BODY_BYTES)
        except BodyTooLarge as err:
            return _response(Resp(413, problems.too_large(err.limit)), _CLOSE)
        return _response(self._inbound(body))

    async def reset(self, request: Request) -> Response:
        self.legs.cancel_all()
        self.engine.reset()
        return _response(Resp(200, {"reset": True}))

    async def health(self, request: Request) -> Response:
        engine = self.engine
        return _response(
            Resp(200, {"ok": True, "live_calls": self.legs.live, "calls": len(engine.calls)})
        )

    async def unknown_control(self, request: Request) -> Response:
        return _response(Resp(404, problems.not_found(request.url.path)))

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
            call = self.legs.start_inbound(
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


def _response(resp: Resp, headers: dict[str, str] | None = None) -> Response:
    """A handler's :class:`Resp` as a Starlette response (JSON bodies through orjson)."""
    extra = {k.decode("latin-1"): v.decode("latin-1") for k, v in resp.headers}
    if headers:
        extra.update(headers)
    if resp.status == 204 or resp.body is None:
        return Response(status_code=resp.status, headers=extra or None)
    if isinstance(resp.body, bytes | bytearray):
        return Response(bytes(resp.body), resp.status, extra or None, resp.content_type)
    try:
        payload = orjson.dumps(resp.body)
    except orjson.JSONEncodeError:  # a value orjson cannot write (an int >= 2**64)
        log.exception("response not serialisable", status=resp.status)
        return Response(orjson.dumps(problems.server_error(500)), 500, None, "application/json")
    return Response(payload, resp.status, extra or None, "application/json")


def create_app(engine: SimEngine, legs: Legs) -> Starlette:
    """The simulator's ASGI application (its lifespan starts and stops the webhook poster)."""
    front = SimulatorFront(engine, legs)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await engine.poster.start()
        try:
            yield
        finally:
            legs.cancel_all()
            await engine.close()

    app = Starlette(routes=front.routes(), lifespan=lifespan)
    app.add_middleware(_NoTrailingSlash)
    return app
