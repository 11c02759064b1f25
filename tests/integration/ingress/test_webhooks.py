"""Webhooks end to end against the real broker: stored before the answer, forgeries refused."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.envelopes import EventEnvelope
from orchestrator.config import Settings
from orchestrator.ingress.asgi import IngressOptions
from orchestrator.ingress.signature import sign_for_tests
from tests.integration.ingress.conftest import (
    SECRET,
    AppFactory,
    read_topic,
    signed_headers,
    topic_size,
    with_secrets,
)

pytestmark = pytest.mark.integration

STARTED = {
    "from": "447700900000",
    "to": "447700900001",
    "uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "conversation_uuid": "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "status": "started",
    "direction": "outbound",
    "timestamp": "2020-01-01T12:00:00.000Z",
}
ANSWER = {k: STARTED[k] for k in ("from", "to", "uuid", "conversation_uuid")}


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_signed_event_is_on_the_topic_when_the_answer_comes(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        body = orjson.dumps(STARTED)
        resp = await ing.post("/webhooks/event/call-1", body)
        assert resp.status_code == 204, resp.text
        # The 2xx came after the broker's ack: the record is already in the log.
        assert await topic_size(ing.settings, ing.events_topic) == 1
        [(key, value)] = await read_topic(ing.settings, ing.events_topic)
        assert key == b"call-1"
        env = EventEnvelope.model_validate(value)
        assert env.id == EventEnvelope.make_id("event", "call-1", body)
        assert (env.flow_key, env.call_ref, env.event_type, env.webhook) == (
            "call-1",
            "call-1",
            "started",
            "event",
        )
        assert env.payload == STARTED
        assert env.occurred_at.isoformat().startswith("2020-01-01T12:00:00")


async def test_inbound_event_without_call_ref_is_keyed_by_conversation(
    make_ingress: AppFactory,
) -> None:
    async with make_ingress() as ing:
        assert (await ing.post("/webhooks/event", STARTED)).status_code == 204
        [(key, value)] = await read_topic(ing.settings, ing.events_topic)
        assert key == STARTED["conversation_uuid"].encode()
        assert value["flow_key"] == STARTED["conversation_uuid"]
        assert "call_ref" not in value


async def test_answer_returns_the_flow_ncco_and_stores_the_event(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        resp = await ing.post("/webhooks/answer", ANSWER)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/json"
        ncco = resp.json()
        assert [a["action"] for a in ncco] == ["talk", "input"]  # the IVR, chosen by number
        conv = ANSWER["conversation_uuid"]
        base = ing.settings.public_base
        assert ncco[1]["eventUrl"] == [f"{base}/webhooks/input/{conv}/ivr/menu"]
        [(key, value)] = await read_topic(ing.settings, ing.events_topic)
        assert key == conv.encode()
        assert value["webhook"] == "answer"


async def test_answer_by_get_query_string(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        query = (
            "to=447700900099&from=447700900000&uuid=u-1&conversation_uuid=CON-1"
            "&SipHeader_X-UserId=1938ND9"
        )
        # Vonage signs the (empty) body of a GET; the query string is also accepted as the payload.
        for signed in (b"", query.encode()):
            headers = {"Authorization": f"Bearer {sign_for_tests(SECRET, signed)}"}
            resp = await ing.client.get(f"/webhooks/answer/ref-get?{query}", headers=headers)
            assert resp.status_code == 200, resp.text
            assert resp.json()[0]["text"].startswith("Hello.")  # default flow (unknown number)
        records = await read_topic(ing.settings, ing.events_topic, expect=2)
        assert len(records) == 2
        assert records[0][1]["payload"]["SipHeader_X-UserId"] == "1938ND9"
        # Same payload, so the same deterministic id: consumers deduplicate the repeat.
        assert records[0][1]["id"] == records[1][1]["id"]


async def test_answer_url_with_flow_step_and_ctx_path(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        resp = await ing.post("/webhooks/answer/camp-7/conference/pin", ANSWER)
        assert resp.status_code == 200
        assert resp.json()[0]["text"].startswith("Please enter your PIN")
        url = resp.json()[1]["eventUrl"][0]
        assert url.endswith("/webhooks/input/camp-7/conference/pin")
        # The caller enters the host PIN: the input callback renders the host step.
        inp = {**ANSWER, "dtmf": {"digits": "1234", "timed_out": False}}
        resp = await ing.post("/webhooks/input/camp-7/conference/pin", inp)
        assert resp.status_code == 200
        assert resp.json()[-1]["action"] == "conversation"
        assert resp.json()[-1]["endOnExit"] is True
        records = await read_topic(ing.settings, ing.events_topic, expect=2)
        assert [v["event_type"] for _, v in records] == ["answer", "input"]
        assert {k for k, _ in records} == {b"camp-7"}


async def test_input_without_flow_context_is_stored_and_continues(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        inp = {**ANSWER, "dtmf": {"digits": "5"}}
        resp = await ing.post("/webhooks/input/ref-x", inp)
        assert resp.status_code == 204
        assert await topic_size(ing.settings, ing.events_topic) == 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("forged", "bad_signature"),
        ("wrong_hash", "payload_hash_mismatch"),
        ("stale", "stale"),
        ("missing", "missing"),
    ],
)
async def test_forgeries_get_401_and_nothing_is_stored(
    make_ingress: AppFactory, case: str, reason: str
) -> None:
    async with make_ingress() as ing:
        body = orjson.dumps(STARTED)
        headers = {
            "forged": signed_headers(body, secret="not-the-secret"),
            "wrong_hash": signed_headers(b'{"status":"started"}'),
            "stale": signed_headers(body, iat=time.time() - 3600),
            "missing": {"Content-Type": "application/json"},
        }[case]
        resp = await ing.client.post("/webhooks/event/ref-f", content=body, headers=headers)
        assert resp.status_code == 401
        assert resp.json()["reason"].startswith(reason)
        metrics = (await ing.client.get("/metrics")).text
        assert (
            metric(metrics, "orchestrator_ingress_signature_failures_total", reason=reason) == 1.0
        )
        assert await topic_size(ing.settings, ing.events_topic) == 0


async def test_replayed_jti_gets_401(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        body = orjson.dumps(STARTED)
        headers = signed_headers(body, jti=str(uuid.uuid4()))
        first = await ing.client.post("/webhooks/event/ref-r", content=body, headers=headers)
        assert first.status_code == 204
        again = await ing.client.post("/webhooks/event/ref-r", content=body, headers=headers)
        assert again.status_code == 401
        assert again.json()["reason"].startswith("replayed")
        assert await topic_size(ing.settings, ing.events_topic) == 1


async def test_bad_bodies_are_refused_with_a_reason_and_counted(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        cases: list[tuple[bytes, int, str]] = [
            (b"{not json", 400, "body: not valid JSON"),
            (b"[1, 2]", 400, "must be a JSON object"),
            (orjson.dumps({"status": "bogus", "uuid": "u"}), 422, "status: unknown value"),
            (orjson.dumps({"status": "started"}), 422, "uuid"),
        ]
        for body, status, reason in cases:
            resp = await ing.post("/webhooks/event/ref-b", body)
            assert resp.status_code == status, (body, resp.text)
            assert reason in resp.json()["reason"], resp.text
        big = orjson.dumps({**STARTED, "pad": "x" * 70_000})
        resp = await ing.post("/webhooks/event/ref-b", big)
        assert resp.status_code == 413
        resp = await ing.post("/webhooks/event/bad ref", STARTED)
        assert resp.status_code in (400, 404)
        assert (
            await ing.client.head("/webhooks/answer?uuid=u&conversation_uuid=c")
        ).status_code == 405
        metrics = (await ing.client.get("/metrics")).text
        assert metric(metrics, "orchestrator_ingress_rejected_total", reason="json") == 1.0
        assert metric(metrics, "orchestrator_ingress_rejected_total", reason="schema") == 2.0
        assert metric(metrics, "orchestrator_ingress_rejected_total", reason="too_large") == 1.0
        assert (
            metric(
                metrics,
                "orchestrator_ingress_requests_total",
                endpoint="event",
                method="POST",
                status="422",
            )
            == 2.0
        )
        assert await topic_size(ing.settings, ing.events_topic) == 0


async def test_unsigned_requests_only_with_allow_unsigned(
    make_ingress: AppFactory, kafka_settings: Settings
) -> None:
    opts = IngressOptions(allow_unsigned=True, publish_deadline=5.0)
    settings = with_secrets(kafka_settings, vonage_signature_secret=None)
    async with make_ingress(settings=settings, options=opts) as ing:
        resp = await ing.client.post("/webhooks/event/ref-u", content=orjson.dumps(STARTED))
        assert resp.status_code == 204
        metrics = (await ing.client.get("/metrics")).text
        assert metric(metrics, "orchestrator_ingress_unsigned_accepted_total") == 1.0


async def test_health_ready_metrics_openapi(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        assert (await ing.client.get("/healthz")).json() == {"status": "ok"}
        ready = await ing.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        metrics = await ing.client.get("/metrics")
        assert "orchestrator_ingress_produce_seconds" in metrics.text
        doc = (await ing.client.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.1")
        assert "/v1/commands" in doc["paths"]


async def test_readyz_reports_missing_topics(make_ingress: AppFactory, broker: Any) -> None:
    from tests.conftest import make_settings

    settings = with_secrets(make_settings(broker.bootstrap))  # topics never created
    async with make_ingress(settings=settings) as ing:
        ready = await ing.client.get("/readyz")
        assert ready.status_code == 503
        assert "topics missing" in ready.json()["reason"]
