"""The dispatcher's Prometheus metrics, on a registry of its own (served on its /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class DispatcherMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "orchestrator_dispatcher_requests",
            "HTTP requests sent to Vonage, by command kind and response status "
            "(or 'not_sent' / 'maybe_sent' for transport failures).",
            ["kind", "status"],
            registry=r,
        )
        self.throttled = Counter(
            "orchestrator_dispatcher_429",
            "429 responses received, by budget (cps/rps/app).",
            ["budget"],
            registry=r,
        )
        self.retries = Counter(
            "orchestrator_dispatcher_retries",
            "Attempts repeated, by command kind and reason.",
            ["kind", "reason"],
            registry=r,
        )
        self.results = Counter(
            "orchestrator_dispatcher_results",
            "Command results produced, by kind and status.",
            ["kind", "status"],
            registry=r,
        )
        self.dead_letters = Counter(
            "orchestrator_dispatcher_dead_letters",
            "Commands sent to voice.dlq, by reason.",
            ["reason"],
            registry=r,
        )
        self.rate = Gauge(
            "orchestrator_dispatcher_rate_limit",
            "Configured requests per rolling second for this replica (its share), by budget.",
            ["account", "budget"],
            registry=r,
        )
        self.ceiling = Gauge(
            "orchestrator_dispatcher_rate_ceiling",
            "Current AIMD ceiling (requests per second), by budget.",
            ["account", "budget"],
            registry=r,
        )
        self.sent_rate = Gauge(
            "orchestrator_dispatcher_rate_current",
            "Requests admitted in the last rolling second, by budget.",
            ["account", "budget"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "orchestrator_dispatcher_queue_depth",
            "Commands accepted from Kafka and not finished (queued, waiting, in flight).",
            registry=r,
        )
        self.limiter_waiting = Gauge(
            "orchestrator_dispatcher_limiter_waiting",
            "Requests waiting for a rate-limit slot, by budget.",
            ["account", "budget"],
            registry=r,
        )
        self.expired = Counter(
            "orchestrator_dispatcher_expired_commands",
            "Commands older than the maximum command age: answered 'expired', never sent.",
            registry=r,
        )
        self.send_window_missed = Counter(
            "orchestrator_dispatcher_send_window_missed",
            "Creates not sent because more than the send window passed after their ledger "
            "entry (a pause: GC, SIGSTOP, a partitioned network).",
            registry=r,
        )
        self.fenced = Counter(
            "orchestrator_dispatcher_fenced_partitions",
            "Command partitions given up because another replica fenced this one.",
            registry=r,
        )
        self.unresolved = Gauge(
            "orchestrator_dispatcher_unresolved_dials",
            "Create-call attempts whose outcome is unknown and being resolved.",
            registry=r,
        )
        self.latency = Histogram(
            "orchestrator_dispatcher_request_seconds",
            "Time from taking a command to its final result (queue, limiter, retries, HTTP).",
            ["kind"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180),
            registry=r,
        )
        self.ledger_latency = Histogram(
            "orchestrator_dispatcher_ledger_write_seconds",
            "Time to make a dial-ledger record durable (acks=all) before a create is sent.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.admission_to_send = Histogram(
            "orchestrator_dispatcher_admission_to_send_seconds",
            "Time a rate-limit slot is held before its request goes out (ledger write).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.http_latency = Histogram(
            "orchestrator_dispatcher_http_seconds",
            "Duration of single HTTP requests to Vonage.",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
