"""The metric names the product really exports, read off the roles' own metric definitions.

Each role's registry is built the way the role builds it (nothing is started: no broker, no
port), and every metric family is expanded into the sample names Prometheus stores (a counter
``x`` is scraped as ``x_total`` and ``x_created``, a histogram as ``x_bucket``, ``x_sum``,
``x_count`` ...). A dashboard or rule naming anything else is a typo or a metric that was renamed.

Metrics from outside the product are listed in :data:`EXTERNAL_METRICS` with where they come
from; they are the only hand-written names.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import CollectorRegistry

__all__ = ["EXTERNAL_METRICS", "exported_metrics", "known_metrics"]

#: Metrics the dashboards and alerts use that other components export, by source.
EXTERNAL_METRICS = {
    "kafka_consumergroup_lag": "Strimzi's Kafka Exporter (or any kafka_exporter)",
}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


def _registries() -> dict[str, CollectorRegistry]:
    from orchestrator.agents.main import AgentsService
    from orchestrator.campaign.main import ControllerService
    from orchestrator.config import Settings
    from orchestrator.dispatcher.metrics import DispatcherMetrics
    from orchestrator.ingress.metrics import IngressMetrics
    from orchestrator.worker.main import WorkerOptions, make_runtime

    settings = Settings.model_construct()  # defaults; the environment plays no part here
    worker = CollectorRegistry()
    make_runtime(settings, WorkerOptions(), worker)
    return {
        "ingress": IngressMetrics().registry,
        "worker": worker,
        "dispatcher": DispatcherMetrics().registry,
        "campaign-controller": ControllerService(settings, health_port=None).registry,
        "agents": AgentsService(settings, health_port=None).registry,
    }


@cache
def exported_metrics() -> dict[str, tuple[str, ...]]:
    """Every sample name the roles export, with the roles that export it."""
    out: dict[str, set[str]] = {}
    for role, registry in _registries().items():
        for family in registry.collect():
            for suffix in _SUFFIXES.get(family.type, ("",)):
                out.setdefault(family.name + suffix, set()).add(role)
    return {name: tuple(sorted(roles)) for name, roles in sorted(out.items())}


def known_metrics() -> frozenset[str]:
    return frozenset(exported_metrics()) | frozenset(EXTERNAL_METRICS)
