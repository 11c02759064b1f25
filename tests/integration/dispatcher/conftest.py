"""Helpers for dispatcher tests: the real broker, the real simulator over HTTP, real processes.

Everything observable is read from the outside afterwards: results from ``voice.events``, dead
letters from ``voice.dlq``, and what Vonage (the simulator) received from its ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import AnyHttpUrl, SecretStr

from contracts.envelopes import CommandEnvelope, CommandKind, command_key
from contracts.topics import VOICE_COMMANDS, VOICE_DLQ, VOICE_EVENTS, topic_name
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.kafka.reading import partitions_of
from orchestrator.localbroker import free_port
from orchestrator.sandbox.checker.checks import ApiRequest, rate_windows
from orchestrator.sandbox.simulator import Simulator

ROOT = Path(__file__).resolve().parents[3]
#: Where the simulator delivers webhooks in these tests: a sink that answers 204 (no ingress here).
SINK_PORT = free_port()


@pytest.fixture(scope="session", autouse=True)
async def webhook_sink() -> AsyncIterator[int]:
    """Answers every request with 204 (keep-alive, Content-Length bodies)."""

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", SINK_PORT)
    yield SINK_PORT
    server.close()


def with_vonage(settings: Settings, sim: Simulator, app: Any) -> Settings:
    return settings.model_copy(
        update={
            "vonage_application_id": app.id,
            "vonage_private_key": SecretStr(app.private_key_pem),
            "vonage_api_host": AnyHttpUrl(sim.base_url),
            "vonage_api_key": "simkey01",
            "vonage_api_secret": SecretStr("sim-api-secret"),
        }
    )


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for an ``orchestrator dispatcher`` subprocess with the same settings."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "TOPIC_PREFIX": settings.topic_prefix,
            "VONAGE_APPLICATION_ID": settings.vonage_application_id or "",
            "VONAGE_PRIVATE_KEY": settings.vonage_private_key.get_secret_value()
            if settings.vonage_private_key
            else "",
            "VONAGE_API_HOST": settings.api_base,
            "VONAGE_API_KEY": settings.vonage_api_key or "",
            "VONAGE_API_SECRET": "sim-api-secret",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": os.environ.get("DISPATCHER_LOG_LEVEL", "info"),
        }
    )
    env.update(extra)
    return env


def create_command(ref: str, number: str, *, account: str = "default") -> CommandEnvelope:
    return CommandEnvelope(
        id=f"cmd-{ref}",
        occurred_at=datetime.now(UTC),
        flow_key=ref,
        kind=CommandKind.CREATE_CALL,
        call_ref=ref,
        account=account,
        body={
            "to": [{"type": "phone", "number": number}],
            "from": {"type": "phone", "number": "447700900000"},
            "ncco": [{"action": "talk", "text": "Hello from the dispatcher test"}],
            "event_url": [f"http://127.0.0.1:{SINK_PORT}/webhooks/event/{ref}"],
        },
        origin="test",
    )


def creates(prefix: str, n: int) -> list[CommandEnvelope]:
    return [create_command(f"{prefix}-{i}", f"4477{i:08d}") for i in range(n)]


async def produce(settings: Settings, commands: list[CommandEnvelope]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        topic = topic_name(VOICE_COMMANDS, settings.topic_prefix)
        for cmd in commands:
            await producer.send(topic, cmd.to_bytes(), key=command_key(cmd))
        await producer.flush()
    finally:
        await producer.stop()


@dataclass
class Collected:
    results: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    dlq: list[dict[str, Any]] = field(default_factory=list)

    def finals(self, command_id: str) -> list[dict[str, Any]]:
        return [r for r in self.results[command_id] if r["status"] != "unknown"]

    def final_ids(self) -> set[str]:
        return {cid for cid in self.results if self.finals(cid)}

    def statuses(self) -> Counter[str]:
        return Counter(self.finals(cid)[0]["status"] for cid in self.final_ids())


class Reader:
    """Tails ``voice.events`` and ``voice.dlq`` from the beginning (no group)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.got = Collected()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        self._consumer = make_consumer(self.settings, group_id=None)
        await self._consumer.start()
        prefix = self.settings.topic_prefix
        tps = []
        for spec in (VOICE_EVENTS, VOICE_DLQ):
            name = topic_name(spec, prefix)
            tps += await partitions_of(self._consumer, name)
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        dlq = topic_name(VOICE_DLQ, self.settings.topic_prefix)
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for rec in records:
                    doc = orjson.loads(rec.value)
                    if tp.topic == dlq:
                        self.got.dlq.append(doc)
                    elif doc.get("type") == "dispatcher.result":
                        self.got.results[doc["command_id"]].append(doc)

    async def wait_finals(self, ids: set[str], within: float) -> Collected:
        deadline = asyncio.get_running_loop().time() + within
        while not ids <= self.got.final_ids():
            if asyncio.get_running_loop().time() > deadline:
                missing = sorted(ids - self.got.final_ids())
                raise AssertionError(
                    f"{len(missing)} commands without a final result: {missing[:5]}"
                )
            await asyncio.sleep(0.2)
        return self.got

    async def wait_count(self, n: int, within: float = 60.0) -> None:
        """Wait until at least ``n`` commands have a final result."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.got.final_ids()) < n:
            assert asyncio.get_running_loop().time() < deadline, "too few results"
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


# --- what the simulator saw --------------------------------------------------------------------


def create_requests(ledger: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in ledger["requests"] if r.get("op") == "create_call"]


def accepted_create_times(ledger: dict[str, Any]) -> list[float]:
    """Creates the limiter admitted (whatever happened next: 201, injected 5xx, drop)."""
    return sorted(r["t"] for r in create_requests(ledger) if r["status"] != 429 and r["auth_ok"])


def dial_counts(ledger: dict[str, Any]) -> Counter[str]:
    """Calls the API created, per call_ref."""
    return Counter(
        c["call_ref"] for c in ledger["calls"] if c.get("leg") == "api" and c["call_ref"]
    )


def window_anomalies(ledger: dict[str, Any], cps: float, rps: float) -> list[Any]:
    reqs = [
        ApiRequest(at=r["t"], creates_call=r["op"] == "create_call", status=r["status"])
        for r in ledger["requests"]
        if r.get("auth_ok")
        and r.get("op")
        and not r["op"].endswith("application")
        and not r["op"].endswith("applications")
    ]
    return rate_windows(reqs, cps=cps, rps=rps)


def utilisation(times: list[float], cps: float, window: float = 1.0) -> float:
    """Budget used over the run, as a fraction of ``cps``.

    The run spans the first to the last admitted create plus one window (the last window's
    budget is part of the run): N creates at exactly ``cps`` per window give 100 %.
    """
    if not times:
        return 0.0
    return len(times) / (times[-1] - times[0] + window) / cps


# --- dispatcher processes ----------------------------------------------------------------------


class DispatcherProcess:
    """``orchestrator dispatcher`` as a real OS process (for replicas and kill -9)."""

    def __init__(
        self,
        settings: Settings,
        *args: str,
        name: str = "d",
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.args = args
        self.env = env or {}
        self.name = name
        self.health_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = Path(f"/tmp/dispatcher-test-{os.getpid()}-{name}-{self.health_port}.log")

    async def start(self) -> DispatcherProcess:
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orchestrator",
            "dispatcher",
            "--health-port",
            str(self.health_port),
            "--health-host",
            "127.0.0.1",
            *self.args,
            env=env_for(self.settings, **self.env),
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    async def ready(self, within: float = 60.0) -> list[int]:
        """Wait until the process reports assigned partitions; return them."""
        import httpx

        deadline = asyncio.get_running_loop().time() + within
        async with httpx.AsyncClient() as http:
            while True:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise AssertionError(f"dispatcher exited {self.proc.returncode}: {self.tail()}")
                try:
                    r = await http.get(f"http://127.0.0.1:{self.health_port}/readyz")
                    body = r.json()
                    if r.status_code == 200 and body.get("partitions"):
                        return list(body["partitions"])
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"dispatcher not ready: {self.tail()}")
                await asyncio.sleep(0.2)

    async def metrics(self) -> str:
        import httpx

        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{self.health_port}/metrics")
            return r.text

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    async def terminate(self, within: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            rc = await asyncio.wait_for(self.proc.wait(), within)
        finally:
            self._log.close()
        return rc

    async def wait_dead(self) -> None:
        assert self.proc is not None
        await self.proc.wait()
        self._log.close()

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""


@pytest.fixture
async def processes() -> AsyncIterator[list[DispatcherProcess]]:
    """Dispatcher processes started by a test; all are stopped (by pid) at the end."""
    started: list[DispatcherProcess] = []
    yield started
    for p in started:
        if p.proc is not None and p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()
        if os.environ.get("KEEP_DISPATCHER_LOGS") is None:
            with contextlib.suppress(OSError):
                p.log_path.unlink()
