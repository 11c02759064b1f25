"""Helpers for the worker's integration tests: real processes, real broker, real HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from orchestrator.config import Settings
from orchestrator.kafka.reading import partitions_of, read_to_end
from orchestrator.localbroker import free_port

REPO = Path(__file__).resolve().parents[3]


def topic(settings: Settings, name: str) -> str:
    return f"{settings.topic_prefix}{name}"


async def produce(settings: Settings, name: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5
    )
    await producer.start()
    n = 0
    try:
        futs = []
        for key, value in records:
            futs.append(await producer.send(topic(settings, name), value, key=key))
            n += 1
        await producer.flush()
        for fut in futs:
            await fut
    finally:
        await producer.stop()
    return n


async def read_topic(settings: Settings, name: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record currently on the topic (all partitions, beginning to their end offsets)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tps = await partitions_of(consumer, topic(settings, name))
        assert tps, f"topic {topic(settings, name)} has no partitions"
        await read_to_end(consumer, tps, lambda _, records: out.extend(records))
        return out
    finally:
        await consumer.stop()


async def read_json(settings: Settings, name: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.value) for m in await read_topic(settings, name) if m.value is not None]


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def metric(port: int, name: str, **labels: str) -> float:
    """Sum of a Prometheus series over its labels, or over those matching ``labels`` (0 when
    absent)."""
    code, body = http_get(port, "/metrics")
    if code != 200:
        return 0.0
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in body.decode().splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


class WorkerProcess:
    """``orchestrator worker`` as a real subprocess, with its log in a temp file."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        name: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        fd, path = tempfile.mkstemp(prefix=f"worker-{name}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(path)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "TOPIC_PREFIX": settings.topic_prefix,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "INSTANCE_ID": "",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            **(env or {}),
        }
        args = [
            sys.executable, "-m", "orchestrator", "worker",
            "--health-port", str(self.port), "--health-host", "127.0.0.1",
            "--group-id", group, "--settle-ms", "300", "--commit-interval-ms", "200",
            *extra,
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args,
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> dict[str, Any] | None:
        code, body = http_get(self.port, "/readyz")
        return orjson.loads(body) if code == 200 else None

    def metric(self, name: str, **labels: str) -> float:
        return metric(self.port, name, **labels)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; return (exit code, seconds until the process was gone)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        return code, time.monotonic() - t0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


async def wait_for(predicate: Any, within: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(every)
