"""Fault injection: injected 5xx (nothing happened) vs dropped connection (the call exists)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver

pytestmark = pytest.mark.integration


def call_body(receiver: Receiver, ref: str) -> dict[str, Any]:
    return {
        "to": [{"type": "phone", "number": "447700900777"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": [{"action": "talk", "text": "hi"}],
        "event_url": [receiver.url(f"/webhooks/event/{ref}")],
    }


async def test_dropped_connection_after_create(make_sim: Any, receiver: Receiver) -> None:
    prof = only("busy", faults={"endpoints": {"create_call": {"drop_rate": 1.0}}})
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            with pytest.raises(httpx.TransportError):
                await c.post(
                    "/v1/calls",
                    json=call_body(receiver, "drop-1"),
                    headers={"Authorization": f"Bearer {app.jwt()}"},
                )
        async with asyncio.timeout(10):
            await sim.wait_idle()
        ledger = sim.ledger()
        (req,) = [r for r in ledger["requests"] if r["op"] == "create_call"]
        assert req["dropped"] is True and req["status"] == 201 and req["fault"] == "dropped"
        (call,) = ledger["calls"]
        assert call["call_ref"] == "drop-1" and call["uuid"] == req["call_uuid"]
        # The call went ahead: its webhooks are how a careful client learns it exists.
        assert receiver.statuses("/webhooks/event/drop-1")[0] == "started"


async def test_injected_5xx_does_nothing(make_sim: Any, receiver: Receiver) -> None:
    prof = only(
        "busy",
        faults={
            "endpoints": {
                "create_call": {"error_rate": 1.0, "error_status": 503},
                "*": {"latency_ms": 5},
            }
        },
    )
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        headers = {"Authorization": f"Bearer {app.jwt()}"}
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            r = await c.post("/v1/calls", json=call_body(receiver, "e"), headers=headers)
            assert r.status_code == 503
            assert r.json()["title"] == "Service Unavailable"
            listed = await c.get("/v1/calls", headers=headers)
            assert listed.status_code == 200 and listed.json()["count"] == 0
        ledger = sim.ledger()
        assert ledger["calls"] == []
        assert ledger["requests"][0]["fault"] == "error 503"
        assert ledger["counters"]["faults.error"] == 1


async def test_injected_429_is_the_limiters_answer_and_does_nothing(
    make_sim: Any, receiver: Receiver
) -> None:
    prof = only("busy", faults={"endpoints": {"create_call": {"throttle_rate": 1.0}}})
    async with make_sim(profile=prof, cps=2) as sim:
        app = sim.create_application()
        headers = {"Authorization": f"Bearer {app.jwt()}"}
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            for i in range(4):  # more than --cps: none of them takes a limiter slot
                r = await c.post("/v1/calls", json=call_body(receiver, f"t{i}"), headers=headers)
                assert r.status_code == 429
                assert r.json()["title"] == "Rate Limit Hit"
        ledger = sim.ledger()
        assert ledger["calls"] == []
        creates = [r for r in ledger["requests"] if r["op"] == "create_call"]
        assert [(r["status"], r["fault"], r["limit"]) for r in creates] == [
            (429, "throttled", None)
        ] * 4
        assert ledger["counters"]["faults.throttled"] == 4
        assert "rate_limited.cps" not in ledger["counters"]


async def test_official_sdk_redials_on_dropped_connection(
    make_sim: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the dispatcher must never re-send blindly: the SDK re-POSTs on RemoteDisconnected."""
    pytest.importorskip("vonage")
    from vonage import Auth, HttpClientOptions, Vonage
    from vonage_voice import CreateCallRequest, Phone, Talk, ToPhone

    prof = only("busy", faults={"endpoints": {"create_call": {"drop_rate": 1.0}}})
    async with make_sim(profile=prof, tls=True, cps=100) as sim:
        app = sim.create_application()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_file))
        client = Vonage(
            Auth(application_id=app.id, private_key=app.private_key_pem),
            HttpClientOptions(api_host=f"localhost:{sim.port}", timeout=5, pool_maxsize=3),
        )
        request = CreateCallRequest(
            to=[ToPhone(number="447700900777")],
            from_=Phone(number="447700900000"),
            ncco=[Talk(text="hi")],
            event_url=[receiver.url("/webhooks/event/sdk-drop")],
        )
        with pytest.raises(Exception):  # noqa: B017 - requests' ConnectionError after its retries
            await asyncio.to_thread(client.voice.create_call, request)
        async with asyncio.timeout(10):
            await sim.wait_idle()
        dials = [c for c in sim.ledger()["calls"] if c["call_ref"] == "sdk-drop"]
        assert len(dials) == 3  # one per re-send (pool_maxsize): the same contact dialled 3 times
