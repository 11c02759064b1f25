"""The webhook endpoint: verify, validate, render the NCCO, store durably, then answer.

Order of work for one request, and why:

1. size limit (413) before reading more than the limit;
2. signature (401) before parsing, so an unauthenticated sender learns nothing about our parser;
3. parse and classify with ``contracts.webhooks`` (400 for bytes that are not a JSON object, 422
   for a payload that is not a Vonage webhook): nothing invalid reaches the topic;
4. render the NCCO (pure, microseconds) for answer/fallback/input/notify and synchronous-connect
   events, so a render problem is known before anything is stored;
5. produce the envelope to ``voice.events`` (key = flow key) and wait for the broker's ack; on
   failure or past the deadline: 503, which Vonage retries (and answer falls back);
6. answer: the NCCO (200, JSON) or 204 (stored; nothing for Vonage to run).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import Response

from contracts.bounded import TooDeep, load_json
from contracts.call_refs import is_call_ref
from contracts.envelopes import EventEnvelope, FlowMark, WebhookKind
from contracts.flow import Flow, FlowSet
from contracts.webhooks import WebhookValidationError, classify_webhook
from handlers.flow import (
    START_STEP,
    FlowRenderError,
    Rendered,
    decode_ctx,
    render_answer,
    render_event,
    render_fallback,
    render_input,
    render_notify,
)
from orchestrator.clock import utc_now
from orchestrator.ingress.metrics import IngressMetrics
from orchestrator.ingress.publish import Publisher, PublishError, RecordTooLarge
from orchestrator.ingress.signature import SignatureError, SignatureVerifier
from orchestrator.kafka.headers import record_headers
from orchestrator.logs import get_logger
from orchestrator.tracing import call_traceparent, tracing_for
from orchestrator.web.body import BodyTooLarge, request_body
from orchestrator.web.responses import problem, too_large

log = get_logger("ingress.webhooks")

KINDS = frozenset(k.value for k in WebhookKind)
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CTX = re.compile(r"^[A-Za-z0-9_-]{1,2048}$")

#: Said when no NCCO can be rendered (no flow configured, or a broken flow): the call ends politely.
APOLOGY_NCCO: list[dict[str, Any]] = [
    {"action": "talk", "text": "Sorry, this call cannot be completed right now. Goodbye."}
]
_APOLOGY_BYTES = orjson.dumps(APOLOGY_NCCO)


@dataclass
class WebhookSettings:
    public_base: str
    events_topic: str
    max_body_bytes: int = 64 * 1024
    allow_unsigned: bool = False
    #: MAC keys of the ctx URL segment (``handlers.flow_ctx``); the first one signs
    ctx_keys: tuple[bytes, ...] = ()


class WebhookEndpoint:
    """One callable for every ``/webhooks/...`` route (the kind and ids come from the path)."""

    def __init__(
        self,
        cfg: WebhookSettings,
        *,
        flows: FlowSet,
        publisher: Publisher,
        verifier: SignatureVerifier | None,
        metrics: IngressMetrics,
    ) -> None:
        self.cfg = cfg
        self.flows = flows
        self.publisher = publisher
        self.verifier = verifier
        self.metrics = metrics
        self.tracing = tracing_for("ingress")

    async def endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        kind = request.path_params.get("kind", "")
        label = kind if kind in KINDS else "unknown"
        response = await self._handle(request, kind)
        self.metrics.requests.labels(label, request.method, str(response.status_code)).inc()
        self.metrics.request_seconds.labels(label).observe(time.perf_counter() - started)
        return response

    def _reject(self, kind: str, status: int, reason_label: str, reason: str) -> Response:
        self.metrics.rejected.labels(kind, reason_label).inc()
        return problem(status, "invalid webhook" if status != 413 else "too large", reason)

    async def _handle(self, request: Request, kind: str) -> Response:
        if kind not in KINDS:
            return problem(404, "not found", f"unknown webhook kind {kind[:20]!r}")
        if request.method not in ("GET", "POST"):  # HEAD: Starlette adds it to GET routes
            return problem(405, "method not allowed", "webhooks take GET or POST")
        params = request.path_params
        call_ref: str | None = params.get("call_ref")
        if call_ref is not None and not is_call_ref(call_ref):
            return self._reject(kind, 400, "call_ref", "call_ref: not [A-Za-z0-9._~-]{1,128}")
        flow_name: str | None = params.get("flow")
        step: str | None = params.get("step")
        ctx: str | None = params.get("ctx")
        for value in (flow_name, step):
            if value is not None and not _SEGMENT.fullmatch(value):
                return self._reject(kind, 400, "path", "flow/step: not [A-Za-z0-9_-]{1,64}")
        if ctx is not None and not _CTX.fullmatch(ctx):
            return self._reject(kind, 400, "path", "ctx: not base64url")

        # 1. size
        try:
            body = (
                await request_body(request, self.cfg.max_body_bytes)
                if request.method == "POST"
                else b""
            )
        except BodyTooLarge as err:
            self.metrics.rejected.labels(kind, "too_large").inc()
            # The connection closes: draining the rest of a huge body helps nobody.
            return too_large(str(err))
        query = request.scope.get("query_string", b"")
        from_query = not body
        if from_query and len(query) > self.cfg.max_body_bytes:
            return self._reject(kind, 413, "too_large", "query string too long")
        signed_bytes = query if from_query else body

        # 2. signature
        claims = None
        auth = request.headers.get("authorization")
        if self.verifier is not None and (auth or not self.cfg.allow_unsigned):
            try:
                claims = self.verifier.verify(auth, signed_bytes, is_get=from_query)
            except SignatureError as err:
                self.metrics.signature_failures.labels(err.reason).inc()
                log.info("webhook refused", webhook=kind, reason=err.reason)
                status = 503 if err.reason == "in_flight" else 401
                headers = {"Retry-After": "1"} if status == 503 else {"WWW-Authenticate": "Bearer"}
                return problem(
                    status, "unauthorized" if status == 401 else "busy", str(err), headers=headers
                )
        else:
            self.metrics.unsigned.inc()
            log.warning(
                "UNSIGNED webhook accepted (--allow-unsigned; never in production)", webhook=kind
            )

        stored = False
        try:
            response, stored = await self._process(
                kind, body if not from_query else query, from_query, call_ref, flow_name, step, ctx
            )
            return response
        finally:
            if claims is not None and self.verifier is not None:
                self.verifier.settle(claims, stored=stored)

    async def _process(
        self,
        kind: str,
        raw: bytes,
        from_query: bool,
        call_ref: str | None,
        flow_name: str | None,
        step: str | None,
        ctx: str | None,
    ) -> tuple[Response, bool]:
        # 3. parse and classify
        payload: Any
        if from_query:
            try:
                payload = dict(
                    parse_qsl(
                        raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=256
                    )
                )
            except ValueError:
                return self._reject(kind, 400, "query", "query: too many fields"), False
            if not payload:
                return self._reject(kind, 400, "empty", "no payload (empty body and query)"), False
        else:
            try:
                payload = load_json(raw)
            except orjson.JSONDecodeError as err:
                return self._reject(kind, 400, "json", f"body: not valid JSON ({err.msg})"), False
            except TooDeep as err:
                return self._reject(kind, 400, "json", f"body: {err}"), False
            if not isinstance(payload, dict):
                return self._reject(
                    kind,
                    400,
                    "not_object",
                    f"body: must be a JSON object, not {type(payload).__name__}",
                ), False
        try:
            model = classify_webhook(payload, kind)
        except WebhookValidationError as err:
            return self._reject(kind, 422, "schema", err.reason[:300]), False
        flow_key = call_ref or model.conversation_uuid
        if not flow_key:
            return self._reject(
                kind, 422, "no_flow_key", "conversation_uuid: missing (no call_ref in the path)"
            ), False

        with self.tracing.span(
            f"webhook {kind}",
            call_traceparent(flow_key),
            kind=SpanKind.SERVER,
            attributes={"voice.flow_key": flow_key, "voice.webhook": kind},
        ) as traceparent:
            # 4. the NCCO, before anything is stored
            rendered = self._render(kind, payload, call_ref or flow_key, flow_name, step, ctx)
            mark = self._mark(kind, step, rendered)

            # 5. store
            now = utc_now()
            try:
                envelope = EventEnvelope(
                    id=EventEnvelope.make_id(kind, flow_key, raw),
                    occurred_at=model.timestamp or now,
                    flow_key=flow_key,
                    webhook=WebhookKind(kind),
                    call_ref=call_ref,
                    event_type=model.event_type,
                    received_at=now,
                    payload=payload,
                    flow=mark,
                )
                value = envelope.to_bytes()
            except (ValueError, TypeError) as err:  # e.g. a value orjson cannot serialise
                return self._reject(kind, 422, "envelope", f"payload: {type(err).__name__}"), False
            try:
                await self.publisher.publish(
                    self.cfg.events_topic,
                    flow_key.encode(),
                    value,
                    headers=record_headers("EventEnvelope", envelope.schema_version, traceparent),
                )
            except RecordTooLarge as err:
                return self._reject(kind, 413, "record_too_large", err.reason), False
            except PublishError as err:
                log.warning("webhook not stored; answering 503", webhook=kind, reason=err.reason)
                return problem(503, "unavailable", err.reason, headers={"Retry-After": "1"}), False
        self.metrics.stored.labels(kind).inc()

        # 6. answer
        if rendered is None:
            return Response(status_code=204), True
        if rendered.ncco is None:
            return Response(status_code=204), True
        return Response(orjson.dumps(rendered.ncco), 200, media_type="application/json"), True

    # ------------------------------------------------------------------------------------------

    def _mark(self, kind: str, step: str | None, rendered: Rendered | None) -> FlowMark | None:
        """An input's place in its flow, for the leg's captures (the worker reads no flows)."""
        if kind != "input" or step is None or rendered is None:
            return None
        flow = self.flows.get(rendered.flow)
        spec = flow.steps[step].input if flow is not None and step in flow.steps else None
        if flow is None or spec is None:
            return None
        took = rendered.reason in ("branch", "default") or rendered.reason.endswith("-exhausted")
        return FlowMark(
            flow=flow.name,
            step=step,
            capture=spec.capture or step,
            goto=rendered.step if took else None,
        )

    def _flow(self, name: str | None, to: Any) -> Flow | None:
        if name is not None and self.flows.get(name) is None:
            self.metrics.flow_errors.labels("unknown_flow").inc()
            log.error("webhook URL names an unknown flow; selecting by number/default", flow=name)
        return self.flows.select(name=name, to=to)

    def _render(
        self,
        kind: str,
        payload: dict[str, Any],
        call_ref: str,
        flow_name: str | None,
        step: str | None,
        ctx: str | None,
    ) -> Rendered | None:
        """The NCCO for an NCCO-expecting callback; None for plain notifications."""
        if kind == "recording" or (kind in ("event", "notify", "input") and flow_name is None):
            return None  # no flow context in the URL: Vonage continues with the current NCCO
        keys = self.cfg.ctx_keys
        try:
            attempt, variables = decode_ctx(ctx, keys)
        except FlowRenderError as err:
            self.metrics.flow_errors.labels("bad_ctx").inc()
            log.error("bad ctx segment in webhook URL; using defaults", error=str(err))
            attempt, variables = 0, {}
        if step == START_STEP:
            step = None  # a campaign's answer URL: the flow's start (the campaign has no flows)
        key = keys[0] if keys else None
        base = self.cfg.public_base
        flow = self._flow(flow_name, payload.get("to"))
        if flow is None:
            if kind == "event":
                return None
            self.metrics.flow_errors.labels("no_flow").inc()
            log.error(
                "no flow for this call (no --flows default?); answering an apology", webhook=kind
            )
            return Rendered(APOLOGY_NCCO, "", None, "no-flow")
        if step is not None and step not in flow.steps:
            self.metrics.flow_errors.labels("unknown_step").inc()
            log.error("webhook URL names an unknown step", flow=flow.name, step=step)
            step = None
        try:
            if kind == "answer":
                return render_answer(
                    flow,
                    base_url=base,
                    call_ref=call_ref,
                    payload=payload,
                    step=step,
                    variables=variables,
                    ctx_key=key,
                )
            if kind == "fallback":
                return render_fallback(
                    flow,
                    base_url=base,
                    call_ref=call_ref,
                    payload=payload,
                    variables=variables,
                    ctx_key=key,
                )
            if kind == "input":
                if step is None or flow.steps[step].input is None:
                    return Rendered(None, flow.name, None, "continue")
                return render_input(
                    flow,
                    step,
                    base_url=base,
                    call_ref=call_ref,
                    payload=payload,
                    variables=variables,
                    attempt=attempt,
                    ctx_key=key,
                )
            if kind == "notify":
                return render_notify(
                    flow,
                    step,
                    base_url=base,
                    call_ref=call_ref,
                    payload=payload,
                    variables=variables,
                    ctx_key=key,
                )
            return render_event(
                flow,
                step,
                base_url=base,
                call_ref=call_ref,
                payload=payload,
                variables=variables,
                ctx_key=key,
            )
        except FlowRenderError as err:
            self.metrics.flow_errors.labels("render").inc()
            log.error("flow render failed; answering an apology", flow=flow.name, error=str(err))
            if kind == "event":
                return None
            return Rendered(APOLOGY_NCCO, flow.name, step, "render-error")
