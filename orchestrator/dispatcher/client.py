"""Commands to HTTP: the request each command kind maps to, and one pooled client that sends it.

:func:`build_request` is pure: it checks the command's ``body`` against the Voice/Application API
request models in ``contracts`` (so a malformed command fails here, with a reason, instead of
spending rate budget on a certain 400) and returns method, path, JSON and which credential to use.

Command bodies, by kind (the wire body of the API operation, as Vonage documents it):

=====================  ===========================================  ==========================
kind                   request                                      body
=====================  ===========================================  ==========================
create_call            ``POST /v1/calls``                           ``CreateCallRequest``
transfer               ``PUT /v1/calls/{uuid}``                     ``{"destination": {...}}``
hangup, (un)mute,      ``PUT /v1/calls/{uuid}``                     empty (``action`` is added)
(un)earmuff
talk_start / _stop     ``PUT`` / ``DELETE /v1/calls/{uuid}/talk``   ``StartTalkRequest`` / -
stream_start / _stop   ``PUT`` / ``DELETE /v1/calls/{uuid}/stream`` ``StartStreamRequest`` / -
dtmf                   ``PUT /v1/calls/{uuid}/dtmf``                ``{"digits": "..."}``
dtmf_(un)subscribe     ``PUT`` / ``DELETE /v1/calls/{uuid}/input/   ``{"event_url": [...]}``
                       dtmf``
get_call               ``GET /v1/calls/{uuid}``                     -
list_calls             ``GET /v1/calls``                            ``ListCallsQuery`` (query)
application_create     ``POST /v2/applications`` (Basic)            ``ApplicationCreateRequest``
application_get /      ``GET`` / ``DELETE /v2/applications/{id}``   ``{"id": ...}``
_delete
application_update     ``PUT /v2/applications/{id}``                full body incl. ``id``
application_list       ``GET /v2/applications``                     ``{page, page_size}``
=====================  ===========================================  ==========================

Call-scoped requests go to the call's ``region_url`` when the command carries one (a call lives in
one region; elsewhere it is a 404). A ``region_url`` is only trusted when its host is a Vonage host
(``*.nexmo.com``, ``*.vonage.com``) or the configured API host: a command must not be able to send
our JWT anywhere else. With ``region_routing="fallback"`` the first attempt goes to the API host
and a 404 is retried at the ``region_url`` (for egress set-ups that only allow the main host).

Transport failures are sorted by whether the request can have reached the server: a refused or
timed-out *connect* (or no free pooled connection) sent nothing; a read timeout or a connection
dropped after writing may have been processed (see ``retry``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from contracts._base import format_validation_error
from contracts.application_api import (
    ApplicationCreateRequest,
    ApplicationListQuery,
    ApplicationUpdateRequest,
)
from contracts.envelopes import CommandEnvelope, CommandKind
from contracts.voice_api import (
    CreateCallRequest,
    DtmfRequest,
    DtmfSubscribeRequest,
    ListCallsQuery,
    StartStreamRequest,
    StartTalkRequest,
    UpdateCallRequest,
)
from orchestrator.dispatcher.auth import JwtMinter
from orchestrator.dispatcher.retry import CALL_SCOPED_KINDS, Transport

AuthKind = Literal["jwt", "basic"]
RegionRouting = Literal["direct", "fallback"]

#: Explicit timeouts (seconds): Vonage answers in well under a second; a stuck read must not hold a
#: command (or, for a create, leave it ambiguous) for long.
DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=5.0)
#: httpcore's pool scans every connection on each request event, so its cost grows with the pool:
#: 64 covers 200 requests/s at 300 ms each (Vonage's create latency) and keeps the scan cheap.
#: (``sniffio`` is a dependency for the same reason: without it httpcore retries a failed import
#: on every request.)
DEFAULT_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30)
_MAX_ERROR_BODY = 4096


class InvalidCommand(ValueError):
    """The command cannot become a valid request (missing target, body against the schema)."""


@dataclass(frozen=True, slots=True)
class ApiRequest:
    method: str
    path: str
    auth: AuthKind = "jwt"
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    #: Addressed to one call, so region routing applies.
    call_scoped: bool = False


_UPDATE_ACTIONS = {
    CommandKind.TRANSFER: "transfer",
    CommandKind.HANGUP: "hangup",
    CommandKind.MUTE: "mute",
    CommandKind.UNMUTE: "unmute",
    CommandKind.EARMUFF: "earmuff",
    CommandKind.UNEARMUFF: "unearmuff",
}


def _validated(model: type[BaseModel], body: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        obj = model.model_validate(body)
    except ValidationError as err:
        raise InvalidCommand(f"{what}: {format_validation_error(err.errors())}") from None
    out: dict[str, Any] = obj.to_json_dict()  # type: ignore[attr-defined]
    return out


def _params(model: type[BaseModel], body: dict[str, Any], what: str) -> dict[str, str]:
    try:
        obj = model.model_validate(body)
    except ValidationError as err:
        raise InvalidCommand(f"{what}: {format_validation_error(err.errors())}") from None
    out: dict[str, str] = obj.to_params()  # type: ignore[attr-defined]
    return out


def build_request(cmd: CommandEnvelope) -> ApiRequest:
    """The HTTP request a command stands for. Raises :class:`InvalidCommand`."""
    kind = CommandKind(cmd.kind)
    body = dict(cmd.body)
    call = f"/v1/calls/{cmd.call_uuid}"
    if kind in CALL_SCOPED_KINDS and (not cmd.call_uuid or "/" in cmd.call_uuid):
        raise InvalidCommand(f"{kind.value}: call_uuid is required")
    if kind == CommandKind.CREATE_CALL:
        return ApiRequest("POST", "/v1/calls", json=_validated(CreateCallRequest, body, "body"))
    if kind in _UPDATE_ACTIONS:
        body.setdefault("action", _UPDATE_ACTIONS[kind])
        if body["action"] != _UPDATE_ACTIONS[kind]:
            raise InvalidCommand(f"{kind.value}: body.action must be {_UPDATE_ACTIONS[kind]!r}")
        payload = _validated(UpdateCallRequest, body, "body")
        return ApiRequest("PUT", call, json=payload, call_scoped=True)
    simple: dict[CommandKind, tuple[str, str, type[BaseModel] | None]] = {
        CommandKind.TALK_START: ("PUT", "/talk", StartTalkRequest),
        CommandKind.TALK_STOP: ("DELETE", "/talk", None),
        CommandKind.STREAM_START: ("PUT", "/stream", StartStreamRequest),
        CommandKind.STREAM_STOP: ("DELETE", "/stream", None),
        CommandKind.DTMF: ("PUT", "/dtmf", DtmfRequest),
        CommandKind.DTMF_SUBSCRIBE: ("PUT", "/input/dtmf", DtmfSubscribeRequest),
        CommandKind.DTMF_UNSUBSCRIBE: ("DELETE", "/input/dtmf", None),
        CommandKind.GET_CALL: ("GET", "", None),
    }
    if kind in simple:
        method, suffix, model = simple[kind]
        data = _validated(model, body, "body") if model is not None else None
        return ApiRequest(method, call + suffix, json=data, call_scoped=True)
    if kind == CommandKind.LIST_CALLS:
        return ApiRequest("GET", "/v1/calls", params=_params(ListCallsQuery, body, "body"))
    if kind == CommandKind.APPLICATION_LIST:
        params = _params(ApplicationListQuery, body, "body")
        return ApiRequest("GET", "/v2/applications", auth="basic", params=params)
    if kind == CommandKind.APPLICATION_CREATE:
        payload = _validated(ApplicationCreateRequest, body, "body")
        return ApiRequest("POST", "/v2/applications", auth="basic", json=payload)
    app_id = body.get("id") or body.get("application_id")
    if not isinstance(app_id, str) or not app_id or "/" in app_id:
        raise InvalidCommand(f"{kind.value}: body.id (the application id) is required")
    path = f"/v2/applications/{app_id}"
    if kind == CommandKind.APPLICATION_GET:
        return ApiRequest("GET", path, auth="basic")
    if kind == CommandKind.APPLICATION_DELETE:
        return ApiRequest("DELETE", path, auth="basic")
    if kind == CommandKind.APPLICATION_UPDATE:
        body.pop("application_id", None)
        payload = _validated(ApplicationUpdateRequest, body, "body")
        return ApiRequest("PUT", path, auth="basic", json=payload)
    raise InvalidCommand(f"unsupported command kind {kind.value!r}")


@dataclass(frozen=True, slots=True)
class HttpOutcome:
    """What one attempt produced: a response, or how the transport failed."""

    base: str
    status: int | None = None
    body: Any = None
    retry_after: float | None = None
    transport: Transport | None = None
    error: str | None = None
    elapsed: float = 0.0
    #: Monotonic times (``time.monotonic``, the event loop's clock) at which the request's first
    #: byte went out and the response headers came back: the exchange itself, without connection
    #: set-up or pool waits. The limiter holds slots and learns the minimum round trip from them.
    sent_at: float | None = None
    answered_at: float | None = None

    @property
    def exchange(self) -> float | None:
        if self.sent_at is None or self.answered_at is None:
            return None
        return max(0.0, self.answered_at - self.sent_at)

    #: The JWT used (to refresh exactly that one after a 401).
    token: str | None = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); ``None`` when absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ref = now if now is not None else time.time()
    return max(0.0, when.timestamp() - ref)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class VonageClient:
    """One pooled ``httpx.AsyncClient`` for every request this process sends to Vonage."""

    def __init__(
        self,
        api_base: str,
        *,
        jwt: JwtMinter | None,
        basic: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        region_routing: RegionRouting = "direct",
        http: httpx.AsyncClient | None = None,
        user_agent: str = "voice-orchestrator-dispatcher",
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self._jwt = jwt
        self._basic = basic
        self.region_routing: RegionRouting = region_routing
        self._http = http or httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- routing ---------------------------------------------------------------------------

    def trusted_region(self, region_url: str | None) -> str | None:
        """``region_url`` if we may send credentials there, else ``None``."""
        if not region_url:
            return None
        parts = urlsplit(region_url)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and (
            host.endswith(".nexmo.com") or host.endswith(".vonage.com")
        ):
            return f"{parts.scheme}://{parts.netloc}"
        if host and host == _host(self.api_base) and parts.scheme in ("http", "https"):
            return f"{parts.scheme}://{parts.netloc}"
        return None

    def first_base(self, req: ApiRequest, region_url: str | None) -> str:
        region = self.trusted_region(region_url) if req.call_scoped else None
        if region is not None and self.region_routing == "direct":
            return region
        return self.api_base

    # --- sending ---------------------------------------------------------------------------

    def _auth_header(self, req: ApiRequest) -> tuple[str, str | None]:
        if req.auth == "basic":
            if self._basic is None:
                raise InvalidCommand("Application API needs VONAGE_API_KEY and VONAGE_API_SECRET")
            return self._basic, None
        if self._jwt is None:
            raise InvalidCommand("Voice API needs VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY")
        token = self._jwt.token()
        return f"Bearer {token}", token

    def refresh_jwt(self, stale: str | None) -> None:
        if self._jwt is not None:
            self._jwt.refresh(stale)

    async def send(self, req: ApiRequest, base: str) -> HttpOutcome:
        auth, token = self._auth_header(req)
        headers = {"Authorization": auth}
        content: bytes | None = None
        if req.json is not None:
            content = orjson.dumps(req.json)
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        marks: dict[str, float] = {}

        async def trace(event: str, _: Any) -> None:
            if event.endswith(".send_request_headers.started"):
                marks["sent"] = time.monotonic()
            elif event.endswith(".receive_response_headers.complete"):
                marks["answered"] = time.monotonic()

        try:
            resp = await self._http.request(
                req.method,
                base + req.path,
                content=content,
                params=req.params,
                headers=headers,
                extensions={"trace": trace},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            return HttpOutcome(
                base,
                transport=Transport.NOT_SENT,
                error=f"{type(err).__name__}: {err}",
                elapsed=time.perf_counter() - started,
                token=token,
            )
        except httpx.TransportError as err:
            return HttpOutcome(
                base,
                transport=Transport.MAYBE_SENT,
                error=f"{type(err).__name__}: {err}",
                elapsed=time.perf_counter() - started,
                sent_at=marks.get("sent"),
                token=token,
            )
        return HttpOutcome(
            base,
            status=resp.status_code,
            body=_body(resp),
            retry_after=parse_retry_after(resp.headers.get("retry-after")),
            elapsed=time.perf_counter() - started,
            sent_at=marks.get("sent"),
            answered_at=marks.get("answered"),
            token=token,
        )


def _body(resp: httpx.Response) -> Any:
    if not resp.content:
        return None
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        text = resp.text
        return text[:_MAX_ERROR_BODY]
