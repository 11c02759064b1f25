"""Dispatcher benchmark: how much of a 200/s create budget it uses, and what it adds per request.

Set-up: the local broker, ``orchestrator simulate --cps 200`` as its own process, and the
dispatcher service in this process (the real one: Kafka in, dial ledger writes, limiter, pooled
httpx, results out), configured with ``--cps 200``.

Two phases, each next to a same-run baseline on the same simulator (a raw ``httpx`` loop with no
limiter, no ledger, no Kafka):

1. *Budget under backlog*: N create commands are produced at once. Achieved rate = accepted
   creates / (first to last admission + one window), as a fraction of the configured 200/s, and
   the 429s the simulator returned. Baseline: the raw loop fires N creates as fast as 64
   connections allow (what a client without a limiter gets: mostly 429s beyond the budget).
2. *Added latency*: commands offered open-loop at half the budget (``--load``). Per command, the time from
   the dispatcher taking it from Kafka to its result being produced (queue + limiter + two ledger
   writes + HTTP). Baseline: the raw loop's round trip at the same offered rate, i.e. the
   simulator's own service time plus a bare client. Added latency = dispatcher - baseline, at p50
   and p99.

    python -m bench.dispatcher [--creates 1200] [--latency-seconds 8] [--rate 200] [--load 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import AnyHttpUrl, SecretStr

from bench._result import BenchResult, report
from contracts.envelopes import CommandEnvelope, command_key
from contracts.topics import VOICE_COMMANDS, VOICE_EVENTS, topic_name
from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.localbroker import LocalBroker, free_port
from orchestrator.sandbox.simulator.auth import generate_key_pair, mint_application_jwt

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "bench-disp-0000-0000-000000000000"
#: Calls are rejected at once (no ringing/answer lifecycle) and their one event goes to a closed
#: port: the simulator spends its CPU on the API, which is what this benchmark exercises.
PROFILE = {
    "outcomes": {
        "rejected": 100,
        "human": 0,
        "machine": 0,
        "busy": 0,
        "unanswered": 0,
        "failed": 0,
        "timeout": 0,
        "cancelled": 0,
    },
    "webhooks": {"event_attempts": 1, "connect_timeout": 0.2},
    "limits": {"max_calls": 200000, "max_requests": 200000},
}
CLOSED = free_port()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    vs = sorted(values)
    return vs[min(len(vs) - 1, round(p / 100 * (len(vs) - 1)))]


def create_body(ref: str, i: int) -> dict[str, Any]:
    return {
        "to": [{"type": "phone", "number": f"4478{i:09d}"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": [{"action": "talk", "text": "bench"}],
        "event_url": [f"http://127.0.0.1:{CLOSED}/webhooks/event/{ref}"],
    }


async def start_sim(tmp: Path, public_key: Path, rate: float) -> tuple[Any, str]:
    profile = tmp / "profile.json"
    profile.write_bytes(orjson.dumps(PROFILE))
    cmd = [
        *["-m", "orchestrator", "simulate", "--port", "0", "--cps", str(rate)],
        *["--rps", str(rate), "--seed", "1", "--time-scale", "50", "--profile", str(profile)],
        *["--application-id", APP_ID, "--public-key", str(public_key)],
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *cmd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("VONAGE_")},
    )
    assert proc.stdout is not None
    while True:
        line = (await proc.stdout.readline()).decode()
        if not line:
            raise RuntimeError("simulator exited")
        m = re.search(r"simulator on (\S+)", line)
        if m:
            return proc, m.group(1)


async def sim_ledger(base: str, since: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.get(
            f"{base}/_sim/ledger", params={"since": since, "calls": "false", "webhooks": "false"}
        )
        doc: dict[str, Any] = r.json()
        return doc


def phase_figures(ledger: dict[str, Any], rate: float) -> tuple[float, int, int]:
    """(achieved fraction of the budget, accepted creates, 429s) over a ledger slice."""
    creates = [r for r in ledger["requests"] if r.get("op") == "create_call"]
    accepted = sorted(r["t"] for r in creates if r["status"] != 429)
    n429 = sum(1 for r in creates if r["status"] == 429)
    if not accepted:
        return 0.0, 0, n429
    span = accepted[-1] - accepted[0] + 1.0
    return len(accepted) / span / rate, len(accepted), n429


# --- baseline: a raw httpx loop -----------------------------------------------------------------


async def raw_backlog(base: str, token: str, n: int, conc: int = 64) -> None:
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                await http.post(
                    "/v1/calls",
                    json=create_body(f"raw-a-{i}", 10_000_000 + i),
                    headers={"Authorization": f"Bearer {token}"},
                )

        await asyncio.gather(*(worker() for _ in range(conc)))


async def open_loop(rate: float, seconds: float, fire: Callable[[int], Awaitable[None]]) -> None:
    """Start ``fire(i)`` at t0 + i/rate (open loop: a slow answer does not slow the offer)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.1
    tasks = []
    for i in range(int(rate * seconds)):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)


async def raw_latency(base: str, token: str, rate: float, seconds: float) -> list[float]:
    out: list[float] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def fire(i: int) -> None:
            t = time.perf_counter()
            r = await http.post(
                "/v1/calls",
                json=create_body(f"raw-b-{i}", 20_000_000 + i),
                headers={"Authorization": f"Bearer {token}"},
            )
            if r.status_code == 201:
                out.append((time.perf_counter() - t) * 1000)

        await open_loop(rate, seconds, fire)
    return out


# --- the dispatcher ------------------------------------------------------------------------------


class Results:
    """Tails voice.events for dispatcher results."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.latency: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def run(self) -> None:
        consumer = make_consumer(self.settings, group_id=None, auto_offset_reset="latest")
        consumer.subscribe([topic_name(VOICE_EVENTS, self.settings.topic_prefix)])
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    for rec in records:
                        doc = orjson.loads(rec.value)
                        if doc.get("type") == "dispatcher.result" and doc["status"] != "unknown":
                            self.latency[doc["command_id"]] = doc["latency_ms"]
                            self.status[doc["command_id"]] = doc["status"]
                self.changed.set()
        finally:
            await consumer.stop()

    async def wait(self, ids: list[str], within: float) -> None:
        deadline = time.monotonic() + within
        while not all(i in self.status for i in ids):
            if time.monotonic() > deadline:
                missing = sum(1 for i in ids if i not in self.status)
                raise RuntimeError(f"{missing} results missing")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)


def command(ref: str, i: int) -> CommandEnvelope:
    from datetime import UTC, datetime

    return CommandEnvelope(
        id=f"bench-{ref}",
        occurred_at=datetime.now(UTC),
        flow_key=ref,
        kind="create_call",  # type: ignore[arg-type]
        call_ref=ref,
        body=create_body(ref, i),
    )


async def main(args: argparse.Namespace) -> None:
    from orchestrator.dispatcher.service import DispatcherOptions, DispatcherService
    from orchestrator.logs import configure_logging

    rate = args.rate
    keys = generate_key_pair()
    with tempfile.TemporaryDirectory(prefix="bench-dispatcher-") as tmpdir, LocalBroker() as broker:
        tmp = Path(tmpdir)
        public_key = tmp / "app.pub"
        public_key.write_text(keys.public_pem)
        sim, base = await start_sim(tmp, public_key, rate)
        try:
            settings = Settings(  # type: ignore[call-arg]
                kafka_bootstrap_servers=broker.bootstrap,
                topic_prefix="bench.",
                topic_partitions=3,
                topic_replication_factor=1,
                vonage_application_id=APP_ID,
                vonage_private_key=SecretStr(keys.private_pem),
                vonage_api_host=AnyHttpUrl(base),
                log_format="console",
                log_level="warning",
            )
            configure_logging(settings)
            await ensure_topics(settings, create=True)
            token = mint_application_jwt(APP_ID, keys.private_pem, ttl=3600)

            # Baseline 1: raw backlog, no limiter.
            seq0 = (await sim_ledger(base, 0))["last_seq"]
            await raw_backlog(base, token, args.creates)
            raw_used, raw_ok, raw_429 = phase_figures(await sim_ledger(base, seq0), rate)
            await asyncio.sleep(1.5)
            # Baseline 2: raw round trip at 80 % of the budget.
            raw_ms = await raw_latency(base, token, args.load * rate, args.latency_seconds)
            await asyncio.sleep(1.5)

            service = DispatcherService(
                settings, DispatcherOptions(cps=rate, rps=rate, health_port=None, seed=1)
            )
            svc = asyncio.create_task(service.run())
            results = Results(settings)
            tail = asyncio.create_task(results.run())
            producer = make_producer(settings)
            await producer.start()
            topic = topic_name(VOICE_COMMANDS, settings.topic_prefix)
            try:
                # Warm up (group join, ledger restore, first saturated window), then measure.
                warm = [command(f"w-{i}", 30_000_000 + i) for i in range(20)]
                for c in warm:
                    await producer.send(topic, c.to_bytes(), key=command_key(c))
                await results.wait([c.id for c in warm], 60)
                await asyncio.sleep(1.5)

                seq1 = (await sim_ledger(base, 0))["last_seq"]
                backlog = [command(f"a-{i}", 40_000_000 + i) for i in range(args.creates)]
                for c in backlog:
                    await producer.send(topic, c.to_bytes(), key=command_key(c))
                await producer.flush()
                await results.wait([c.id for c in backlog], args.creates / rate + 60)
                used, ok, n429 = phase_figures(await sim_ledger(base, seq1), rate)
                reg = service.metrics.registry

                def mean_ms(name: str, **labels: str) -> float:
                    total = reg.get_sample_value(f"{name}_sum", labels) or 0.0
                    count = reg.get_sample_value(f"{name}_count", labels) or 1.0
                    return 1000 * total / count

                ledger_ms = mean_ms("orchestrator_dispatcher_ledger_write_seconds")
                http_ms = mean_ms("orchestrator_dispatcher_http_seconds", kind="create_call")
                await asyncio.sleep(1.5)

                ids: list[str] = []

                async def fire(i: int) -> None:
                    c = command(f"b-{i}", 50_000_000 + i)
                    ids.append(c.id)
                    await producer.send(topic, c.to_bytes(), key=command_key(c))

                seq2 = (await sim_ledger(base, 0))["last_seq"]
                await open_loop(args.load * rate, args.latency_seconds, fire)
                await results.wait(ids, 60)
                lat_429 = phase_figures(await sim_ledger(base, seq2), rate)[2]
                disp_ms = [results.latency[i] for i in ids]
                failed = sum(
                    1 for i in [c.id for c in backlog] + ids if results.status.get(i) != "succeeded"
                )
            finally:
                await producer.stop()
                service.stop()
                await svc
                tail.cancel()
                await asyncio.gather(tail, return_exceptions=True)
        finally:
            sim.terminate()
            await sim.wait()

    add50 = pct(disp_ms, 50) - pct(raw_ms, 50)
    add99 = pct(disp_ms, 99) - pct(raw_ms, 99)
    report(
        BenchResult(
            name="dispatcher",
            metric=f"creates/s accepted under backlog, --cps {rate:g}",
            value=used * rate,
            unit="calls/s",
            baseline="raw httpx loop, no limiter (64 connections)",
            baseline_value=raw_used * rate,
            target=f">= 95 % of {rate:g}/s, 0 x 429",
            extra={
                "achieved/configured": f"{used:.1%}",
                "429s (dispatcher)": n429,
                "429s (raw loop)": raw_429,
                "accepted (dispatcher / raw)": f"{ok} / {raw_ok} of {args.creates}",
                "failed results": failed,
                "mean ledger write / HTTP (backlog)": f"{ledger_ms:.1f} / {http_ms:.1f} ms",
            },
        )
    )
    report(
        BenchResult(
            name="dispatcher",
            metric=f"added latency per create at {args.load * rate:g}/s offered (p50)",
            value=add50,
            unit="ms",
            baseline="raw httpx round trip to the simulator (p50)",
            baseline_value=pct(raw_ms, 50),
            higher_is_better=False,
            target="p99 well under the 1 s window",
            extra={
                "added p99": f"{add99:.1f} ms",
                "dispatcher p50/p99 (Kafka in -> result out)": (
                    f"{pct(disp_ms, 50):.1f} / {pct(disp_ms, 99):.1f} ms"
                ),
                "raw round trip p50/p99": f"{pct(raw_ms, 50):.1f} / {pct(raw_ms, 99):.1f} ms",
                "429s (latency phase)": lat_429,
                "mean dispatcher": f"{statistics.fmean(disp_ms):.1f} ms",
            },
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=1200)
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--load", type=float, default=0.5, help="Offered load of phase 2.")
    asyncio.run(main(parser.parse_args()))
