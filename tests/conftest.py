"""Shared fixtures: one real Apache Kafka broker per test session, isolated topics per test.

Tests never mock Kafka: they talk to a real single-node Apache Kafka 4.x (KRaft) on a free port,
provisioned by ``orchestrator.localbroker`` (one per xdist worker). Each test that
needs topics gets its own topic prefix, so tests cannot see each other's records or groups.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker

_prefix_counter = itertools.count(1)


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    """A running local broker for the whole session (bootstrap: ``broker.bootstrap``)."""
    b = LocalBroker().start()
    try:
        yield b
    finally:
        b.stop()


def make_settings(bootstrap: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": f"t{os.getpid()}-{next(_prefix_counter)}.",
        "topic_partitions": 3,
        "topic_replication_factor": 1,
        "log_format": "console",
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def kafka_settings(broker: LocalBroker) -> AsyncIterator[Settings]:
    """Settings pointing at the session broker, with this test's own freshly created topics."""
    settings = make_settings(broker.bootstrap)
    await ensure_topics(settings, create=True)
    yield settings
