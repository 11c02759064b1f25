"""NCCO execution: input, record (+ download), connect (second leg, CPS), conversation, notify, AMD."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from contracts.webhooks import classify_webhook
from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver

pytestmark = pytest.mark.integration


def call_body(
    receiver: Receiver, ref: str, ncco: list[Any], number: str = "447700900321"
) -> dict[str, Any]:
    return {
        "to": [{"type": "phone", "number": number}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": ncco,
        "event_url": [receiver.url(f"/webhooks/event/{ref}")],
    }


async def create(sim: Any, token: str, body: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=sim.base_url) as c:
        r = await c.post("/v1/calls", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return str(r.json()["uuid"])


async def settle(sim: Any) -> None:
    async with asyncio.timeout(20):
        await sim.wait_idle()


async def test_input_posts_scripted_dtmf_and_returned_ncco_replaces_rest(
    make_sim: Any, receiver: Receiver
) -> None:
    receiver.on(
        "/webhooks/input",
        lambda r: (
            200,
            [{"action": "notify", "payload": {"step": 2}, "eventUrl": [receiver.url("/notify/x")]}],
        ),
    )
    prof = only("human", input={"dtmf": [{"digits": "42#", "delay": 0.5}]})
    prof["timing"] = {**prof["timing"], "talk": 60.0}
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        ncco = [
            {"action": "talk", "text": "Press your code", "bargeIn": True},
            {
                "action": "input",
                "type": ["dtmf"],
                "dtmf": {"maxDigits": 4, "submitOnHash": True},
                "eventUrl": [receiver.url("/webhooks/input/in-1")],
            },
            {"action": "talk", "text": "never reached: replaced by the input reply"},
        ]
        await create(sim, app.jwt(), call_body(receiver, "in-1", ncco))
        await settle(sim)
        (inp,) = receiver.under("/webhooks/input/in-1")
        assert inp.signed_ok
        assert inp.data["dtmf"] == {"digits": "42", "timed_out": False}
        assert classify_webhook(inp.data, "input").event_type == "input"
        (note,) = receiver.under("/notify/x")
        assert note.data == {"step": 2}
        assert receiver.statuses("/webhooks/event/in-1")[-1] == "completed"


async def test_record_event_and_file_download(make_sim: Any, receiver: Receiver) -> None:
    async with make_sim(profile=only("human")) as sim:
        app = sim.create_application()
        ncco = [
            {
                "action": "record",
                "endOnSilence": 3,
                "format": "wav",
                "eventUrl": [receiver.url("/rec/r1")],
            },
            {"action": "talk", "text": "thanks"},
        ]
        await create(sim, app.jwt(), call_body(receiver, "r1", ncco))
        await settle(sim)
        (rec,) = receiver.under("/rec/r1")
        body = rec.data
        assert classify_webhook(body, "event").event_type == "record"
        assert body["recording_url"].startswith(sim.base_url + "/v1/files/")
        async with httpx.AsyncClient() as c:
            ok = await c.get(
                body["recording_url"], headers={"Authorization": f"Bearer {app.jwt()}"}
            )
            assert ok.status_code == 200
            assert ok.headers["content-type"] == "audio/wav"
            assert ok.content[:4] == b"RIFF" and len(ok.content) == body["size"]
            other = sim.create_application("other")
            denied = await c.get(
                body["recording_url"], headers={"Authorization": f"Bearer {other.jwt()}"}
            )
            assert denied.status_code == 401
            missing = await c.get(
                f"{sim.base_url}/v1/files/nope", headers={"Authorization": f"Bearer {app.jwt()}"}
            )
            assert missing.status_code == 404


async def test_connect_creates_second_leg_in_same_conversation(
    make_sim: Any, receiver: Receiver
) -> None:
    async with make_sim(profile=only("human")) as sim:
        app = sim.create_application()
        ncco = [
            {"action": "talk", "text": "connecting"},
            {
                "action": "connect",
                "from": "447700900000",
                "endpoint": [{"type": "phone", "number": "447700900999"}],
                "eventUrl": [receiver.url("/webhooks/event/leg-b")],
            },
        ]
        a_uuid = await create(sim, app.jwt(), call_body(receiver, "leg-a", ncco))
        await settle(sim)
        calls = {c["uuid"]: c for c in sim.ledger()["calls"]}
        (b,) = [c for c in calls.values() if c["leg"] == "connect"]
        a = calls[a_uuid]
        assert b["parent_uuid"] == a_uuid
        assert b["conversation_uuid"] == a["conversation_uuid"]
        assert b["call_ref"] == "leg-b" and b["to"] == "447700900999"
        b_events = receiver.under("/webhooks/event/leg-b")
        assert [e.data["status"] for e in b_events][:3] == ["started", "ringing", "answered"]
        assert b_events[-1].data["status"] == "completed"
        assert all(e.signed_ok for e in b_events)
        # the connect leg counted against CPS: it is in the ledger as a "connect" admission
        connects = [r for r in sim.ledger()["requests"] if r["op"] == "connect"]
        assert len(connects) == 1 and connects[0]["limit"] == "cps"


async def test_connect_over_cps_gives_error_event(make_sim: Any, receiver: Receiver) -> None:
    async with make_sim(profile=only("human"), cps=1) as sim:
        app = sim.create_application()
        ncco = [
            {
                "action": "connect",
                "endpoint": [{"type": "phone", "number": "447700900998"}],
            },
            {"action": "talk", "text": "the connect failed, carrying on"},
        ]
        await create(sim, app.jwt(), call_body(receiver, "cps", ncco))
        await settle(sim)
        events = [e.data for e in receiver.under("/webhooks/event/cps")]
        errors = [e for e in events if "reason" in e and "status" not in e]
        assert len(errors) == 1 and "rate" in errors[0]["reason"]
        assert events[-1]["status"] == "completed"
        assert [r["status"] for r in sim.ledger()["requests"] if r["op"] == "connect"] == [429]


async def test_moderated_conversation(make_sim: Any, receiver: Receiver) -> None:
    """Attendees wait for the moderator; when the moderator (endOnExit) leaves, all are hung up."""
    prof = only(
        "human",
        overrides=[
            {"match": "^447700900001$", "talk": 600},  # attendee would stay for ages
            {"match": "^447700900002$", "ring": 2.0, "talk": 3.0},  # moderator joins late, leaves
        ],
    )
    prof["timing"] = {**prof["timing"], "ring": 0.5}
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        attendee = [
            {
                "action": "conversation",
                "name": "room-1",
                "startOnEnter": False,
                "musicOnHoldUrl": ["https://example.com/moh.mp3"],
            }
        ]
        moderator = [
            {
                "action": "conversation",
                "name": "room-1",
                "startOnEnter": True,
                "endOnExit": True,
                "record": True,
                "eventUrl": [receiver.url("/conv/mod")],
            }
        ]
        await create(sim, app.jwt(), call_body(receiver, "att", attendee, "447700900001"))
        await create(sim, app.jwt(), call_body(receiver, "mod", moderator, "447700900002"))
        await settle(sim)
        calls = {c["call_ref"]: c for c in sim.ledger()["calls"]}
        att, mod = calls["att"], calls["mod"]
        assert att["current_conversation_uuid"] == mod["current_conversation_uuid"]
        assert att["conversation_name"] == "room-1"
        # the attendee was hung up by the platform when the moderator left, not after 600 s
        assert att["disconnected_by"] == "platform"
        assert mod["disconnected_by"] == "user"
        assert att["duration"] < 60
        transfers = [
            e.data
            for e in receiver.under("/webhooks/event/att")
            if "conversation_uuid_to" in e.data
        ]
        assert (
            transfers and transfers[0]["conversation_uuid_to"] == att["current_conversation_uuid"]
        )
        # the moderator asked for a recording: a record event reached its eventUrl
        recs = [e.data for e in receiver.under("/conv/mod") if "recording_url" in e.data]
        assert len(recs) == 1


async def test_machine_detection_hangup(make_sim: Any, receiver: Receiver) -> None:
    async with make_sim(profile=only("machine")) as sim:
        app = sim.create_application()
        body = call_body(receiver, "amd", [{"action": "talk", "text": "hello", "loop": 0}])
        body["machine_detection"] = "hangup"
        await create(sim, app.jwt(), body)
        await settle(sim)
        events = [e.data for e in receiver.under("/webhooks/event/amd")]
        machine = [e for e in events if e.get("status") == "machine"]
        assert len(machine) == 1 and "call_uuid" in machine[0] and "uuid" not in machine[0]
        assert events[-1]["status"] == "completed"
        assert events[-1]["disconnected_by"] == "platform"


async def test_advanced_amd_detect_beep(make_sim: Any, receiver: Receiver) -> None:
    prof = only("machine", amd={"beep_probability": 1.0})
    prof["timing"] = {**prof["timing"], "machine_talk": 30.0}
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        body = call_body(receiver, "beep", [{"action": "talk", "text": "leave a message"}])
        body["advanced_machine_detection"] = {"behavior": "continue", "mode": "detect_beep"}
        await create(sim, app.jwt(), body)
        await settle(sim)
        amd = [
            e.data
            for e in receiver.under("/webhooks/event/beep")
            if e.data.get("status") == "machine"
        ]
        assert [e.get("sub_state") for e in amd] == [None, "beep_start"]


async def test_synchronous_connect_failure_ncco_runs_at_once(
    make_sim: Any, receiver: Receiver
) -> None:
    """A busy B leg's event (eventType synchronous) returns an NCCO that the caller runs next."""
    receiver.on(
        "/webhooks/event/sync-b",
        lambda r: (
            200,
            [
                {"action": "talk", "text": "Sorry, busy"},
                {
                    "action": "notify",
                    "payload": {"vm": 1},
                    "eventUrl": [receiver.url("/notify/vm")],
                },
            ]
            if r.data.get("status") == "busy"
            else None,
        ),
    )
    prof = only("human", overrides=[{"match": "^447700900888$", "outcome": "busy"}])
    prof["timing"] = {**prof["timing"], "talk": 600.0}  # the caller would stay for 10 minutes
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        ncco = [
            {
                "action": "connect",
                "eventType": "synchronous",
                "endpoint": [{"type": "phone", "number": "447700900888"}],
                "eventUrl": [receiver.url("/webhooks/event/sync-b")],
            },
            {"action": "talk", "text": "replaced: never played"},
        ]
        await create(sim, app.jwt(), call_body(receiver, "sync-a", ncco))
        await settle(sim)
        assert [r.data for r in receiver.under("/notify/vm")] == [{"vm": 1}]
        a_events = [e.data for e in receiver.under("/webhooks/event/sync-a")]
        assert a_events[-1]["status"] == "completed"
        # the replacement NCCO ended the call: the platform hung up long before the caller would
        assert a_events[-1]["disconnected_by"] == "platform"
        assert int(a_events[-1]["duration"]) < 60
