"""Control API: commands onto voice.commands (right key), call state from voice.state, OpenAPI."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from jsonschema import Draft202012Validator
from openapi_schema_validator import OAS31Validator

from contracts.envelopes import CommandEnvelope, command_key
from handlers.flow import decode_ctx
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_producer
from tests.integration.ingress.conftest import TOKEN, AppFactory, read_topic, with_secrets

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def commands_topic(settings: Settings) -> str:
    return f"{settings.topic_prefix}voice.commands"


async def test_create_call_with_a_flow_is_keyed_by_account(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        req = {
            "kind": "create_call",
            "command_id": "order-42",
            "flow": "ivr",
            "variables": {"company": "Zeta", "unknown": "ignored"},
            "body": {
                "to": [{"type": "phone", "number": "447700900123"}],
                "from": {"type": "phone", "number": "447700900000"},
            },
        }
        resp = await ing.client.post("/v1/commands", json=req, headers=AUTH)
        assert resp.status_code == 202, resp.text
        accepted = resp.json()
        assert accepted["kind"] == "create_call"
        call_ref = accepted["call_ref"]
        assert accepted["flow_key"] == call_ref
        [(key, value)] = await read_topic(ing.settings, commands_topic(ing.settings))
        cmd = CommandEnvelope.model_validate(value)
        assert key == b"acct:default" == command_key(cmd)
        assert cmd.id == accepted["command_id"]
        assert cmd.origin == "control-api"
        base = ing.settings.public_base
        assert cmd.body["event_url"] == [f"{base}/webhooks/event/{call_ref}"]
        [answer_url] = cmd.body["answer_url"]
        parts = urlsplit(answer_url).path.split("/")
        assert parts[:6] == ["", "webhooks", "answer", call_ref, "ivr", "menu"]
        assert decode_ctx(parts[6]) == (0, {"company": "Zeta"})

        # The same command_id is the same command (the dispatcher deduplicates on the id).
        again = await ing.client.post("/v1/commands", json=req, headers=AUTH)
        assert again.json()["command_id"] == accepted["command_id"]

        # The answer URL, when Vonage calls it, renders the flow with the campaign's variable.
        answer = {
            "to": "447700900123",
            "from": "447700900000",
            "uuid": "u",
            "conversation_uuid": "CON-x",
        }
        r = await ing.post(urlsplit(answer_url).path, answer)
        assert r.status_code == 200
        assert r.json()[0]["text"].startswith("Welcome to Zeta.")


async def test_leg_commands_are_keyed_by_flow(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        req = {
            "kind": "hangup",
            "call_ref": "ref-9",
            "call_uuid": "leg-9",
            "body": {"action": "hangup"},
        }
        resp = await ing.client.post("/v1/commands", json=req, headers=AUTH)
        assert resp.status_code == 202, resp.text
        [(key, value)] = await read_topic(ing.settings, commands_topic(ing.settings))
        assert key == b"ref-9"
        assert value["kind"] == "hangup" and value["call_uuid"] == "leg-9"


@pytest.mark.parametrize(
    ("req", "status", "reason"),
    [
        ({"kind": "hangup"}, 422, "call_uuid: required"),
        ({"kind": "fly"}, 422, "kind"),
        ({"kind": "create_call", "body": {"to": [{"type": "phone", "number": "1"}]}}, 422, "ncco"),
        ({"kind": "create_call", "flow": "nope", "body": {"to": [{}]}}, 422, "no flow named"),
        (
            {"kind": "create_call", "body": {"ncco": [{"action": "talk", "text": "x"}]}},
            422,
            "body.to",
        ),
        ({"kind": "hangup", "call_uuid": "u", "extra": 1}, 422, "extra"),
    ],
)
async def test_invalid_commands_get_422(
    make_ingress: AppFactory, req: dict[str, Any], status: int, reason: str
) -> None:
    async with make_ingress() as ing:
        resp = await ing.client.post("/v1/commands", json=req, headers=AUTH)
        assert resp.status_code == status, resp.text
        assert reason in resp.json()["reason"], resp.text


async def test_auth(make_ingress: AppFactory, kafka_settings: Settings) -> None:
    async with make_ingress() as ing:
        body = {"kind": "hangup", "call_uuid": "u"}
        assert (await ing.client.post("/v1/commands", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await ing.client.post("/v1/commands", json=body, headers=wrong)).status_code == 401
        assert (await ing.client.get("/v1/calls/x", headers=wrong)).status_code == 401
        assert (
            await ing.client.post("/v1/commands", content=b"{", headers=AUTH)
        ).status_code == 400
    off = with_secrets(kafka_settings, control_api_token=None)
    async with make_ingress(settings=off) as ing:
        resp = await ing.client.post("/v1/commands", json=body, headers=AUTH)
        assert resp.status_code == 403
        assert "CONTROL_API_TOKEN" in resp.json()["reason"]


async def test_call_state_from_voice_state(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        state_topic = f"{ing.settings.topic_prefix}voice.state"
        producer = make_producer(ing.settings)
        await producer.start()
        try:
            snapshot = {"offset": 17, "state": {"legs": {"u1": "answered"}}}
            await producer.send_and_wait(state_topic, orjson.dumps(snapshot), key=b"flow-a")
            await producer.send_and_wait(
                state_topic, orjson.dumps({"offset": 1, "state": {}}), key=b"flow-b"
            )
            await producer.send_and_wait(state_topic, None, key=b"flow-b")  # evicted

            async def fetch(key: str, want: int) -> Any:
                deadline = time.monotonic() + 15
                while True:
                    resp = await ing.client.get(f"/v1/calls/{key}", headers=AUTH)
                    if resp.status_code == want or time.monotonic() > deadline:
                        return resp
                    await asyncio.sleep(0.2)

            resp = await fetch("flow-a", 200)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["flow_key"] == "flow-a"
            assert body["state"] == snapshot
            assert body["offset"] == 0
            assert (await fetch("flow-b", 404)).status_code == 404
            assert (await fetch("never", 404)).status_code == 404

            newer = {"offset": 18, "state": {"legs": {"u1": "completed"}}}
            await producer.send_and_wait(state_topic, orjson.dumps(newer), key=b"flow-a")
            deadline = time.monotonic() + 15
            while (await fetch("flow-a", 200)).json()["state"] != newer:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        finally:
            await producer.stop()


async def test_openapi_document_is_valid(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        doc = (await ing.client.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    for schema in doc["components"]["schemas"].values():
        OAS31Validator.check_schema(schema)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "responses" in op and op["operationId"], (path, method)
    # A request body example validates against the published schema.
    resolver_doc = {
        "$defs": doc["components"]["schemas"],
        **doc["components"]["schemas"]["CommandRequest"],
    }
    text = orjson.dumps(resolver_doc).decode().replace("#/components/schemas/", "#/$defs/")
    validator = Draft202012Validator(orjson.loads(text))
    validator.validate({"kind": "hangup", "call_uuid": "u"})
    assert list(validator.iter_errors({"kind": "fly"}))
