"""Simulator benchmark: can it carry the dispatcher benchmark (~200 calls/s with full lifecycles)?

Subject: ``orchestrator simulate`` as its own process (uvicorn + httptools), at ``--cps`` above the
offered load, with a realistic outcome mix at ``--time-scale`` so each call lives about a second
and posts 3-6 signed webhooks to a receiver in this process.

Two measurements:
1. *Open loop*: create calls at ``--rate``/s for ``--duration`` s; report create latency p50/p99,
   how many lifecycles finished, webhooks received per second, how far webhook delivery lagged
   (last ``completed`` after the last create), and the simulator's CPU use.
2. *Closed loop* create throughput (16 keep-alive connections, lifecycles and webhooks running)
   next to a same-run baseline: a bare ASGI app on the same uvicorn stack answering the same POST
   with a fixed 201 body. The ratio is what auth (RS256 JWT), limits, ledger and call set-up cost
   per request (the httpx client in this process caps both numbers alike).

    python -m bench.simulator_throughput [--rate 200] [--duration 10] [--time-scale 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._result import BenchResult, report
from orchestrator.sandbox.simulator.auth import generate_key_pair, mint_application_jwt

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "bench-0000-0000-0000-000000000000"

PROFILE = {
    "outcomes": {
        "human": 70,
        "machine": 10,
        "busy": 6,
        "unanswered": 6,
        "failed": 3,
        "rejected": 3,
        "timeout": 0,
        "cancelled": 2,
    },
    "timing": {
        "setup": [0.1, 0.5],
        "ring": [2, 8],
        "ring_fail": [1, 5],
        "talk": [5, 20],
        "machine_talk": [5, 10],
    },
    "events": {"reorder_started_ringing": 0.1, "reorder_final_completed": 0.1, "duplicate": 0.01},
    "limits": {"max_calls": 200000, "max_requests": 200000},
}


class Receiver:
    """A minimal HTTP/1.1 webhook sink (keep-alive, Content-Length bodies); counts statuses."""

    def __init__(self) -> None:
        self.count = 0
        self.finished: set[bytes] = set()
        self._progress = asyncio.Event()
        self.last_completed = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()

    @property
    def completed(self) -> int:
        return len(self.finished)

    async def wait_finished(self, n: int) -> None:
        while self.completed < n:
            self._progress.clear()
            await self._progress.wait()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                body = await reader.readexactly(int(m.group(1))) if m else b""
                self.count += 1
                if b'"status":"completed"' in body or b'"status":"rejected"' in body:
                    self.finished.add(head.split(b" ", 2)[1])  # the path carries the call_ref
                    self.last_completed = time.monotonic()
                    self._progress.set()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _start_sim(
    tmp: Path, public_key: Path, args: argparse.Namespace
) -> tuple[asyncio.subprocess.Process, str]:
    profile = tmp / "profile.json"
    profile.write_bytes(orjson.dumps(PROFILE))
    prof = os.environ.get("SIM_PROFILE")  # cProfile the simulator process into this file
    cmd = [
        *(["-m", "cProfile", "-o", prof] if prof else []),
        *["-m", "orchestrator", "simulate", "--port", "0", "--cps", "100000", "--rps", "5000"],
        *["--seed", "1"],
        *("--time-scale", str(args.time_scale), "--profile", str(profile)),
        *("--application-id", APP_ID, "--public-key", str(public_key)),
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


def _call(i: int, event_base: str) -> dict[str, Any]:
    return {
        "to": [{"type": "phone", "number": f"4477{i:09d}"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": [{"action": "talk", "text": "This is a reminder about your appointment tomorrow."}],
        "event_url": [f"{event_base}/webhooks/event/b{i}"],
    }


async def open_loop(
    base: str, token: str, rec: Receiver, args: argparse.Namespace, pid: int
) -> dict[str, Any]:
    event_base = f"http://127.0.0.1:{rec.port}"
    lat: list[float] = []
    codes: dict[int, int] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    headers = {"Authorization": f"Bearer {token}"}
    total = int(args.rate * args.duration)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as c:

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            r = await c.post("/v1/calls", json=_call(i, event_base), headers=headers)
            lat.append(time.perf_counter() - t0)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1

        cpu0 = _cpu_seconds(pid)
        start = time.monotonic()
        tasks = []
        for i in range(total):
            due = start + i / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        sent_done = time.monotonic()
        created = codes.get(201, 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rec.wait_finished(created), 60)
        cpu = _cpu_seconds(pid) - cpu0
        wall = max(rec.last_completed, sent_done) - start
    lat.sort()
    return {
        "offered": total,
        "codes": codes,
        "achieved_rate": created / (sent_done - start),
        "create_p50_ms": 1000 * statistics.median(lat),
        "create_p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1],
        "lifecycles_finished": rec.completed,
        "webhooks": rec.count,
        "webhooks_per_s": rec.count / wall,
        # Calls live up to ~max_lifetime_s; draining much longer than that means webhooks lag.
        "drain_after_last_create_s": max(0.0, rec.last_completed - sent_done),
        "max_lifetime_s": (0.5 + 8 + 20) / args.time_scale,
        "sim_cpu_share": cpu / wall,
    }


async def closed_loop(
    base: str, token: str | None, rec_port: int, seconds: float, conc: int
) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    done = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as c:

        async def worker(w: int) -> None:
            nonlocal done
            i = 0
            while time.monotonic() < stop:
                r = await c.post(
                    "/v1/calls",
                    json=_call(w * 1_000_000 + i, f"http://127.0.0.1:{rec_port}"),
                    headers=headers,
                )
                assert r.status_code == 201, r.text
                done += 1
                i += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(conc)))
        return done / (time.monotonic() - t0)


async def _baseline_server() -> tuple[Any, str]:
    from orchestrator.web.embedded import EmbeddedServer

    body = orjson.dumps(
        {"uuid": "x", "status": "started", "direction": "outbound", "conversation_uuid": "CON-x"}
    )

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    server = EmbeddedServer(app, port=0, http="httptools")
    port = await server.start()
    return server, f"http://127.0.0.1:{port}"


async def main(args: argparse.Namespace) -> None:
    import tempfile

    pair = generate_key_pair()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        pub = tmp / "pub.pem"
        pub.write_text(pair.public_pem)
        token = mint_application_jwt(APP_ID, pair.private_pem, ttl=3600)
        rec = Receiver()
        await rec.start()
        proc, base = await _start_sim(tmp, pub, args)
        try:
            res = await open_loop(base, token, rec, args, proc.pid)
            print("[simulator] open loop:", res)
            async with httpx.AsyncClient(base_url=base) as c:
                await c.post("/_sim/reset")
            sim_rate = await closed_loop(base, token, rec.port, args.closed_seconds, 16)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
        server, bbase = await _baseline_server()
        try:
            base_rate = await closed_loop(bbase, None, rec.port, args.closed_seconds, 16)
        finally:
            await server.stop()
        await rec.stop()
    report(
        BenchResult(
            name="simulator",
            metric="create-call requests/s, closed loop (16 conns), lifecycles running",
            value=sim_rate,
            unit="req/s",
            baseline="bare ASGI 201 on the same uvicorn stack",
            baseline_value=base_rate,
            target=f">= {args.rate} calls/s open loop with every lifecycle finished",
            extra={k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()},
        )
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--time-scale", type=float, default=20.0)
    ap.add_argument("--closed-seconds", type=float, default=5.0)
    asyncio.run(main(ap.parse_args()))
