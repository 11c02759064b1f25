"""Prometheus metrics of the runtime (names prefixed ``orchestrator_runtime_``, label ``app``).

Counters are incremented once per batch, not per record, to keep the hot path cheap; rates
(events/s) come from ``rate()`` in Prometheus.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["RuntimeMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry, app: str) -> None:
        self.app = app
        p = "orchestrator_runtime_"
        self.events = Counter(
            p + "events",
            "Input records handled, by result (applied, skipped replay, dead-lettered).",
            ["app", "result"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            p + "batch_seconds",
            "Processing time of one fetched batch (decode, transition, route).",
            ["app"],
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.event_age = Histogram(
            p + "event_age_seconds",
            "Age of the newest record of a batch when processed (record timestamp to processing).",
            ["app"],
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.outputs = Counter(
            p + "outputs", "Records produced, by topic.", ["app", "topic"], registry=registry
        )
        self.dlq = Counter(
            p + "dlq",
            "Records sent to the dead-letter topic, by reason.",
            ["app", "reason"],
            registry=registry,
        )
        self.lag = Gauge(
            p + "lag",
            "Records behind the partition's high watermark.",
            ["app", "partition"],
            registry=registry,
        )
        self.live_keys = Gauge(
            p + "live_keys",
            "Keys in the state stores (live calls for the worker).",
            ["app"],
            registry=registry,
        )
        self.partitions = Gauge(
            p + "partitions", "Input partitions owned.", ["app"], registry=registry
        )
        self.restores = Counter(
            p + "restores", "Partition restores from the changelog.", ["app"], registry=registry
        )
        self.restore_records = Counter(
            p + "restore_records",
            "Changelog records read while restoring.",
            ["app"],
            registry=registry,
        )
        self.restore_seconds = Histogram(
            p + "restore_seconds",
            "Duration of one restore.",
            ["app"],
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.rebalances = Counter(
            p + "rebalances",
            "Partitions revoked/assigned callbacks.",
            ["app", "kind"],
            registry=registry,
        )
        self.checkpoints = Counter(
            p + "checkpoints",
            "Checkpoints (outputs + changelog confirmed, offsets committed).",
            ["app"],
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            p + "checkpoint_seconds",
            "Duration of one checkpoint.",
            ["app"],
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.commit_failures = Counter(
            p + "commit_failures",
            "Offset commits refused (rebalance in progress).",
            ["app"],
            registry=registry,
        )
        self.changelog_records = Counter(
            p + "changelog_records",
            "State records written (tombstones included).",
            ["app"],
            registry=registry,
        )
        self.evictions = Counter(
            p + "evictions", "Finished keys evicted after retention.", ["app"], registry=registry
        )
        self.timers = Counter(p + "timers", "Timers fired.", ["app"], registry=registry)
        self.inflight = Gauge(
            p + "inflight", "Records fetched but not yet completed.", ["app"], registry=registry
        )

    def labels(self) -> _Bound:
        return _Bound(self)


class _Bound:
    """The metrics with ``app`` already bound, so the hot path does no label lookups."""

    def __init__(self, m: RuntimeMetrics) -> None:
        a = m.app
        self.applied = m.events.labels(a, "applied")
        self.skipped = m.events.labels(a, "skipped")
        self.dead = m.events.labels(a, "dead_lettered")
        self.batch_seconds = m.batch_seconds.labels(a)
        self.event_age = m.event_age.labels(a)
        self.live_keys = m.live_keys.labels(a)
        self.partitions = m.partitions.labels(a)
        self.restores = m.restores.labels(a)
        self.restore_records = m.restore_records.labels(a)
        self.restore_seconds = m.restore_seconds.labels(a)
        self.checkpoints = m.checkpoints.labels(a)
        self.checkpoint_seconds = m.checkpoint_seconds.labels(a)
        self.commit_failures = m.commit_failures.labels(a)
        self.changelog_records = m.changelog_records.labels(a)
        self.evictions = m.evictions.labels(a)
        self.timers = m.timers.labels(a)
        self.inflight = m.inflight.labels(a)
        self._m = m

    def output(self, topic: str, n: int) -> None:
        self._m.outputs.labels(self._m.app, topic).inc(n)

    def dead_letter(self, reason: str) -> None:
        self._m.dlq.labels(self._m.app, reason).inc()

    def lag(self, partition: int, value: float) -> None:
        self._m.lag.labels(self._m.app, str(partition)).set(value)

    def drop_lag(self, partition: int) -> None:
        with contextlib.suppress(KeyError):
            self._m.lag.remove(self._m.app, str(partition))

    def rebalance(self, kind: str) -> None:
        self._m.rebalances.labels(self._m.app, kind).inc()
