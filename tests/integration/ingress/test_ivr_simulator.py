"""The IVR flow driven end to end through the Voice API simulator over real HTTP.

The simulator places calls whose answer URL is the ingress; its profile scripts the callee's DTMF
per destination number. Each call takes a different path through ``examples/flows/ivr.yaml``:

- ``...011`` presses 1 -> sales -> the sales line is busy -> synchronous-connect failover to voicemail;
- ``...013`` presses 3 -> transfer into the conference room;
- ``...010`` presses nothing -> "did not hear" and the menu again (retry) -> nothing -> goodbye.

Checked: the NCCO sequence each call received matches the flow, and every webhook the simulator
delivered for a call is on ``voice.events`` under the call's key.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from pydantic import AnyHttpUrl, SecretStr

from handlers.flow import decode_ctx
from orchestrator.config import Settings
from orchestrator.ingress.asgi import IngressOptions, create_app
from orchestrator.ingress.flows import load_flows
from orchestrator.localbroker import free_port
from orchestrator.sandbox.simulator.server import Simulator
from orchestrator.web.embedded import EmbeddedServer
from tests.integration.ingress.conftest import EXAMPLE_FLOWS, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIM_SECRET = "ivr-e2e-signature-secret-0123456789"
IVR_NUMBER = "447700900001"
SALES = "447700900100"  # the IVR's sales_number

PROFILE: dict[str, Any] = {
    "seed": 11,
    "outcomes": {
        "human": 1,
        "machine": 0,
        "busy": 0,
        "unanswered": 0,
        "rejected": 0,
        "failed": 0,
        "timeout": 0,
        "cancelled": 0,
    },
    "timing": {"setup": 0.1, "ring": 0.5, "ring_fail": 0.5, "talk": 200, "record": 2},
    "input": {"speech": [{"text": "", "weight": 1}]},  # callers never speak: DTMF drives
    "overrides": [
        {"match": f"{SALES}$", "outcome": "busy"},
        {"match": "447700900011$", "dtmf": "1"},
        {"match": "447700900013$", "dtmf": "3"},
        {"match": "447700900010$", "dtmf": ""},
    ],
}
CALLS = {"ivr-sales": "447700900011", "ivr-conf": "447700900013", "ivr-timeout": "447700900010"}

Recorder = list[tuple[str, str, int, bytes]]


def recording(app: Any, seen: Recorder) -> Callable[..., Awaitable[None]]:
    """ASGI wrapper noting (method, path, status, body) of every webhook answer."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/webhooks/"):
            await app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        await app(scope, receive, capture)
        seen.append((scope["method"], scope["path"], status, bytes(body)))

    return wrapped


def actions(body: bytes) -> list[str]:
    return [a["action"] for a in orjson.loads(body)] if body else []


async def test_ivr_end_to_end_through_the_simulator(kafka_settings: Settings) -> None:
    port = free_port()
    settings = kafka_settings.model_copy(
        update={
            "vonage_signature_secret": SecretStr(SIM_SECRET),
            "public_base_url": AnyHttpUrl(f"http://127.0.0.1:{port}"),
        }
    )
    app = create_app(
        settings, flows=load_flows(EXAMPLE_FLOWS), options=IngressOptions(publish_deadline=5.0)
    )
    seen: Recorder = []
    ingress = EmbeddedServer(recording(app, seen), port=port, lifespan="on")
    await ingress.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with Simulator(
            port=0, cps=10, time_scale=40, seed=11, profile=PROFILE, signature_secret=SIM_SECRET
        ) as sim:
            sim_app = sim.create_application()
            async with httpx.AsyncClient(base_url=sim.base_url) as client:
                for ref, number in CALLS.items():
                    body = {
                        "to": [{"type": "phone", "number": number}],
                        "from": {"type": "phone", "number": IVR_NUMBER},
                        "answer_url": [f"{base}/webhooks/answer/{ref}/ivr"],
                        "event_url": [f"{base}/webhooks/event/{ref}"],
                    }
                    resp = await client.post(
                        "/v1/calls", json=body, headers={"Authorization": f"Bearer {sim_app.jwt()}"}
                    )
                    assert resp.status_code == 201, resp.text
            async with asyncio.timeout(90):
                await sim.wait_idle()
            ledger = sim.ledger(requests=False)
    finally:
        await ingress.stop()

    # --- the NCCO sequence of each call -----------------------------------------------------
    nccos: dict[str, list[tuple[str, list[str], str]]] = defaultdict(list)
    for _method, path, status, body in seen:
        parts = path.split("/")
        kind, ref = parts[2], parts[3]
        assert status in (200, 204), (path, status, body)
        if status == 200:
            nccos[ref].append((kind, actions(body), "/".join(parts[4:])))

    sales = nccos["ivr-sales"]
    assert sales[0] == ("answer", ["talk", "input"], "ivr")
    assert sales[1] == ("input", ["talk", "connect"], "ivr/menu")
    # The sales line was busy: its synchronous connect event got the voicemail NCCO. (Whether the
    # simulator then plays it at once is the simulator's business: its connect currently resumes
    # the caller only at the caller's own hang-up, so the voicemail's record event is not asserted.)
    assert sales[2] == ("event", ["talk", "record", "talk"], "ivr/voicemail")
    assert len(sales) == 3

    conf = nccos["ivr-conf"]
    assert conf == [
        ("answer", ["talk", "input"], "ivr"),
        ("input", ["talk", "conversation"], "ivr/menu"),
    ]

    timeout = nccos["ivr-timeout"]
    assert timeout[0] == ("answer", ["talk", "input"], "ivr")
    assert timeout[1] == ("input", ["talk", "talk", "input"], "ivr/menu")  # sorry + menu again
    assert timeout[2][:2] == ("input", ["talk"])  # retries used up: goodbye
    retry_step = timeout[2][2].split("/")
    assert retry_step[:2] == ["ivr", "menu"] and decode_ctx(retry_step[2]) == (1, {})
    assert len(timeout) == 3

    # The conference call really joined the named conversation.
    conf_call = next(
        c for c in ledger["calls"] if c["call_ref"] == "ivr-conf" and c["leg"] != "connect"
    )
    assert conf_call["conversation_name"] == "acme-daily"

    # --- every delivered webhook is on voice.events under the call's key ---------------------
    topic = f"{settings.topic_prefix}voice.events"
    delivered: dict[str, int] = defaultdict(int)
    for call in ledger["calls"]:
        for hook in call.get("webhooks", []):
            if hook["ok"] and "/webhooks/" in hook["url"]:
                delivered[hook["url"].split("/webhooks/")[1].split("/")[1]] += 1
    records = await read_topic(settings, topic, expect=sum(delivered.values()), within=20)
    stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, value in records:
        assert key is not None
        stored[key.decode()].append(value)
    for ref in CALLS:
        assert len(stored[ref]) >= delivered[ref] > 0, (ref, len(stored[ref]), delivered[ref])
        types = {v["event_type"] for v in stored[ref]}
        assert {"answer", "started", "answered", "input", "completed"} <= types, (ref, types)
    assert "busy" in {v["event_type"] for v in stored["ivr-sales"]}  # the connect leg's events
    assert "transfer" in {v["event_type"] for v in stored["ivr-conf"]}  # joined the conference
