"""Every real Vonage payload example, posted to its endpoint, is accepted and stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from contracts.envelopes import EventEnvelope
from orchestrator.ingress.signature import sign_for_tests
from tests.integration.ingress.conftest import SECRET, AppFactory, read_topic

pytestmark = pytest.mark.integration

SHARED_EXAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "vonage" / "examples"

# Our own fixtures: shapes the documented examples do not cover.
OWN: list[tuple[str, dict[str, Any]]] = [
    (
        "/webhooks/answer/own-1",
        {
            "to": "447700900001",
            "from_user": "alice",
            "uuid": "u-own-1",
            "conversation_uuid": "CON-own-1",
            "region_url": "https://api-eu-1.nexmo.com",
            "custom_data": {"customer_id": "C1"},
            "endpoint_type": "app",
        },
    ),
    (
        "/webhooks/event/own-2",
        {
            "uuid": "u-own-2",
            "conversation_uuid": "CON-own-2",
            "status": "completed",
            "duration": 12,
            "price": 0.0045,
            "rate": "0.00450000",
            "start_time": "2024-04-19 01:34:18",
            "end_time": "2024-04-19T01:34:30.000Z",
            "disconnected_by": "user",
            "sip_code": 200,
            "timestamp": "2024-04-19T01:34:30.100Z",
        },
    ),
    (
        "/webhooks/event/own-3",
        {
            "uuid": "u-own-3",
            "conversation_uuid": "CON-own-3",
            "status": "machine",
            "sub_state": "beep_start",
        },
    ),
    ("/webhooks/notify/own-4", {"foo": "bar", "conversation_uuid": "CON-own-4"}),
    ("/webhooks/notify/own-5/ivr/goodbye", {"step": "done"}),
    (
        "/webhooks/event/own-6",
        {
            "type": "transfer",
            "uuid": "u-own-6",
            "conversation_uuid_from": "CON-a",
            "conversation_uuid_to": "CON-b",
        },
    ),
    (
        "/webhooks/input/own-7/ivr/menu",
        {
            "uuid": "u-own-7",
            "conversation_uuid": "CON-own-7",
            "speech": {"timeout_reason": "start_timeout", "results": []},
            "dtmf": {"digits": None, "timed_out": True},
        },
    ),
]


def _endpoint(name: str) -> str:
    if name.startswith("event_input"):
        return "input"
    if name.startswith("event_record"):
        return "recording"
    return "event"


def shared_cases() -> list[tuple[str, str, bytes, bytes]]:
    """(name, path, body-or-query, signed bytes) for each webhook example on disk."""
    if not SHARED_EXAMPLES.is_dir():
        return []
    cases: list[tuple[str, str, bytes, bytes]] = []
    answer_body = (SHARED_EXAMPLES / "answer_webhook_post_body.json").read_bytes()
    for path in sorted(SHARED_EXAMPLES.glob("*.json")):
        name = path.stem
        raw = path.read_bytes()
        if name.startswith("event_") or name == "voice_v2_call_placed_webhook":
            kind = _endpoint(name)
            cases.append((name, f"/webhooks/{kind}/ex-{name}", raw, raw))
            if kind == "event":  # and as an inbound call's event (keyed by conversation_uuid)
                cases.append((f"{name}@inbound", "/webhooks/event", raw, raw))
        elif name == "answer_webhook_post_body":
            cases.append((name, "/webhooks/answer", raw, raw))
            cases.append((f"{name}@ref", "/webhooks/answer/ex-answer", raw, raw))
        elif name == "answer_webhook_get_request_line":
            line = json.loads(raw)["request_line"]
            query = urlsplit(line).query
            cases.append((name, f"GET /webhooks/answer?{query}", b"", b""))
        elif name == "fallback_added_fields":
            merged = orjson.dumps({**json.loads(answer_body), **json.loads(raw)})
            cases.append((name, "/webhooks/fallback", merged, merged))
            cases.append((f"{name}@ref", "/webhooks/fallback/ex-fallback", merged, merged))
    return cases


async def test_every_shared_example_is_accepted_and_stored(make_ingress: AppFactory) -> None:
    cases = shared_cases()
    if not cases:
        pytest.skip(f"Vonage examples not found at {SHARED_EXAMPLES} (shared folder absent)")
    assert len(cases) >= 25
    async with make_ingress() as ing:
        expected_ids = set()
        for name, target, body, signed in cases:
            headers = {"Authorization": f"Bearer {sign_for_tests(SECRET, signed)}"}
            if target.startswith("GET "):
                resp = await ing.client.get(target[4:], headers=headers)
                query = urlsplit(target[4:]).query.encode()
                expected_ids.add(
                    EventEnvelope.make_id(
                        "answer", "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab", query
                    )
                )
            else:
                headers["Content-Type"] = "application/json"
                resp = await ing.client.post(target, content=body, headers=headers)
            assert resp.status_code in (200, 204), f"{name}: {resp.status_code} {resp.text}"
            if resp.status_code == 200:
                assert isinstance(resp.json(), list) and resp.json(), name
        records = await read_topic(ing.settings, ing.events_topic, expect=len(cases))
        assert len(records) == len(cases)
        envelopes = [EventEnvelope.model_validate(v) for _, v in records]
        assert expected_ids <= {e.id for e in envelopes}
        assert all(k == e.flow_key.encode() for (k, _), e in zip(records, envelopes, strict=True))


async def test_own_fixtures_are_accepted_and_stored(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        for path, payload in OWN:
            resp = await ing.post(path, payload)
            assert resp.status_code in (200, 204), f"{path}: {resp.text}"
        records = await read_topic(ing.settings, ing.events_topic, expect=len(OWN))
        assert len(records) == len(OWN)
        by_key = {k.decode(): v for k, v in records if k}
        assert by_key["own-2"]["event_type"] == "completed"
        assert by_key["own-3"]["event_type"] == "machine"
        assert by_key["own-6"]["event_type"] == "transfer"
        assert by_key["own-7"]["event_type"] == "input"
