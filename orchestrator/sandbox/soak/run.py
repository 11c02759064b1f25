"""The soak run: start everything, dial N contacts under fire, stop, then check the history.

Under fire means: a simulated Voice API that reorders and duplicates webhooks, answers some
requests with 5xx, drops some connections after creating the call (the client cannot know
whether it dialled), and answers 429 when the dispatchers (deliberately configured a little
above the account's real CPS) push too hard; every ``kill_interval`` seconds a random worker or
dispatcher is killed with SIGKILL and restarted after ``kill_pause`` seconds; and a quarter of
all processes are restarted gracefully (SIGTERM) on a timer.

Afterwards the history checker reads the simulator's ledger and the topics (never the
processes' own bookkeeping) and the run fails on any anomaly, on a process that crashed by
itself, or on a graceful stop that did not exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from contracts.envelopes import CommandEnvelope, CommandKind, command_key, stable_id
from contracts.topics import (
    CAMPAIGN_RESULTS,
    VOICE_COMMANDS,
    VOICE_EVENTS,
    VOICE_OUTCOMES,
    topic_name,
)
from orchestrator.config import Settings
from orchestrator.localbroker import LocalBroker, free_port
from orchestrator.sandbox.checker.checks import Report, check
from orchestrator.sandbox.checker.collect import collect
from orchestrator.sandbox.simulator.auth import generate_key_pair
from orchestrator.sandbox.soak.plot import plot_run
from orchestrator.sandbox.soak.procs import Slot
from orchestrator.sandbox.soak.proxy import RoundRobinProxy
from orchestrator.sandbox.soak.sampler import ResourceSampler
from orchestrator.sandbox.soak.throughput import Throughput, by_tenth

SIGNATURE_SECRET = "soak-signature-secret"  # local simulator only
API_KEY, API_SECRET = "soakkey1", "soak-api-secret"
#: Ambiguous creates are resolved (GET /v1/calls) after this many seconds.
RESOLVE = ("--resolve-after", "3")
#: After the tail has settled, how long a missing result may still take from the last one seen.
SETTLE_S = 10.0


@dataclass
class SoakConfig:
    contacts: int = 3000
    #: Target length of the dialling phase (s): the account CPS is contacts / duration.
    duration: float = 60.0
    kill_interval: float = 5.0
    kill_pause: float = 2.0
    kill_roles: tuple[str, ...] = ("worker", "dispatcher")
    #: Every this many seconds (0: never) one worker or dispatcher is frozen with SIGSTOP for
    #: ``pause_s`` (default: the session timeout + 4 s, so its group has moved on when it wakes
    #: with SIGCONT and finds its partitions owned by another: the zombie case).
    pause_interval: float = 20.0
    pause_s: float | None = None
    #: Share of all processes restarted gracefully (SIGTERM) during the run.
    graceful_fraction: float = 0.25
    workers: int = 3
    dispatchers: int = 2
    ingresses: int = 2
    partitions: int = 6
    time_scale: float = 30.0
    #: Dispatchers are configured this much above the account CPS, so the API answers 429s.
    overdrive: float = 1.2
    rps: float = 60.0
    seed: int = 7
    #: Fault injection in the simulated Voice API (5xx, dropped connections, reorder, duplicates).
    api_faults: bool = True
    #: ``ORCHESTRATOR_FAULT`` for the product processes (deliberately broken variants).
    product_fault: str | None = None
    #: Longest time under fire (default: 4 x duration + 120 s); it ends earlier once every
    #: contact has a final result.
    deadline: float | None = None
    #: Then, without kills, wait this long at most for the remaining results (stop early once
    #: nothing has moved for ``quiet_s`` and the simulator has no live call).
    drain_s: float = 90.0
    quiet_s: float = 30.0
    #: Consumer session timeout of the roles (failover time after a SIGKILL).
    session_timeout_ms: int = 6000
    #: ``campaign``: a campaign controller process dials the contacts (from a CSV); ``commands``:
    #: the harness produces one create-call command per contact itself (no controller).
    driver: str = "campaign"
    #: The campaign's ``pacing.max_concurrent`` (checked: never more calls in flight); default
    #: 5 x CPS.
    max_concurrent: int | None = None
    out_dir: Path = field(default_factory=lambda: Path("build/soak"))
    log_level: str = "warning"
    #: Fail unless calls/s in the last tenth of the dialling phase is at least this share of the
    #: first tenth's (None: report only; short runs are dominated by start-up and tail).
    min_throughput_ratio: float | None = None
    #: Seconds between resource samples (contacts done, RSS of every process).
    sample_interval: float = 5.0

    @property
    def cps(self) -> float:
        return float(max(1, math.ceil(self.contacts / max(self.duration, 1.0))))


@dataclass
class SoakResult:
    report: Report
    kills: int
    graceful: int
    crashes: list[str]
    unclean_exits: list[str]
    contacts: int
    done: int
    elapsed: float
    sim_counters: dict[str, int]
    statuses: dict[str, int]
    out_dir: Path
    throughput: Throughput
    peak_rss: dict[str, float]
    min_throughput_ratio: float | None = None
    pauses: int = 0
    exits_after_pause: list[str] = field(default_factory=list)
    #: slot -> what its stalled stop was waiting on (the product's shutdown watch)
    stalls: dict[str, str] = field(default_factory=dict)

    @property
    def throughput_held(self) -> bool:
        return self.min_throughput_ratio is None or self.throughput.held(self.min_throughput_ratio)

    @property
    def ok(self) -> bool:
        return (
            self.report.ok and not self.crashes and not self.unclean_exits and self.throughput_held
        )

    def render(self) -> str:
        lines = [
            f"soak: {self.contacts} contacts, {self.done} with a final result, "
            f"{self.elapsed:.0f} s, kills (SIGKILL) {self.kills}, pauses (SIGSTOP past the session "
            f"timeout) {self.pauses}, graceful restarts {self.graceful}",
            f"  api statuses: {dict(sorted(self.statuses.items()))}",
            f"  simulator counters: {self.sim_counters}",
            f"  crashed processes: {len(self.crashes)} {self.crashes[:10]}",
            f"  exits right after a pause (fenced, restarted): {len(self.exits_after_pause)}",
            f"  unclean graceful exits: {len(self.unclean_exits)} {self.unclean_exits[:10]}",
            *(f"    {name} was waiting on: {why}" for name, why in sorted(self.stalls.items())),
            f"  {self.throughput.render()}"
            + (
                ""
                if self.min_throughput_ratio is None
                else f" ({'held' if self.throughput_held else 'DID NOT HOLD'}: "
                f"needs >= {self.min_throughput_ratio:.2f})"
            ),
            "  peak RSS (MiB): "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(self.peak_rss.items())),
            self.report.render(),
            f"  logs: {self.out_dir}",
            "SOAK " + ("PASSED" if self.ok else "FAILED"),
        ]
        return "\n".join(lines)


def _profile(cfg: SoakConfig) -> dict[str, Any]:
    limits = {
        "max_calls": max(200_000, cfg.contacts * 2 + 1000),
        "max_requests": max(200_000, cfg.contacts * 8 + 10_000),
    }
    webhooks = {"event_attempts": 8, "retry_backoff": 0.5}
    if not cfg.api_faults:
        return {"seed": cfg.seed, "limits": limits, "webhooks": webhooks}
    return {
        "seed": cfg.seed,
        "limits": limits,
        "webhooks": webhooks,
        "events": {
            "reorder_started_ringing": 0.2,
            "reorder_final_completed": 0.2,
            "duplicate": 0.05,
        },
        "faults": {
            "endpoints": {
                "create_call": {
                    "error_rate": 0.03,
                    "drop_rate": 0.02,
                    "latency_ms": 5,
                    "latency_jitter_ms": 30,
                },
                "*": {"error_rate": 0.02},
            }
        },
    }


def create_commands(n: int, public_base: str, run: str) -> list[CommandEnvelope]:
    """N create-call commands, one per contact (call_ref = contact id), as a campaign would."""
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        ref = f"{run}-c{i}"
        body: dict[str, Any] = {
            "to": [{"type": "phone", "number": f"4479{i:08d}"}],
            "from": {"type": "phone", "number": "447700900000"},
            "ncco": [{"action": "talk", "text": "This is a soak test call."}],
            "event_url": [f"{public_base}/webhooks/event/{ref}"],
            "event_method": "POST",
        }
        if i % 3 == 0:
            body["machine_detection"] = "continue"
        out.append(
            CommandEnvelope(
                id=stable_id("cmd", "soak", ref),
                occurred_at=now,
                flow_key=ref,
                kind=CommandKind.CREATE_CALL,
                call_ref=ref,
                body=body,
                origin="soak",
            )
        )
    return out


async def produce_commands(settings: Settings, commands: list[CommandEnvelope]) -> None:
    from orchestrator.kafka.clients import make_producer

    producer = make_producer(settings)
    await producer.start()
    try:
        topic = topic_name(VOICE_COMMANDS, settings.topic_prefix)
        for i in range(0, len(commands), 2000):
            futs = [
                await producer.send(topic, c.to_bytes(), key=command_key(c))
                for c in commands[i : i + 2000]
            ]
            await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def start_campaign(
    settings: Settings, out_dir: Path, name: str, n: int, max_concurrent: int
) -> None:
    """Write N contacts (ids c0..cN-1) and START a campaign over them on campaign.control."""
    from contracts.campaign import CampaignSpec, ControlAction
    from orchestrator.campaign.operations import send_control

    csv = out_dir / "contacts.csv"
    with csv.open("w") as fh:
        fh.write("id,number,name\n")
        for i in range(n):
            fh.write(f"c{i},+4479{i:08d},Contact {i}\n")
    once = {"delay": "1s", "max_attempts": 1}
    spec = CampaignSpec.model_validate(
        {
            "name": name,
            "contacts": {"csv": str(csv), "default_region": "GB"},
            "from": {"numbers": ["447700900000"]},
            "flow": {"ncco": [{"action": "talk", "text": "Hello {{name}}, this is a soak test."}]},
            "pacing": {"cps_share": 1.0, "max_concurrent": max_concurrent},
            "machine_detection": {"mode": "standard", "on_machine": "hangup"},
            "retry": {
                "busy": {"delay": "2s", "max_attempts": 2},
                "unanswered": once,
                "timeout": once,
                "failed": once,
                "machine": once,
            },
            # All day, every day: the soak must not wait for hours whatever the time is.
            "calling_hours": {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "00:00",
                "end": "23:59",
            },
        }
    )
    await send_control(settings, name, ControlAction.START, spec=spec, contacts_total=n)


class Progress:
    """Tails voice.outcomes and the create results on voice.events: which contacts are final."""

    def __init__(self, settings: Settings, contacts: set[str], *, campaign: bool = False) -> None:
        self.settings = settings
        self.campaign = campaign
        self.contacts = contacts
        self.done: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        from orchestrator.kafka.clients import make_consumer
        from orchestrator.kafka.reading import partitions_of

        prefix = self.settings.topic_prefix
        names = [topic_name(VOICE_OUTCOMES, prefix), topic_name(VOICE_EVENTS, prefix)]
        if self.campaign:
            names = [topic_name(CAMPAIGN_RESULTS, prefix)]
        consumer = make_consumer(self.settings, group_id=None, max_poll_records=5000)
        await consumer.start()
        try:
            tps = []
            for name in names:
                tps += await partitions_of(consumer, name)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batch.values():
                    for rec in records:
                        self._see(rec.value)
        finally:
            await consumer.stop()

    def _see(self, value: bytes | None) -> None:
        if not value:
            return
        doc = orjson.loads(value)
        kind = doc.get("type") if isinstance(doc, dict) else None
        if kind == "campaign.result":
            if doc.get("contact_id") in self.contacts:
                self.done.add(doc["contact_id"])
        elif kind == "voice.outcome":
            ref = doc.get("call_ref") or doc.get("flow_key")
            if doc.get("scope") == "leg" and ref in self.contacts:
                self.done.add(ref)
        elif (
            kind == "dispatcher.result"
            and doc.get("status") == "failed"
            and doc.get("call_ref") in self.contacts
        ):
            self.done.add(doc["call_ref"])


async def _http_ok(url: str, limit_s: float) -> bool:
    import httpx

    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return True
            await asyncio.sleep(0.2)
    return False


class Chaos:
    """SIGKILLs on an interval, graceful restarts on a timer, and restarts of crashed processes."""

    def __init__(self, cfg: SoakConfig, slots: list[Slot], rng: random.Random) -> None:
        self.cfg = cfg
        self.slots = slots
        self.rng = rng
        self.kills = 0
        self.graceful = 0
        self.pauses = 0
        #: Exits of a process soon after it woke from a pause: a fenced zombie whose producer
        #: can no longer commit stops so that it replays on restart (by design, not a crash).
        self.exits_after_pause: list[str] = []
        self._woke: dict[str, float] = {}
        self.crashes: list[str] = []
        #: (wall time, action, slot) for every kill, graceful stop and restart: for post-mortems.
        self.timeline: list[tuple[float, str, str]] = []
        self._down: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restart_later(self, slot: Slot, pause: float) -> None:
        await asyncio.sleep(pause)
        slot.start()
        self.timeline.append((time.time(), "restart", slot.name))
        self._down.discard(slot.name)

    def _victims(self) -> list[Slot]:
        """Workers and dispatchers (``kill_roles``) running and not already down or paused."""
        return [
            s
            for s in self.slots
            if s.role in self.cfg.kill_roles and s.running and s.name not in self._down
        ]

    async def _pause(self, slot: Slot, seconds: float) -> None:
        self._down.add(slot.name)
        if slot.stop_signal():
            self.pauses += 1
            self.timeline.append((time.time(), "sigstop", slot.name))
            await asyncio.sleep(seconds)
            slot.continue_signal()
            self._woke[slot.name] = time.monotonic()
            self.timeline.append((time.time(), "sigcont", slot.name))
        self._down.discard(slot.name)

    async def _graceful(self, slot: Slot) -> None:
        self._down.add(slot.name)
        self.timeline.append((time.time(), "sigterm", slot.name))
        code = await slot.terminate()
        self.timeline.append((time.time(), f"exited {code}", slot.name))
        self.graceful += 1
        slot.graceful += 1
        slot.start()
        self.timeline.append((time.time(), "restart", slot.name))
        self._down.discard(slot.name)

    async def run(self) -> None:
        cfg = self.cfg
        n_graceful = round(len(self.slots) * cfg.graceful_fraction)
        if cfg.graceful_fraction > 0:
            n_graceful = max(1, n_graceful)
        gap = max(cfg.duration / (n_graceful + 1), cfg.kill_interval)
        next_kill = time.monotonic() + cfg.kill_interval
        next_graceful = time.monotonic() + gap * 0.75
        pause_s = cfg.pause_s or cfg.session_timeout_ms / 1000 + 4.0
        next_pause = time.monotonic() + cfg.pause_interval if cfg.pause_interval > 0 else math.inf
        restarted: set[str] = set()
        while not self._stop.is_set():
            now = time.monotonic()
            for slot in self.slots:
                if slot.name not in self._down and (code := slot.crashed()) is not None:
                    if now - self._woke.get(slot.name, -math.inf) < 60.0:
                        self.exits_after_pause.append(f"{slot.name} exit {code}")
                        self.timeline.append((time.time(), f"exited {code} after pause", slot.name))
                    else:
                        self.crashes.append(f"{slot.name} exit {code}")
                        self.timeline.append((time.time(), f"crashed {code}", slot.name))
                    slot.start()
            if now >= next_pause:
                next_pause = now + cfg.pause_interval
                if victims := self._victims():
                    self._spawn(self._pause(self.rng.choice(victims), pause_s))
            if now >= next_kill:
                next_kill = now + cfg.kill_interval
                if victims := self._victims():
                    slot = self.rng.choice(victims)
                    self._down.add(slot.name)
                    slot.kill9()
                    self.kills += 1
                    self.timeline.append((time.time(), "sigkill", slot.name))
                    self._spawn(self._restart_later(slot, cfg.kill_pause))
            if n_graceful and now >= next_graceful and len(restarted) < n_graceful:
                next_graceful = now + gap
                candidates = [
                    s
                    for s in self.slots
                    if s.running and s.name not in self._down and s.name not in restarted
                ]
                if candidates:
                    slot = self.rng.choice(candidates)
                    restarted.add(slot.name)
                    self._spawn(self._graceful(slot))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.2)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def run_soak(cfg: SoakConfig) -> SoakResult:
    started = time.monotonic()
    run_id = f"soak{int(time.time())}"
    out_dir = cfg.out_dir / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)
    broker = LocalBroker().start()
    slots: list[Slot] = []
    sim: Slot | None = None
    proxy: RoundRobinProxy | None = None
    chaos_task: asyncio.Task[None] | None = None
    sampler: ResourceSampler | None = None
    try:
        settings = Settings(
            kafka_bootstrap_servers=broker.bootstrap,
            topic_prefix="",
            topic_partitions=cfg.partitions,
            topic_replication_factor=1,
        )
        from orchestrator.kafka.admin import ensure_topics

        await ensure_topics(settings, create=True)

        pem = generate_key_pair().private_pem
        app_id = str(uuid.uuid4())
        sim_port = free_port()
        profile_path = out_dir / "sim-profile.json"
        profile_path.write_bytes(orjson.dumps(_profile(cfg)))
        base_env = {
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
                str(cfg.cps),
                "--rps",
                str(cfg.rps),
                "--seed",
                str(cfg.seed),
                "--time-scale",
                str(cfg.time_scale),
                "--profile",
                str(profile_path),
                "--application-id",
                app_id,
                "--signature-secret",
                SIGNATURE_SECRET,
                "--api-key",
                API_KEY,
                "--api-secret",
                API_SECRET,
            ],
            {**base_env, "VONAGE_PRIVATE_KEY": pem, "LOG_LEVEL": "warning"},
            out_dir,
        )
        sim.start()
        sim_url = f"http://127.0.0.1:{sim_port}"
        if not await _http_ok(f"{sim_url}/_sim/health", 30):
            raise RuntimeError(f"simulator did not start; see {out_dir}/simulate-0.log")

        ingress_ports = [free_port() for _ in range(cfg.ingresses)]
        proxy = RoundRobinProxy(ingress_ports)
        public = f"http://127.0.0.1:{await proxy.start()}"
        env = {
            **base_env,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "TOPIC_PARTITIONS": str(cfg.partitions),
            "VONAGE_APPLICATION_ID": app_id,
            "VONAGE_PRIVATE_KEY": pem,
            "VONAGE_API_HOST": sim_url,
            "VONAGE_API_KEY": API_KEY,
            "VONAGE_API_SECRET": API_SECRET,
            "VONAGE_SIGNATURE_SECRET": SIGNATURE_SECRET,
            "VONAGE_CPS": str(cfg.cps * cfg.overdrive),
            "VONAGE_RPS": str(cfg.rps),
            "PUBLIC_BASE_URL": public,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": cfg.log_level,
            "KAFKA_SESSION_TIMEOUT_MS": str(cfg.session_timeout_ms),
        }
        if cfg.product_fault:
            env["ORCHESTRATOR_FAULT"] = cfg.product_fault

        def slot(role: str, i: int, args: list[str]) -> Slot:
            s = Slot(role, i, args, {**env, "INSTANCE_ID": f"soak-{role}-{i}"}, out_dir)
            slots.append(s)
            return s

        for i, port in enumerate(ingress_ports):
            slot("ingress", i, ["--host", "127.0.0.1", "--port", str(port)])
        for i in range(cfg.workers):
            slot("worker", i, ["--health-port", str(free_port())])
        if cfg.driver == "campaign":
            slot("campaign", 0, ["controller", "--health-port", str(free_port())])
        for i in range(cfg.dispatchers):
            slot(
                "dispatcher",
                i,
                ["--health-port", str(free_port()), "--health-host", "127.0.0.1", *RESOLVE],
            )
        for s in slots:
            s.start()
        for port in ingress_ports:
            if not await _http_ok(f"http://127.0.0.1:{port}/healthz", 60):
                raise RuntimeError(f"ingress did not start; see {out_dir}")

        cap = cfg.max_concurrent or int(cfg.cps * 5)
        if cfg.driver == "campaign":
            contacts = [f"c{i}" for i in range(cfg.contacts)]
            progress = Progress(settings, set(contacts), campaign=True)
            progress.start()
            await start_campaign(settings, out_dir, run_id, cfg.contacts, cap)
        else:
            commands = create_commands(cfg.contacts, public, run_id)
            contacts = [c.call_ref or "" for c in commands]
            progress = Progress(settings, set(contacts))
            progress.start()
            await produce_commands(settings, commands)

        sim_slot = sim

        def pids() -> dict[str, int | None]:
            named = {"broker": broker.pid, "simulator": _pid(sim_slot)}
            named.update({s.name: _pid(s) for s in slots})
            return named

        sampler = ResourceSampler(pids, lambda: len(progress.done), cfg.sample_interval)
        sampler.start()
        chaos = Chaos(cfg, slots, rng)
        chaos_task = asyncio.create_task(chaos.run())
        deadline = time.monotonic() + (cfg.deadline or cfg.duration * 4 + 120)
        last = -1
        while len(progress.done) < len(contacts) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            if len(progress.done) // max(1, len(contacts) // 10) != last:
                last = len(progress.done) // max(1, len(contacts) // 10)
                print(
                    f"soak: {len(progress.done)}/{len(contacts)} contacts final, "
                    f"kills {chaos.kills}, graceful {chaos.graceful}",
                    flush=True,
                )
        await chaos.stop()
        chaos_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await chaos_task
        # No more kills: whatever is still missing now is either slow (it arrives) or lost (it
        # never does, and the checker says which kind of loss it was).
        drain_end = time.monotonic() + cfg.drain_s
        seen, moved = len(progress.done), time.monotonic()
        while len(progress.done) < len(contacts) and time.monotonic() < drain_end:
            await asyncio.sleep(1.0)
            if len(progress.done) != seen:
                seen, moved = len(progress.done), time.monotonic()
            elif time.monotonic() - moved > cfg.quiet_s and await _sim_idle(sim_url):
                break
        # Let the tail settle: live calls end, late duplicates are delivered and applied, and a
        # result still on its way (a retry dialled at the end of the drain, a settle window on
        # a loaded machine) gets SETTLE_S after the last one that arrived.
        await _wait_sim_idle(sim_url, 30.0)
        await asyncio.sleep(3.0)
        seen, moved = len(progress.done), time.monotonic()
        while len(progress.done) < len(contacts) and time.monotonic() - moved < SETTLE_S:
            await asyncio.sleep(0.5)
            if len(progress.done) != seen:
                seen, moved = len(progress.done), time.monotonic()
        await progress.stop()
        await sampler.stop()

        unclean: list[str] = []
        for s in slots:
            code = await s.terminate()
            if code not in (0, None):
                unclean.append(f"{s.name} exit {code}")
        stalls = {s.name: why for s in slots if s.bad_exits and (why := s.stall_report())}
        collected = await collect(settings, sim_url, contacts=contacts, time_scale=cfg.time_scale)
        history = collected.history
        report = check(
            history, cps=cfg.cps, rps=cfg.rps, cap=cap if cfg.driver == "campaign" else None
        )
        _dump(out_dir, history, chaos.timeline, report)
        report.counts["voice.events records"] = collected.topic_counts.get("voice.events", 0)
        report.counts["kills (SIGKILL)"] = chaos.kills
        report.counts["graceful restarts"] = chaos.graceful
        report.counts["pauses (SIGSTOP)"] = chaos.pauses
        throughput = by_tenth([d.created_at for d in history.dials])
        (out_dir / "samples.json").write_bytes(orjson.dumps(sampler.samples))
        peak: dict[str, float] = {}
        for sample in sampler.samples:
            for name, mb in sample.rss.items():
                peak[name] = max(peak.get(name, 0.0), mb)
        with contextlib.suppress(ImportError):  # matplotlib: a dev extra
            plot_run(
                out_dir / "soak.png",
                samples=sampler.samples,
                dial_times=[d.created_at for d in history.dials],
                kill_times=[t for t, what, _ in chaos.timeline if what == "sigkill"],
                pause_times=[t for t, what, _ in chaos.timeline if what == "sigstop"],
                title=f"{run_id}: {cfg.contacts} contacts, {chaos.kills} SIGKILLs, "
                f"{chaos.pauses} SIGSTOPs, "
                f"{throughput.render()}",
            )
        return SoakResult(
            report=report,
            kills=chaos.kills,
            graceful=chaos.graceful,
            crashes=chaos.crashes,
            unclean_exits=unclean,
            contacts=len(contacts),
            done=len(progress.done),
            elapsed=time.monotonic() - started,
            sim_counters=collected.sim_counters,
            statuses={str(k): v for k, v in collected.api_statuses.items()},
            out_dir=out_dir,
            throughput=throughput,
            peak_rss=peak,
            min_throughput_ratio=cfg.min_throughput_ratio,
            pauses=chaos.pauses,
            exits_after_pause=chaos.exits_after_pause,
            stalls=stalls,
        )
    finally:
        if sampler is not None:
            await sampler.stop()
        # Chaos first: on an interrupt it is still running, and a restart it makes while the
        # awaits below run would outlive the soak (found after a Ctrl-C: two orphan ingresses).
        if chaos_task is not None and not chaos_task.done():
            chaos_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await chaos_task
        for s in slots:
            s.force_stop()
        if proxy is not None:
            await proxy.stop()
        if sim is not None:
            with contextlib.suppress(Exception):
                await sim.terminate(5)
            sim.force_stop()
        broker.stop()


def _pid(slot: Slot | None) -> int | None:
    return slot.proc.pid if slot is not None and slot.running and slot.proc else None


async def _sim_idle(sim_url: str) -> bool:
    import httpx

    async with httpx.AsyncClient(timeout=5.0) as client:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            doc = (await client.get(f"{sim_url}/_sim/health")).json()
            return not doc.get("live_calls")
    return False


async def _wait_sim_idle(sim_url: str, limit_s: float) -> None:
    import httpx

    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=5.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                doc = (await client.get(f"{sim_url}/_sim/health")).json()
                if not doc.get("live_calls"):
                    return
            await asyncio.sleep(0.5)


def _dump(
    out_dir: Path, history: Any, timeline: list[tuple[float, str, str]], report: Report
) -> None:
    """Keep what a post-mortem needs next to the logs: the chaos timeline, the dials, and every
    record of each flow an anomaly names (events, outcomes, state snapshots)."""
    flows = {a.subject.split(":")[0].split("#")[0] for a in report.anomalies}
    if flows:
        detail = {
            fk: {
                "anomalies": [a.detail for a in report.anomalies if a.subject.startswith(fk)],
                "events": [e for e in history.events if e.get("flow_key") == fk],
                "outcomes": [o for o in history.outcomes if o.get("flow_key") == fk],
                "state": [s for k, s in history.leg_status_snapshots if k.startswith(fk + "#")],
            }
            for fk in sorted(flows)[:200]
        }
        (out_dir / "anomalies.json").write_bytes(orjson.dumps(detail, option=orjson.OPT_INDENT_2))
    (out_dir / "timeline.json").write_bytes(orjson.dumps(timeline))
    dials = [[d.call_ref, d.uuid, d.created_at, d.ended_at] for d in history.dials]
    (out_dir / "dials.json").write_bytes(orjson.dumps(dials))
    results = [e for e in history.events if e.get("type") == "dispatcher.result"]
    (out_dir / "results.json").write_bytes(orjson.dumps(results))
