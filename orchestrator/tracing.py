"""Traces: one per call, across every role, carried in the records' ``traceparent`` header.

Why one trace per call, with an id derived from the call's flow key: a call is not one request.
Its records come from many webhooks, commands, results and timers (the outcome is made by a
timer, when the call has been quiet), with no request to hang a trace on. Deriving the trace id
from the flow key (the ``call_ref`` or the conversation uuid) lets every role find the call's
trace without carrying state, so the webhook, the worker's transitions, the dispatcher's Voice
API request and the outcome all share one trace id; a campaign contact's dial command is keyed
by the same call reference, so its trace runs from the dial command to the final result. The
derived root span stands for the call itself and is never emitted: each hop's span is its child
(or the child of the hop before, read from the record's ``traceparent``).

Exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-only variant) is
set, with the standard ``OTEL_*`` variables for the rest. When it is not, no span objects exist
at all: the ``traceparent`` header is passed on (or derived) as a string, so tracing off costs a
dictionary lookup and a hash per record.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind

from orchestrator.kafka.headers import traceparent_of, valid_traceparent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "ENDPOINT_ENV",
    "Tracing",
    "call_traceparent",
    "record_trace",
    "tracing_for",
    "use_exporter",
]

ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_SERVICE_PREFIX = "voice-orchestrator"

_provider: TracerProvider | None = None
_configured = False


def call_traceparent(flow_key: str) -> str:
    """The call's own trace context: derived from its flow key, the same in every role."""
    digest = hashlib.sha256(b"voice-call\0" + flow_key.encode()).hexdigest()
    trace_id, span_id = digest[:32], digest[32:48]
    if trace_id == "0" * 32:  # pragma: no cover - 2**-128
        trace_id = "1" * 32
    if span_id == "0" * 16:  # pragma: no cover - 2**-64
        span_id = "1" * 16
    return f"00-{trace_id}-{span_id}-01"


def record_trace(headers: Sequence[tuple[str, bytes]] | None, flow_key: str) -> str:
    """The trace a record belongs to: its own ``traceparent`` header, else (a record written
    before headers, or by a service that sends none) its call's."""
    return traceparent_of(headers) or call_traceparent(flow_key)


def _endpoint_set(env: Mapping[str, str]) -> bool:
    return any(env.get(name, "").strip() for name in ENDPOINT_ENV)


def _make_provider(service: str, exporter: SpanExporter | None) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter is not None:  # tests: every span as it ends
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def use_exporter(exporter: SpanExporter | None) -> None:
    """Send this process's spans to ``exporter`` (tests: an in-memory one); None: tracing off.

    Roles set up after this call use it, whatever the environment says.
    """
    global _provider, _configured
    _provider = _make_provider(_SERVICE_PREFIX, exporter) if exporter is not None else None
    _configured = True


def tracing_for(role: str) -> Tracing:
    """The role's tracing: on when an OTLP endpoint is configured (or a test installed an
    exporter), else off. One provider per process (``orchestrator run`` hosts every role)."""
    global _provider, _configured
    if not _configured:
        _configured = True
        if _endpoint_set(os.environ):
            _provider = _make_provider(f"{_SERVICE_PREFIX}-{role}", None)
    return Tracing(role, _provider)


class Tracing:
    """Spans of one role; each yields the ``traceparent`` for the records written inside it."""

    __slots__ = ("_propagator", "_tracer", "enabled", "role")

    def __init__(self, role: str, provider: TracerProvider | None) -> None:
        self.role = role
        self.enabled = provider is not None
        self._tracer: Any = None
        self._propagator: Any = None
        if provider is not None:
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            self._tracer = provider.get_tracer(f"orchestrator.{role}")
            self._propagator = TraceContextTextMapPropagator()

    @contextmanager
    def span(
        self,
        name: str,
        parent: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, str | int | float | bool] | None = None,
    ) -> Iterator[str]:
        """A span under ``parent`` (a traceparent); yields the traceparent its children get.

        Off: yields ``parent`` unchanged (the record passes its context on as it came).
        """
        if not self.enabled:
            yield parent
            return
        ctx = self._propagator.extract({"traceparent": parent})
        with self._tracer.start_as_current_span(
            name,
            context=ctx,
            kind=kind,
            attributes={"voice.role": self.role, **(attributes or {})},
        ) as span:
            sc = span.get_span_context()
            child = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"
            yield child if valid_traceparent(child) else parent
