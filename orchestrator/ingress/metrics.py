"""Prometheus metrics of the ingress, in a registry of its own (served on ``/metrics``).

One registry per app instance, so tests can build many apps in one process without name clashes.
Endpoint labels are the route *kind* (``answer``, ``event``, ``control.commands`` ...), never the
raw path, which carries per-call ids and would explode the label cardinality.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from orchestrator.ingress.signature import REASONS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngressMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "orchestrator_ingress_requests_total",
            "HTTP requests by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "orchestrator_ingress_request_seconds",
            "Time from request start to response, by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.signature_failures = Counter(
            "orchestrator_ingress_signature_failures_total",
            "Webhooks refused because of their signature, by reason.",
            ["reason"],
            registry=r,
        )
        for reason in REASONS:
            self.signature_failures.labels(reason=reason)
        self.rejected = Counter(
            "orchestrator_ingress_rejected_total",
            "Webhook bodies refused before storing (400/413/422), by reason.",
            ["endpoint", "reason"],
            registry=r,
        )
        self.unsigned = Counter(
            "orchestrator_ingress_unsigned_accepted_total",
            "Unsigned webhooks accepted because --allow-unsigned is on.",
            registry=r,
        )
        self.produce_seconds = Histogram(
            "orchestrator_ingress_produce_seconds",
            "Time until the broker acknowledged a record (acks=all), by outcome.",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stored = Counter(
            "orchestrator_ingress_events_stored_total",
            "Webhook events stored on voice.events, by webhook kind.",
            ["webhook"],
            registry=r,
        )
        self.flow_errors = Counter(
            "orchestrator_ingress_flow_errors_total",
            "NCCO renders that fell back (unknown flow or step, render error), by reason.",
            ["reason"],
            registry=r,
        )
        self.commands = Counter(
            "orchestrator_ingress_commands_total",
            "Commands accepted by the control API, by kind.",
            ["kind"],
            registry=r,
        )
        self.state_flows = Gauge(
            "orchestrator_ingress_state_flows",
            "Flows held by the voice.state read model of the control API.",
            registry=r,
        )
