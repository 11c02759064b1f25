"""The embedded broker starts fast and aiokafka round-trips through it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import TOPICS
from orchestrator.config import Settings
from orchestrator.kafka.admin import MissingTopicsError, ensure_topics
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.kafka.localbroker import LocalBroker, free_port, wait_for_port
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


async def test_produce_consume_round_trip(kafka_settings: Settings) -> None:
    topic = f"{kafka_settings.topic_prefix}voice.events"
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(topic, f"v{i}".encode(), key=b"call-1") for i in range(5)
        ]
    finally:
        await producer.stop()
    assert len({md.partition for md in sent}) == 1, "one key, one partition"

    consumer: AIOKafkaConsumer = make_consumer(kafka_settings, topic, group_id="rt")
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                got += [m.value for m in msgs if m.value is not None]
        await consumer.commit()
    finally:
        await consumer.stop()
    assert got == [f"v{i}".encode() for i in range(5)], "order within a key is kept"


async def test_ensure_topics_refuses_missing_unless_told(broker: LocalBroker) -> None:
    settings = make_settings(broker.bootstrap)
    with pytest.raises(MissingTopicsError, match="CREATE_TOPICS"):
        await ensure_topics(settings, create=False)
    created = await ensure_topics(settings, create=True)
    assert len(created) == len(TOPICS)
    assert await ensure_topics(settings, create=False) == []


async def test_unreachable_broker_is_one_line_config_error() -> None:
    settings = make_settings(f"127.0.0.1:{free_port()}")
    with pytest.raises(Exception, match="KAFKA_BOOTSTRAP_SERVERS"):
        await ensure_topics(settings, create=True, timeout=2)


def test_broker_cli_starts_under_5s_and_stops_on_sigint() -> None:
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "broker", "--port", str(port), "--partitions", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        while "broker ready" not in line:
            line = proc.stderr.readline()
            assert line, "broker exited before it was ready"
        elapsed = time.monotonic() - started
        wait_for_port("127.0.0.1", port, 1)
        # Not a timing assertion on our code's speed: the contract is "starts in under 5 s".
        assert elapsed < 5, f"broker took {elapsed:.1f}s to be ready"
    finally:
        proc.send_signal(2)
        proc.wait(10)
    assert proc.returncode == 0
    assert "broker stopped" in proc.stderr.read()


def test_local_broker_context_manager() -> None:
    with LocalBroker() as b:
        wait_for_port(b.host, b.port, 1)
        assert b.alive()
    assert not b.alive()
