"""End-to-end campaign benchmark: contacts per second through the whole pipeline, and webhook-to-outcome latency.

Every role runs as its own process, as in production: campaign controller -> voice.commands ->
dispatcher -> Voice API simulator (limit raised) -> signed webhooks -> ingress -> voice.events ->
worker -> voice.outcomes -> controller -> campaign.results. The figure is contacts with a final
result per second, from the START command to the campaign's completion.

Same-run baselines:
* throughput: a plain async HTTP client creating the same number of calls on the same simulator
  as fast as its limit allows, and waiting for the last call to end (no Kafka, no roles): the
  best any orchestrator could do against that limit;
* latency: its floor, the worker's settle window (the quiet time a flow waits for late facts
  before it reports an outcome); the ratio shows what the pipeline adds on top.

Run: ``.venv/bin/python -m bench.campaign [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench._result import BenchResult, report
from contracts.topics import VOICE_EVENTS, VOICE_OUTCOMES
from orchestrator.config import Settings
from orchestrator.localbroker import LocalBroker, free_port
from orchestrator.sandbox.checker.collect import Record, read_topic
from orchestrator.sandbox.cps_used import cps_use, first_attempt_span
from orchestrator.sandbox.simulator.auth import generate_key_pair
from orchestrator.sandbox.soak.procs import Slot

SECRET = "bench-signature-secret-0123456789abcdef"
SETTLE_MS = 1000  # the worker's default settle window (orchestrator worker --settle-ms)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


async def _tick_lag_ms(url: str) -> float | None:
    """Mean real time from the controller writing a clock tick to reading it (its /metrics)."""
    import httpx

    async with httpx.AsyncClient() as client:
        text = (await client.get(url, timeout=5)).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        for suffix in ("_sum", "_count"):
            if line.startswith(f"orchestrator_campaign_tick_lag_seconds{suffix} "):
                values[suffix] = float(line.split()[-1])
    if not values.get("_count"):
        return None
    return round(values["_sum"] / values["_count"] * 1000, 1)


async def _http_ok(url: str, limit_s: float) -> None:
    import httpx

    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def _sim_idle(sim_url: str, limit_s: float) -> None:
    import httpx

    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=5.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if not (await client.get(f"{sim_url}/_sim/health")).json().get("live_calls"):
                    return
            await asyncio.sleep(0.1)


async def _null_webhooks() -> tuple[asyncio.Server, int]:
    """A minimal HTTP/1.1 keep-alive endpoint answering 200 to anything (the baseline's sink)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def raw_baseline(sim_url: str, app_id: str, pem: str, n: int, concurrency: int) -> float:
    """Contacts/s of a bare HTTP client: create n calls (retrying 429s), wait for all to end."""
    import httpx

    from orchestrator.dispatcher.auth import JwtMinter

    server, port = await _null_webhooks()
    minter = JwtMinter(app_id, pem.encode())
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def one(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {
                "to": [{"type": "phone", "number": f"4478{i:08d}"}],
                "from": {"type": "phone", "number": "447700900000"},
                "ncco": [{"action": "talk", "text": "Benchmark call."}],
                "event_url": [f"http://127.0.0.1:{port}/webhooks/event/raw-{i}"],
            }
            while True:
                headers = {"Authorization": f"Bearer {minter.token()}"}
                resp = await client.post(f"{sim_url}/v1/calls", json=body, headers=headers)
                if resp.status_code == 201:
                    break
                await asyncio.sleep(0.02)

    start = time.monotonic()
    async with httpx.AsyncClient(timeout=10.0) as client:
        await asyncio.gather(*(one(client) for _ in range(concurrency)))
    await _sim_idle(sim_url, 120)
    elapsed = time.monotonic() - start
    server.close()
    return n / elapsed


def _campaign_spec(name: str, csv: Path, max_concurrent: int) -> Any:
    from contracts.campaign import CampaignSpec

    none = {"delay": "1s", "max_attempts": 1}
    return CampaignSpec.model_validate(
        {
            "name": name,
            "contacts": {"csv": str(csv), "default_region": "GB"},
            "from": {"numbers": ["447700900000"]},
            "flow": {"ncco": [{"action": "talk", "text": "Hello {{name}}, this is a benchmark."}]},
            "pacing": {"cps_share": 1.0, "max_concurrent": max_concurrent},
            "retry": {k: none for k in ("busy", "unanswered", "timeout", "failed", "machine")},
            # Open all day. (``null`` would disable the check, but the control envelope drops
            # None fields, so the controller restores the 09:00-20:00 default.)
            "calling_hours": {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "00:00",
                "end": "23:59",
            },
        }
    )


def _latencies(events: list[Record], outcomes: list[Record]) -> list[float]:
    """Webhook received (ingress) -> leg outcome produced (worker), in ms.

    A leg's outcome can only be produced after its last webhook arrived, so the latency is taken
    from that webhook's ``received_at`` (set by the ingress) to the outcome record's timestamp.
    """
    last_received: dict[str, float] = {}
    for r in events:
        if not r.value or b'"vonage.webhook"' not in r.value:
            continue
        doc = orjson.loads(r.value)
        leg = (doc.get("payload") or {}).get("uuid")
        received = datetime.fromisoformat(doc["received_at"]).timestamp() * 1000
        if leg:
            last_received[leg] = max(last_received.get(leg, 0.0), received)
    out: list[float] = []
    for r in outcomes:
        if not r.value:
            continue
        doc = orjson.loads(r.value)
        leg = doc.get("uuid")
        if doc.get("scope") == "leg" and leg in last_received:
            out.append(r.timestamp_ms - last_received[leg])
    return out


async def main_async(contacts: int, cps: float, time_scale: float) -> None:
    from orchestrator.campaign.operations import StateWatcher, read_results, send_control
    from orchestrator.kafka.admin import ensure_topics

    tmp = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    broker = LocalBroker().start()
    slots: list[Slot] = []
    try:
        settings = Settings(
            kafka_bootstrap_servers=broker.bootstrap,
            topic_partitions=6,
            topic_replication_factor=1,
        )
        await ensure_topics(settings, create=True)
        pem, app_id = generate_key_pair().private_pem, str(uuid.uuid4())
        sim_port, ingress_port = free_port(), free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        profile = tmp / "profile.json"
        profile.write_bytes(orjson.dumps({"seed": 11, "limits": {"max_calls": contacts * 3}}))
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VONAGE_", "KAFKA_", "TOPIC_", "ORCHESTRATOR_"))
        }
        sim = Slot(
            "simulate",
            0,
            [
                "--port",
                str(sim_port),
                "--cps",
                str(cps),
                "--rps",
                str(cps),
                "--seed",
                "11",
                "--time-scale",
                str(time_scale),
                "--profile",
                str(profile),
                "--application-id",
                app_id,
                "--signature-secret",
                SECRET,
            ],
            {**base, "VONAGE_PRIVATE_KEY": pem, "LOG_LEVEL": "warning"},
            tmp,
        )
        slots.append(sim)
        sim.start()
        await _http_ok(f"{sim_url}/_sim/health", 30)

        print(f"[campaign] baseline: bare HTTP client, {contacts} calls at the {cps:g} CPS limit")
        raw_rate = await raw_baseline(sim_url, app_id, pem, contacts, concurrency=32)
        import httpx

        async with httpx.AsyncClient() as client:
            raw_ledger = (await client.get(f"{sim_url}/_sim/ledger?webhooks=0", timeout=60)).json()
            raw_times = [
                float(r["t"])
                for r in raw_ledger["requests"]
                if r.get("op") == "create_call" and r.get("status") == 201
            ]
            raw_use = cps_use(raw_times, cps, start=min(raw_times), end=max(raw_times))
            await client.post(f"{sim_url}/_sim/reset")

        env = {
            **base,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "TOPIC_PARTITIONS": "6",
            "VONAGE_APPLICATION_ID": app_id,
            "VONAGE_PRIVATE_KEY": pem,
            "VONAGE_API_HOST": sim_url,
            "VONAGE_SIGNATURE_SECRET": SECRET,
            "VONAGE_CPS": str(cps),
            "VONAGE_RPS": str(cps),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{ingress_port}",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            "LOG_FORMAT": "json",
        }
        ctl_port = free_port()
        roles = [
            ("ingress", ["--host", "127.0.0.1", "--port", str(ingress_port)]),
            ("worker", ["--health-port", str(free_port()), "--health-host", "127.0.0.1"]),
            ("dispatcher", ["--health-port", str(free_port()), "--health-host", "127.0.0.1"]),
            ("campaign", ["controller", "--health-port", str(ctl_port)]),
        ]
        for role, args in roles:
            s = Slot(role, 0, args, {**env, "INSTANCE_ID": f"bench-{role}"}, tmp)
            slots.append(s)
            s.start()
        await _http_ok(f"http://127.0.0.1:{ingress_port}/healthz", 60)
        await asyncio.sleep(3.0)  # consumers join their groups

        csv = tmp / "contacts.csv"
        with csv.open("w") as fh:
            fh.write("number,name\n")
            for i in range(contacts):
                fh.write(f"+4479{i:08d},Contact {i}\n")
        name = f"bench{int(time.time())}"
        spec = _campaign_spec(name, csv, max_concurrent=max(100, contacts))
        print(f"[campaign] pipeline: campaign of {contacts} contacts through every role")
        start = time.monotonic()
        await send_control(settings, name, _start_action(), spec=spec, contacts_total=contacts)
        finished = None
        p = None
        async with StateWatcher(settings) as watcher:
            deadline = time.monotonic() + max(120.0, contacts / cps * 6)
            while time.monotonic() < deadline:
                await watcher.refresh()
                p = watcher.progress(name)
                if p is not None and p.status == "completed":
                    finished = time.monotonic()
                    break
                await asyncio.sleep(0.25)
        results = await read_results(settings, name)
        if finished is None:
            raise RuntimeError(
                f"campaign did not complete: {len(results)}/{contacts} results; progress {p}"
            )
        rate = len(results) / (finished - start)
        events = await read_topic(settings, VOICE_EVENTS.name)
        outcomes = await read_topic(settings, VOICE_OUTCOMES.name)
        lat = _latencies(events, outcomes)
        tick_lag = await _tick_lag_ms(f"http://127.0.0.1:{ctl_port}/metrics")
        async with httpx.AsyncClient() as client:
            ledger = (await client.get(f"{sim_url}/_sim/ledger?webhooks=0", timeout=60)).json()
        times, span_start, span_end = first_attempt_span(ledger, name)
        use = cps_use(times, cps, start=span_start, end=span_end)
        print(
            f"[campaign] CPS used while contacts were waiting: {use.mean:.1%} "
            f"(worst 10 s window {use.worst_window:.1%}, max {use.max_1s} in any 1 s, "
            f"limit {cps:g}; baseline client {raw_use.mean:.1%}, worst {raw_use.worst_window:.1%})"
        )
        print(
            "[campaign] 10 s windows, % of the limit: "
            + " ".join(f"{w * 100:.0f}" for w in use.windows)
        )
        report(
            BenchResult(
                name="campaign",
                metric=f"contacts/s, {contacts} contacts end to end (simulator limit {cps:g} CPS)",
                value=rate,
                unit="contacts/s",
                baseline="bare HTTP client on the same simulator, no Kafka",
                baseline_value=raw_rate,
                target="ratio >= 0.7 (the limit, not the pipeline, is the bottleneck)",
                extra={
                    "contacts": contacts,
                    "results": len(results),
                    "time scale": time_scale,
                    "mean tick lag ms": tick_lag,
                },
            )
        )
        report(
            BenchResult(
                name="campaign",
                metric=f"CPS used while contacts were waiting (limit {cps:g}, simulator ledger)",
                value=use.mean * 100,
                unit="%",
                baseline="bare HTTP client on the same simulator, same ledger",
                baseline_value=raw_use.mean * 100,
                target=">= 95 % in every 10 s window, never over the limit in any 1 s",
                extra={
                    "worst 10 s window %": round(use.worst_window * 100, 1),
                    "max creates in 1 s": use.max_1s,
                    "baseline worst 10 s window %": round(raw_use.worst_window * 100, 1),
                    "baseline max creates in 1 s": raw_use.max_1s,
                },
            )
        )
        report(
            BenchResult(
                name="campaign",
                metric="webhook -> outcome latency p50 (last webhook of a leg to its outcome)",
                value=_pct(lat, 0.5),
                unit="ms",
                baseline=f"floor: the worker's {SETTLE_MS} ms settle window",
                baseline_value=float(SETTLE_MS),
                higher_is_better=False,
                target="p50 <= floor + 250 ms",
                extra={"p99 ms": round(_pct(lat, 0.99), 1), "legs": len(lat)},
            )
        )
    finally:
        for s in reversed(slots):
            with contextlib.suppress(Exception):
                await s.terminate(20)
            s.force_stop()
        broker.stop()


def _start_action() -> Any:
    from contracts.campaign import ControlAction

    return ControlAction.START


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 contacts (< ~45 s)")
    parser.add_argument("--contacts", type=int, default=None)
    parser.add_argument("--cps", type=float, default=100.0, help="The simulator's raised limit.")
    parser.add_argument("--time-scale", type=float, default=50.0)
    args = parser.parse_args()
    # About 30 s of dialling by default: three whole 10-second windows at any limit.
    contacts = args.contacts or (300 if args.quick else max(90, int(args.cps * 30)))
    asyncio.run(main_async(contacts, args.cps, args.time_scale))


if __name__ == "__main__":
    main()
