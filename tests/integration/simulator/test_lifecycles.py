"""Call lifecycles over real HTTP: every outcome's events arrive signed, in Vonage's sequences."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from contracts.webhooks import classify_webhook
from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver

pytestmark = pytest.mark.integration

EXPECTED = {
    "human": ["started", "ringing", "answered", "completed"],
    "machine": ["started", "ringing", "answered", "completed"],
    "busy": ["started", "ringing", "busy", "completed"],
    "unanswered": ["started", "ringing", "unanswered", "completed"],
    "cancelled": ["started", "ringing", "cancelled", "completed"],
    "timeout": ["started", "ringing", "timeout", "completed"],
    "failed": ["started", "failed", "completed"],
    "rejected": ["started", "rejected"],
}


def call_body(receiver: Receiver, ref: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": [{"type": "phone", "number": "447700900123"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": [{"action": "talk", "text": "Hello from the simulator"}],
        "event_url": [receiver.url(f"/webhooks/event/{ref}")],
    }
    body.update(extra)
    return body


async def create(sim_url: str, token: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim_url) as c:
        return await c.post("/v1/calls", json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("outcome", sorted(EXPECTED))
async def test_every_outcome_posts_signed_events(
    make_sim, receiver: Receiver, outcome: str
) -> None:
    extra = {"ringing_timer": 2} if outcome == "timeout" else {}
    async with make_sim(profile=only(outcome)) as sim:
        app = sim.create_application()
        resp = await create(sim.base_url, app.jwt(), call_body(receiver, "ref-1", **extra))
        assert resp.status_code == 201
        async with asyncio.timeout(15):
            await sim.wait_idle()
        events = receiver.under("/webhooks/event/ref-1")
        assert [e.data["status"] for e in events] == EXPECTED[outcome]
        for ev in events:
            assert ev.signed_ok, ev.signature_error
            assert ev.claims is not None
            assert ev.claims["application_id"] == app.id
            assert ev.claims["api_key"] == sim.engine.api_key
            # The product's own contract models accept every payload the simulator sends.
            model = classify_webhook(ev.data, "event")
            assert model.event_type == ev.data["status"]
        jtis = {e.claims["jti"] for e in events if e.claims}
        assert len(jtis) == len(events)
        ledger = sim.ledger()
        (call,) = ledger["calls"]
        assert call["call_ref"] == "ref-1"
        assert call["outcome"] == outcome
        assert [w["status"] for w in call["webhooks"]] == EXPECTED[outcome]
        assert all(w["ok"] and w["signed"] for w in call["webhooks"])
        if outcome in ("human", "machine"):
            done = events[-1].data
            assert done["duration"].isdigit() and int(done["duration"]) >= 1
            assert isinstance(done["price"], str) and isinstance(done["rate"], str)
            assert done["disconnected_by"] in ("user", "platform")


async def test_invalid_ncco_produces_error_event(make_sim, receiver: Receiver) -> None:
    async with make_sim(profile=only("human")) as sim:
        app = sim.create_application()
        body = call_body(receiver, "bad", ncco=[{"action": "dance", "moves": 3}])
        assert (await create(sim.base_url, app.jwt(), body)).status_code == 201
        async with asyncio.timeout(15):
            await sim.wait_idle()
        events = [e.data for e in receiver.under("/webhooks/event/bad")]
        errors = [e for e in events if "reason" in e and "status" not in e]
        assert len(errors) == 1
        assert errors[0]["reason"].startswith("Syntax error in NCCO")
        assert classify_webhook(errors[0], "event").event_type == "error"
        # The platform hangs up: the call still completes.
        assert events[-1]["status"] == "completed"
        assert "action[0]" in sim.ledger()["calls"][0]["detail"]


async def test_answer_url_fetched_and_ncco_run(make_sim, receiver: Receiver) -> None:
    receiver.on("/answer", lambda r: (200, [{"action": "talk", "text": "hi"}]))
    async with make_sim(profile=only("human")) as sim:
        app = sim.create_application()
        body = call_body(receiver, "ans")
        del body["ncco"]
        body["answer_url"] = [receiver.url("/answer/ans")]
        assert (await create(sim.base_url, app.jwt(), body)).status_code == 201
        async with asyncio.timeout(15):
            await sim.wait_idle()
        (answer,) = receiver.under("/answer/ans")
        assert answer.method == "GET"
        assert answer.signed_ok
        for key in ("to", "from", "uuid", "conversation_uuid", "region_url"):
            assert key in answer.query
        assert receiver.statuses("/webhooks/event/ans")[-1] == "completed"
        # the NCCO finished before the callee hung up: the platform ended the call
        assert receiver.under("/webhooks/event/ans")[-1].data["disconnected_by"] == "platform"


async def test_answer_url_failure_uses_fallback_then_hangs_up(make_sim, receiver: Receiver) -> None:
    receiver.on("/answer", lambda r: (503, None))
    receiver.on("/fallback", lambda r: (200, [{"action": "talk", "text": "fallback"}]))
    async with make_sim(profile=only("human")) as sim:
        app = sim.create_application(fallback_answer_url=receiver.url("/fallback"))
        body = call_body(receiver, "fb")
        del body["ncco"]
        body["answer_url"] = [receiver.url("/answer/fb")]
        assert (await create(sim.base_url, app.jwt(), body)).status_code == 201
        async with asyncio.timeout(15):
            await sim.wait_idle()
        # 503 is retryable: attempted twice, then the fallback with reason and original_request.
        assert len(receiver.under("/answer/fb")) == 2
        (fb,) = receiver.under("/fallback")
        assert fb.query["original_request"]
        assert "503" in fb.query["reason"]
        assert not [e for e in receiver.under("/webhooks/event/fb") if "reason" in e.data]

    receiver.clear()
    receiver.on("/answer", lambda r: (404, None))
    async with make_sim(profile=only("human")) as sim:
        app = sim.create_application()
        body = call_body(receiver, "nofb")
        del body["ncco"]
        body["answer_url"] = [receiver.url("/answer/nofb")]
        assert (await create(sim.base_url, app.jwt(), body)).status_code == 201
        async with asyncio.timeout(15):
            await sim.wait_idle()
        assert len(receiver.under("/answer/nofb")) == 1  # 404: no retry
        events = [e.data for e in receiver.under("/webhooks/event/nofb")]
        assert any("reason" in e and "status" not in e for e in events)
        assert events[-1]["status"] == "completed"


async def test_failed_webhooks_are_retried(make_sim, receiver: Receiver) -> None:
    seen: dict[str, int] = {}

    def flaky(r: Any) -> tuple[int, Any]:
        status = r.data.get("status", "")
        seen[status] = seen.get(status, 0) + 1
        return (500, None) if seen[status] == 1 else (200, None)

    receiver.on("/webhooks/event/flaky", flaky)
    async with make_sim(profile=only("busy")) as sim:
        app = sim.create_application()
        assert (
            await create(sim.base_url, app.jwt(), call_body(receiver, "flaky"))
        ).status_code == 201
        async with asyncio.timeout(15):
            await sim.wait_idle()
        await receiver.wait_for(lambda: all(v >= 2 for v in seen.values()) and len(seen) == 4)
        hooks = sim.ledger()["calls"][0]["webhooks"]
        assert all(h["attempts"] == 2 and h["ok"] for h in hooks)


async def test_reorder_and_duplicates_are_seeded(make_sim, receiver: Receiver) -> None:
    prof = only("busy")
    prof["events"] = {
        "reorder_started_ringing": 1.0,
        "reorder_final_completed": 1.0,
        "duplicate": 1.0,
    }
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        assert (await create(sim.base_url, app.jwt(), call_body(receiver, "ro"))).status_code == 201
        async with asyncio.timeout(15):
            await sim.wait_idle()
        statuses = receiver.statuses("/webhooks/event/ro")
        assert statuses == [
            "ringing",
            "ringing",
            "started",
            "started",
            "completed",
            "completed",
            "busy",
            "busy",
        ]
        dup = [w for w in sim.ledger()["calls"][0]["webhooks"] if w["duplicate"]]
        assert len(dup) == 4


async def test_same_seed_same_outcomes(make_sim, receiver: Receiver) -> None:
    outcomes = []
    for _ in range(2):
        async with make_sim(seed=42, cps=100, profile={**only("human"), "outcomes": {}}) as sim:
            app = sim.create_application()
            for i in range(6):
                body = call_body(
                    receiver, f"s{i}", to=[{"type": "phone", "number": f"44770090{i:04d}"}]
                )
                assert (await create(sim.base_url, app.jwt(), body)).status_code == 201
            outcomes.append({c["to"]: c["outcome"] for c in sim.ledger()["calls"]})
            sim.reset()
    assert outcomes[0] == outcomes[1]


async def test_inbound_call_fetches_the_applications_answer_url(
    make_sim, receiver: Receiver
) -> None:
    receiver.on("/answer", lambda r: (200, [{"action": "talk", "text": "Welcome", "loop": 0}]))
    async with make_sim(profile=only("human")) as sim:
        app = sim.create_application(
            event_url=receiver.url("/webhooks/event/inbound"), answer_url=receiver.url("/answer")
        )
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            r = await c.post("/_sim/inbound", json={"from": "447700900444", "to": "447700900000"})
        assert r.status_code == 201 and r.json()["app_id"] == app.id
        async with asyncio.timeout(15):
            await sim.wait_idle()
        (answer,) = receiver.under("/answer")
        assert answer.query["from"] == "447700900444" and answer.query["uuid"] == r.json()["uuid"]
        events = [e.data for e in receiver.under("/webhooks/event/inbound")]
        assert [e["status"] for e in events] == ["started", "ringing", "answered", "completed"]
        assert all(e["direction"] == "inbound" for e in events)
        assert events[-1]["disconnected_by"] == "user"  # the caller hung up (talk loops forever)


async def test_ledger_endpoint_filters_and_reset(make_sim, receiver: Receiver) -> None:
    async with make_sim(profile=only("busy")) as sim:
        app = sim.create_application()
        for ref in ("l1", "l2"):
            await asyncio.sleep(0.36)  # stay under cps 3
            assert (
                await create(sim.base_url, app.jwt(), call_body(receiver, ref))
            ).status_code == 201
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            full = (await c.get("/_sim/ledger")).json()
            assert [x["call_ref"] for x in full["calls"]] == ["l1", "l2"]
            assert full["seed"] == 7 and full["cps"] == 3.0
            first_index = full["calls"][0]["index"]
            newer = (await c.get(f"/_sim/ledger?calls_since={first_index}&requests=0")).json()
            assert [x["call_ref"] for x in newer["calls"]] == ["l2"] and newer["requests"] == []
            one = (await c.get("/_sim/ledger?call_ref=l1&webhooks=0")).json()
            assert len(one["calls"]) == 1 and "webhooks" not in one["calls"][0]
            since = (await c.get(f"/_sim/ledger?since={full['requests'][0]['seq']}&calls=0")).json()
            assert [r["seq"] for r in since["requests"]] == [full["requests"][1]["seq"]]
            assert (await c.post("/_sim/reset")).json() == {"reset": True}
            empty = (await c.get("/_sim/ledger")).json()
            assert empty["calls"] == [] and empty["requests"] == []
            assert (await c.get("/_sim/health")).json()["ok"] is True
