"""The control API: for services that do not speak Kafka (documented at ``/openapi.json``).

- ``POST /v1/commands`` puts one :class:`CommandEnvelope` on ``voice.commands`` (key from
  ``contracts.envelopes.command_key``: call-creating commands by account, the rest by flow key) and
  answers 202 once the broker acknowledged it. A client-supplied ``command_id`` makes the request
  idempotent: the same id always gives the same envelope id, which the dispatcher deduplicates.
- ``GET /v1/calls/{flow_key}`` returns the latest state the worker stored for a flow.

Both need ``Authorization: Bearer <CONTROL_API_TOKEN>``; without a configured token the API is off.
"""

from __future__ import annotations

import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from contracts._base import format_validation_error
from contracts.bounded import TooDeep, load_json
from contracts.call_refs import CALL_REF_PATTERN
from contracts.envelopes import (
    CALL_CREATING_KINDS,
    CALL_UPDATE_KINDS,
    CommandEnvelope,
    CommandKind,
    command_key,
    stable_id,
)
from contracts.flow import FlowSet
from handlers.flow import encode_ctx, initial_variables, webhook_url
from orchestrator.clock import utc_now
from orchestrator.ingress.metrics import IngressMetrics
from orchestrator.ingress.publish import Publisher, PublishError, RecordTooLarge
from orchestrator.ingress.state import StateView
from orchestrator.kafka.headers import record_headers
from orchestrator.logs import get_logger
from orchestrator.tracing import call_traceparent
from orchestrator.web.body import BodyTooLarge, request_body
from orchestrator.web.responses import json_response, problem, too_large

log = get_logger("ingress.control")

_ID = r"^[A-Za-z0-9._~:-]{1,128}$"
#: Commands that act on one live leg and so need its uuid.
_LEG_KINDS = CALL_UPDATE_KINDS | {CommandKind.GET_CALL}
MAX_COMMAND_BYTES = 256 * 1024


class CommandRequest(BaseModel):
    """A call command, as a service asks for it (the envelope is built by the API)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    kind: CommandKind
    command_id: str | None = Field(
        None, pattern=_ID, description="Idempotency key: the same key gives the same command."
    )
    call_ref: str | None = Field(
        None,
        pattern=CALL_REF_PATTERN,
        description="Our id of the call (create_call: generated if absent).",
    )
    flow_key: str | None = Field(None, max_length=200, description="Default: call_ref.")
    call_uuid: str | None = Field(None, max_length=200, description="Leg uuid (control commands).")
    region_url: str | None = Field(None, max_length=300)
    account: str | None = Field(None, max_length=100, description="Default: VONAGE_ACCOUNT.")
    body: dict[str, Any] = Field(default_factory=dict, description="The Voice API request body.")
    not_before: datetime | None = None
    flow: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="create_call: answer the call with this declarative flow.",
    )
    variables: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="create_call with flow: per-call variables."
    )


class CommandAccepted(BaseModel):
    command_id: str
    kind: str
    flow_key: str
    call_ref: str | None = None
    topic: str
    partition: int
    offset: int


class CallState(BaseModel):
    flow_key: str
    state: Any = Field(description="The worker's snapshot: {offset, state}.")
    partition: int
    offset: int
    updated_at: datetime | None = None


class ControlApi:
    def __init__(
        self,
        *,
        token: str | None,
        public_base: str,
        default_account: str,
        commands_topic: str,
        publisher: Publisher,
        flows: FlowSet,
        state: StateView | None,
        metrics: IngressMetrics,
        ctx_key: bytes | None = None,
    ) -> None:
        self.ctx_key = ctx_key
        self._token = token.encode() if token else None
        self.public_base = public_base
        self.default_account = default_account
        self.commands_topic = commands_topic
        self.publisher = publisher
        self.flows = flows
        self.state = state
        self.metrics = metrics

    def authorize(self, request: Request) -> Response | None:
        if self._token is None:
            return problem(403, "forbidden", "control API disabled: set CONTROL_API_TOKEN")
        scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self._token
        ):
            return problem(
                401,
                "unauthorized",
                "expected Authorization: Bearer <CONTROL_API_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None

    def count(
        self, endpoint: str, request: Request, response: Response, started: float
    ) -> Response:
        self.metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        self.metrics.request_seconds.labels(endpoint).observe(time.perf_counter() - started)
        return response

    # --- POST /v1/commands ----------------------------------------------------------------------

    async def post_command(self, request: Request) -> Response:
        started = time.perf_counter()
        return self.count("control.commands", request, await self._post_command(request), started)

    def build(self, req: CommandRequest, now: datetime) -> CommandEnvelope:
        """The envelope for a request; ValueError names what is missing."""
        kind = CommandKind(req.kind)
        body = dict(req.body)
        call_ref = req.call_ref
        if kind in CALL_CREATING_KINDS:
            call_ref = call_ref or f"api-{uuid.uuid4().hex}"
            body.setdefault("event_url", [webhook_url(self.public_base, "event", call_ref)])
            if req.flow is not None:
                flow = self.flows.get(req.flow)
                if flow is None:
                    raise ValueError(f"flow: no flow named {req.flow!r} is loaded")
                if "ncco" in body or "answer_url" in body:
                    raise ValueError("flow: give flow or body.ncco/body.answer_url, not both")
                values = initial_variables(flow, None, req.variables)
                ctx = encode_ctx(0, values, flow, self.ctx_key)
                body["answer_url"] = [
                    webhook_url(self.public_base, "answer", call_ref, flow.name, flow.start, ctx)
                ]
            elif "ncco" not in body and "answer_url" not in body:
                raise ValueError("body: needs ncco or answer_url (or give flow)")
            if not body.get("to"):
                raise ValueError("body.to: required for create_call")
        elif kind in _LEG_KINDS and not req.call_uuid:
            raise ValueError(f"call_uuid: required for {kind.value}")
        flow_key = req.flow_key or call_ref or req.call_uuid or f"api-{uuid.uuid4().hex}"
        command_id = (
            stable_id("cmd", "control-api", req.command_id)
            if req.command_id
            else f"cmd-{uuid.uuid4().hex}"
        )
        return CommandEnvelope(
            id=command_id,
            occurred_at=now,
            flow_key=flow_key,
            kind=kind,
            call_ref=call_ref,
            call_uuid=req.call_uuid,
            region_url=req.region_url,
            account=req.account or self.default_account,
            body=body,
            not_before=req.not_before,
            origin="control-api",
        )

    async def _post_command(self, request: Request) -> Response:
        denied = self.authorize(request)
        if denied is not None:
            return denied
        try:
            raw = await request_body(request, MAX_COMMAND_BYTES)
        except BodyTooLarge as err:
            return too_large(str(err))
        try:
            data = load_json(raw)
        except orjson.JSONDecodeError as err:
            return problem(400, "invalid command", f"body: not valid JSON ({err.msg})")
        except TooDeep as err:
            return problem(400, "invalid command", f"body: {err}")
        try:
            req = CommandRequest.model_validate(data)
            cmd = self.build(req, utc_now())
        except ValidationError as err:
            reason = format_validation_error(err.errors(include_url=False, include_input=False))
            return problem(422, "invalid command", reason)
        except ValueError as err:
            return problem(422, "invalid command", str(err))
        try:
            stored = await self.publisher.publish(
                self.commands_topic,
                command_key(cmd),
                cmd.to_bytes(),
                headers=record_headers(
                    "CommandEnvelope", cmd.schema_version, call_traceparent(cmd.flow_key)
                ),
            )
        except RecordTooLarge as err:
            return problem(413, "too large", err.reason)
        except PublishError as err:
            return problem(503, "unavailable", err.reason, headers={"Retry-After": "1"})
        self.metrics.commands.labels(cmd.kind).inc()
        log.info("command enqueued", kind=cmd.kind, command_id=cmd.id, flow_key=cmd.flow_key)
        accepted = CommandAccepted(
            command_id=cmd.id,
            kind=str(cmd.kind),
            flow_key=cmd.flow_key,
            call_ref=cmd.call_ref,
            topic=stored.topic,
            partition=stored.partition,
            offset=stored.offset,
        )
        return json_response(202, accepted.model_dump(mode="json", exclude_none=True))

    # --- GET /v1/calls/{flow_key} ---------------------------------------------------------------

    async def get_call(self, request: Request) -> Response:
        started = time.perf_counter()
        return self.count("control.calls", request, self._get_call(request), started)

    def _get_call(self, request: Request) -> Response:
        denied = self.authorize(request)
        if denied is not None:
            return denied
        flow_key = request.path_params["flow_key"]
        if self.state is None:
            return problem(503, "unavailable", "state read model not running")
        found = self.state.get(flow_key)
        if found is None:
            if not self.state.caught_up.is_set():
                return problem(
                    503,
                    "unavailable",
                    "state read model still loading",
                    headers={"Retry-After": "1"},
                )
            return problem(404, "not found", f"no state stored for flow {flow_key[:128]!r}")
        body = CallState(
            flow_key=found.flow_key,
            state=found.value,
            partition=found.partition,
            offset=found.offset,
            updated_at=(
                datetime.fromtimestamp(found.timestamp_ms / 1000, UTC)
                if found.timestamp_ms
                else None
            ),
        )
        return json_response(200, body.model_dump(mode="json", exclude_none=True))
