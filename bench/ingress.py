"""Ingress benchmark: signed, durable webhooks per second and latency, next to a same-run baseline.

Subject: ``orchestrator ingress`` (uvicorn, one process) verifying each request's HS256 signature,
validating the payload, and answering only after the broker acknowledged the record (acks=all) on
the local Apache Kafka broker. Baseline: the same app and the same requests with ``--no-publish`` (answers
without producing), so the ratio shows what durability costs on this machine.

Load: a closed loop of ``--concurrency`` keep-alive connections from this process (a small raw
HTTP/1.1 client on asyncio, so the client is not the bottleneck), each sending one request at a
time; every request is a distinct call_ref with a fresh token (unique jti, current iat). After a
warm-up, requests are counted for ``--duration`` seconds; latency is per request, send to response.

    python -m bench.ingress [--duration 8] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson

from bench._result import BenchResult, report
from orchestrator.config import Settings
from orchestrator.ingress.signature import sign_for_tests
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker, free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signature-secret-0123456789abcdef"
PREFIX = "bench."


def _event_request(i: int) -> bytes:
    ref = f"bench-{i}"
    body = orjson.dumps(
        {
            "uuid": str(uuid.uuid4()),
            "conversation_uuid": f"CON-{ref}",
            "status": ("started", "ringing", "answered", "completed")[i % 4],
            "direction": "outbound",
            "from": "447700900000",
            "to": "447700900123",
            "timestamp": "2026-01-01T12:00:00.000Z",
        }
    )
    token = sign_for_tests(SECRET, body)
    head = (
        f"POST /webhooks/event/{ref} HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _answer_request(i: int) -> bytes:
    ref = f"bench-a{i}"
    body = orjson.dumps(
        {
            "uuid": str(uuid.uuid4()),
            "conversation_uuid": f"CON-{ref}",
            "to": "447700900001",
            "from": "447700900000",
        }
    )
    token = sign_for_tests(SECRET, body)
    head = (
        f"POST /webhooks/answer/{ref} HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


class Load:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.counter = 0


async def _worker(port: int, make: object, load: Load, start: float, stop: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            load.counter += 1
            request = make(load.counter)  # type: ignore[operator]
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            writer.write(request)
            status = await _read_response(reader)
            t1 = time.perf_counter()
            if t0 >= start:
                load.latencies.append(t1 - t0)
                load.statuses[status] += 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def run_load(
    port: int, make: object, *, concurrency: int, duration: float, warmup: float
) -> tuple[float, Load]:
    load = Load()
    start = time.perf_counter() + warmup
    stop = start + duration
    await asyncio.gather(*(_worker(port, make, load, start, stop) for _ in range(concurrency)))
    return len(load.latencies) / duration, load


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _start_ingress(bootstrap: str, port: int, *, publish: bool) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TOPIC_PREFIX": PREFIX,
            "VONAGE_SIGNATURE_SECRET": SECRET,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "orchestrator",
        "ingress",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--flows",
        str(ROOT / "examples" / "flows"),
    ]
    if not publish:
        cmd.append("--no-publish")
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL)


async def _wait_ready(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while True:
            try:
                resp = await client.get(f"http://127.0.0.1:{port}/readyz")
                if resp.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"ingress on port {port} not ready within {within:.0f} s")
            await asyncio.sleep(0.2)


async def _measure(
    bootstrap: str, *, publish: bool, concurrency: int, duration: float
) -> dict[str, tuple[float, Load]]:
    port = free_port()
    proc = _start_ingress(bootstrap, port, publish=publish)
    try:
        await _wait_ready(port)
        out = {
            "event": await run_load(
                port, _event_request, concurrency=concurrency, duration=duration, warmup=1.0
            ),
            "answer": await run_load(
                port, _answer_request, concurrency=concurrency, duration=duration / 2, warmup=0.5
            ),
        }
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _stored(settings: Settings) -> int:
    from orchestrator.kafka.clients import make_consumer
    from orchestrator.kafka.reading import end_offsets, partitions_of

    topic = f"{PREFIX}voice.events"
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        return sum((await end_offsets(consumer, await partitions_of(consumer, topic))).values())
    finally:
        await consumer.stop()


def _summary(label: str, rate: float, load: Load) -> str:
    return (
        f"{label}: {rate:,.0f}/s, p50 {_pct(load.latencies, 0.50):.1f} ms, "
        f"p99 {_pct(load.latencies, 0.99):.1f} ms, max {max(load.latencies, default=0) * 1000:.1f} ms, "
        f"statuses {dict(load.statuses)}"
    )


async def main_async(duration: float, concurrency: int) -> None:
    with LocalBroker() as broker:
        settings = Settings(
            kafka_bootstrap_servers=broker.bootstrap,
            topic_prefix=PREFIX,
            topic_replication_factor=1,
        )
        await ensure_topics(settings, create=True)
        base = await _measure(
            broker.bootstrap, publish=False, concurrency=concurrency, duration=duration
        )
        durable = await _measure(
            broker.bootstrap, publish=True, concurrency=concurrency, duration=duration
        )
        stored = await _stored(settings)

    ev_rate, ev = durable["event"]
    base_rate, base_ev = base["event"]
    ans_rate, ans = durable["answer"]
    print(_summary("durable events ", ev_rate, ev))
    print(_summary("baseline events", base_rate, base_ev))
    print(_summary("durable answers", ans_rate, ans))
    print(_summary("baseline answers", *base["answer"]))
    ok = sum(n for s, n in ev.statuses.items() if s < 300)
    print(f"records on voice.events after the durable run: {stored:,} (>= 2xx counted: {ok:,})")
    if ok and stored < ok:
        raise SystemExit("fewer records stored than 2xx answers: durability broken")
    non_2xx = sum(n for s, n in (ev.statuses + ans.statuses).items() if s >= 300)
    report(
        BenchResult(
            name="ingress",
            metric=f"signed webhooks/s stored (acks=all) before 2xx, {concurrency} connections",
            value=ev_rate,
            unit="webhooks/s",
            baseline="same app answering without producing",
            baseline_value=base_rate,
            target="p99 < 50 ms at the measured throughput",
            extra={
                "p50_ms": round(_pct(ev.latencies, 0.50), 1),
                "p99_ms": round(_pct(ev.latencies, 0.99), 1),
                "baseline_p50_ms": round(_pct(base_ev.latencies, 0.50), 1),
                "baseline_p99_ms": round(_pct(base_ev.latencies, 0.99), 1),
                "answer_ncco_per_s": round(ans_rate),
                "answer_p99_ms": round(_pct(ans.latencies, 0.99), 1),
                "non_2xx": non_2xx,
                "mean_ms": round(statistics.fmean(ev.latencies) * 1000, 1)
                if ev.latencies
                else None,
            },
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="Measured seconds per run.")
    parser.add_argument("--concurrency", type=int, default=16, help="Connections in flight.")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args.duration, args.concurrency))


if __name__ == "__main__":
    main()
