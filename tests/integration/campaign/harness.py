"""A whole local stack for campaign tests: simulator + every role in-process on the test broker.

Nothing is mocked: the controller's commands go through the real dispatcher to the simulator,
whose signed webhooks come back through the real ingress and worker. Checks read the simulator's
ledger and the topics afterwards, from the outside.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from contracts.campaign import CampaignProgress, CampaignSpec, ControlAction, parse_campaign_yaml
from contracts.topics import CAMPAIGN_RESULTS, VOICE_COMMANDS
from orchestrator.campaign.operations import (
    StateWatcher,
    _consumer,
    _read_to_end,
    send_control,
)
from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.kafka.reading import partitions_of
from orchestrator.localbroker import free_port
from orchestrator.run import LocalStack
from orchestrator.sandbox.simulator import Simulator
from tests.conftest import make_settings

#: A Tuesday, 13:50 UTC: London is open, New York opens at 14:00 UTC, Los Angeles at 17:00.
ANCHOR = datetime(2026, 3, 3, 13, 50, tzinfo=UTC)


def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def write_contacts(
    directory: Path, n: int, *, seed: int = 1, mix: tuple[float, float] = (0.15, 0.05)
) -> tuple[Path, Path, set[str], dict[int, str]]:
    """Contacts (London / New York / Los Angeles), a DNC file; returns DNC E.164s and zones."""
    rnd = random.Random(seed)
    ny_share, la_share = mix
    rows = []
    region: dict[int, str] = {}
    for i in range(n):
        r = rnd.random()
        if i % 97 == 13:
            number, region[i] = "bogus", "invalid"
        elif r < la_share:
            number, region[i] = f"+1 213 555 {i % 10000:04d}", "la"
        elif r < la_share + ny_share:
            number, region[i] = f"+1 212 555 {i % 10000:04d}", "ny"
        else:
            number, region[i] = f"+44 20 7946 {i % 1000:03d}{i // 1000 % 10}", "london"
        rows.append(number)
    # Make numbers unique (the digit-suffix scheme above can repeat at scale).
    seen: set[str] = set()
    for i, number in enumerate(rows):
        if number in seen and region[i] != "invalid":
            region[i] = "london"
            rows[i] = f"+44 20 3{i:07d}"
        seen.add(rows[i])
    contacts = directory / "contacts.csv"
    with contacts.open("w") as fh:
        fh.write("number,name\n")
        for i, number in enumerate(rows):
            fh.write(f"{number},Person {i}\n")
    dnc_rows = [i for i in range(n) if region[i] != "invalid" and i % 31 == 5]
    dnc_numbers = set()
    dnc = directory / "dnc.txt"
    with dnc.open("w") as fh:
        for i in dnc_rows:
            digits = "".join(ch for ch in rows[i] if ch.isdigit())
            fh.write(f"00{digits}\n")  # another spelling than the list's
            dnc_numbers.add("+" + digits)
    return contacts, dnc, dnc_numbers, region


CAMPAIGN = """\
name: {name}
contacts: {{csv: {contacts}, default_region: GB}}
from: {{numbers: ["442079460000"]}}
flow:
  ncco:
    - {{action: talk, text: "Hello {{{{name}}}}, press 1 to confirm."}}
    - {{action: input, type: [dtmf], dtmf: {{maxDigits: 1, timeOut: 3}}}}
pacing: {{max_concurrent: {cap}}}
machine_detection: {{mode: standard, on_machine: hangup}}
retry:
  busy: {{delay: 2m, max_attempts: 3}}
  unanswered: {{delay: 3m, max_attempts: 2}}
  timeout: {{delay: 3m, max_attempts: 2}}
  failed: {{delay: 1m, max_attempts: 2}}
calling_hours: {hours}
dnc: [{dnc}]
ringing_timer: 30
attempt_timeout: 3d
"""

HOURS = "{days: [mon, tue, wed, thu, fri], start: '09:00', end: '20:00'}"


def campaign_spec(
    name: str, contacts: Path, dnc: Path, *, cap: int, hours: bool = True, **update: Any
) -> CampaignSpec:
    text = CAMPAIGN.format(
        name=name, contacts=contacts, dnc=dnc, cap=cap, hours=HOURS if hours else "null"
    )
    spec = parse_campaign_yaml(text)
    return spec.model_copy(update=update) if update else spec


def profile(seed: int, *, faults: bool = True) -> dict[str, Any]:
    prof: dict[str, Any] = {
        "seed": seed,
        "outcomes": {
            "human": 55,
            "machine": 12,
            "busy": 12,
            "unanswered": 10,
            "rejected": 2,
            "failed": 4,
            "timeout": 3,
            "cancelled": 2,
        },
        "timing": {"ring": [2, 10], "ring_fail": [2, 6], "talk": [5, 30], "amd": [1, 3]},
        "events": {
            "reorder_started_ringing": 0.3,
            "reorder_final_completed": 0.3,
            "duplicate": 0.05,
        },
    }
    if faults:
        prof["faults"] = {
            "endpoints": {
                # Injected 429s and 5xx instead of processing, and dropped answers after it
                # (more 429s come from the simulator's real rate limiter).
                "create_call": {
                    "throttle_rate": 0.01,
                    "error_rate": 0.03,
                    "error_status": 503,
                    "drop_rate": 0.003,
                },
                "*": {"error_rate": 0.01, "error_status": 502},
            }
        }
    return prof


@dataclass
class Env:
    settings: Settings
    sim: Simulator
    stack: LocalStack
    clock: Callable[[], float]
    ingress_port: int

    async def start(self, spec: CampaignSpec, total: int | None = None) -> None:
        await send_control(
            self.settings, spec.name, ControlAction.START, spec=spec, contacts_total=total
        )

    async def control(self, name: str, action: str) -> None:
        await send_control(self.settings, name, ControlAction(action))

    async def restart_roles(self) -> None:
        """Stop every role (drain, checkpoint, leave) and start fresh ones on the same ports."""
        await self.stack.stop()
        self.stack = LocalStack(
            self.settings, ingress_port=self.ingress_port, clock=self.clock, worker_settle_s=0.3
        )
        await self.stack.start()

    async def wait_for(
        self, name: str, pred: Callable[[CampaignProgress], bool], within: float
    ) -> CampaignProgress:
        deadline = time.monotonic() + within
        p: CampaignProgress | None = None
        async with StateWatcher(self.settings) as w:
            while time.monotonic() < deadline:
                await w.refresh()
                p = w.progress(name)
                if p is not None and pred(p):
                    return p
                failed = self.stack.failed()
                assert failed is None, failed
                await asyncio.sleep(0.3)
        raise AssertionError(f"campaign {name}: condition not reached in {within}s; last {p}")

    def creates(self) -> list[dict[str, Any]]:
        """Create-call requests the simulator accepted (201), from its ledger."""
        led = self.sim.ledger(calls=False)
        return [r for r in led["requests"] if r.get("op") == "create_call" and r["status"] == 201]


@asynccontextmanager
async def local_env(
    broker_bootstrap: str, *, cps: float, time_scale: float, clock_scale: float, seed: int,
    faults: bool = True, sim_profile: dict[str, Any] | None = None, with_agents: bool = True,
    with_worker: bool = True, with_controller: bool = True,
) -> AsyncIterator[Env]:  # fmt: skip
    secret = secrets.token_urlsafe(32)
    pem = private_key_pem()
    app_id = str(uuid.uuid4())
    t0 = time.time()

    def clock() -> float:
        return ANCHOR.timestamp() + (time.time() - t0) * clock_scale

    async with Simulator(
        cps=cps,
        rps=max(60.0, cps * 3),
        seed=seed,
        time_scale=time_scale,
        profile=sim_profile if sim_profile is not None else profile(seed, faults=faults),
        signature_secret=secret,
        application_id=app_id,
        private_key=pem,
    ) as sim:
        port = free_port()
        settings = make_settings(
            broker_bootstrap,
            vonage_application_id=app_id,
            vonage_private_key=pem,
            vonage_signature_secret=secret,
            vonage_api_host=sim.base_url,
            vonage_cps=cps,
            vonage_rps=max(60.0, cps * 3),
            public_base_url=f"http://127.0.0.1:{port}",
            log_level="warning",
        )
        await ensure_topics(settings, create=True)
        stack = LocalStack(
            settings,
            ingress_port=port,
            clock=clock,
            worker_settle_s=0.3,
            with_agents=with_agents,
            with_worker=with_worker,
            with_controller=with_controller,
        )
        await stack.start()
        env = Env(settings, sim, stack, clock, port)
        try:
            yield env
        finally:
            await env.stack.stop()


async def raw_records(settings: Settings, topic_base: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every record of a topic (duplicates included), as (key, JSON)."""
    topic = f"{settings.topic_prefix}{topic_base}"
    out: list[tuple[bytes, dict[str, Any]]] = []
    consumer = _consumer(settings)
    await consumer.start()
    try:
        await _read_to_end(
            consumer,
            await partitions_of(consumer, topic),
            lambda k, v: out.append((k, orjson.loads(v))) if v is not None else None,
            settle_s=0.5,
        )
    finally:
        await consumer.stop()
    return out


async def results_raw(settings: Settings) -> list[dict[str, Any]]:
    return [v for _, v in await raw_records(settings, CAMPAIGN_RESULTS.name)]


async def create_commands(settings: Settings) -> list[dict[str, Any]]:
    return [
        v
        for _, v in await raw_records(settings, VOICE_COMMANDS.name)
        if v.get("kind") == "create_call"
    ]


def since(at: datetime, minutes: float) -> datetime:
    return at + timedelta(minutes=minutes)
