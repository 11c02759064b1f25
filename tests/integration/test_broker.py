"""The local Apache Kafka broker: provisioning, round trips, transactions, clean stops."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import TOPICS
from orchestrator.config import Settings
from orchestrator.kafka.admin import MissingTopicsError, ensure_topics
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.kafka.reading import partitions_of, read_to_end
from orchestrator.localbroker import LocalBroker, free_port, port_in_use, wait_for_port
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


def _java_processes_using(data_dir: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", data_dir], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_broker_cli_serves_topics_and_stops_on_a_signal_leaving_nothing(
    sig: signal.Signals, tmp_path: Path
) -> None:
    port = free_port()
    data_dir = tmp_path / "kafka"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "broker",
            "--port",
            str(port),
            "--partitions",
            "2",
            "--data-dir",
            str(data_dir),
        ],
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
        assert "Apache Kafka 4." in line, line
        wait_for_port("127.0.0.1", port, 1)
        settings = make_settings(f"127.0.0.1:{port}", topic_prefix="")
        assert asyncio.run(ensure_topics(settings, create=False)) == [], "topics were created"
        assert _java_processes_using(str(data_dir)), "the JVM runs with the data directory"
        proc.send_signal(sig)
        stopping = time.monotonic()
        proc.wait(20)
        stop_s = time.monotonic() - stopping
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "broker stopped" in proc.stderr.read()
    assert stop_s < 20
    assert not port_in_use("127.0.0.1", port), "nothing listens after the stop"
    assert _java_processes_using(str(data_dir)) == [], "no broker process left behind"


def test_busy_port_is_reported_as_such() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    assert "broker ready" not in done.stderr


async def test_transactions_commit_visible_abort_invisible(kafka_settings: Settings) -> None:
    """The reference broker serves what production uses: a transactional producer's committed
    records reach a read_committed consumer, an aborted transaction's never do."""
    topic = f"{kafka_settings.topic_prefix}voice.outcomes"
    producer = make_producer(kafka_settings, transactional_id=f"tx-{time.time_ns()}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1", key=b"k")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", key=b"k")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-2", key=b"k")
    finally:
        await producer.stop()

    async def read(isolation: str, want: int) -> list[bytes]:
        # commit_transaction returns once the commit is decided; the markers that make the last
        # transaction readable follow a moment later.
        for _ in range(50):
            got = await read_once(isolation)
            if len(got) >= want:
                break
            await asyncio.sleep(0.1)
        return got

    async def read_once(isolation: str) -> list[bytes]:
        consumer = make_consumer(kafka_settings, group_id=None, isolation_level=isolation)
        await consumer.start()
        got: list[bytes] = []
        try:
            tps = await partitions_of(consumer, topic)
            await read_to_end(
                consumer, tps, lambda _, rs: got.extend(r.value for r in rs if r.value)
            )
        finally:
            await consumer.stop()
        return got

    assert await read("read_committed", 2) == [b"committed-1", b"committed-2"]
    assert await read("read_uncommitted", 3) == [b"committed-1", b"aborted", b"committed-2"]


def test_local_broker_context_manager() -> None:
    with LocalBroker() as b:
        wait_for_port(b.host, b.port, 1)
        assert b.alive()
    assert not b.alive()
