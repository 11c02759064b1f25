"""Control API request -> command envelope (pure part), and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from openapi_schema_validator import OAS31Validator

from contracts.envelopes import CommandKind, command_key
from handlers.flow import decode_ctx
from orchestrator.ingress.control_api import CommandRequest, ControlApi
from orchestrator.ingress.flows import load_flows
from orchestrator.ingress.metrics import IngressMetrics
from orchestrator.ingress.openapi import build_openapi
from orchestrator.ingress.publish import NullPublisher

FLOWS = Path(__file__).resolve().parents[3] / "examples" / "flows"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TO = [{"type": "phone", "number": "447700900123"}]


@pytest.fixture(scope="module")
def api() -> ControlApi:
    return ControlApi(
        token="t",
        public_base="https://hooks.example.com",
        default_account="acme",
        commands_topic="voice.commands",
        publisher=NullPublisher(),
        flows=load_flows(FLOWS),
        state=None,
        metrics=IngressMetrics(),
    )


def build(api: ControlApi, **req: object) -> object:
    return api.build(CommandRequest.model_validate(req), NOW)


def test_create_call_with_flow(api: ControlApi) -> None:
    cmd = build(
        api, kind="create_call", flow="voicebot", variables={"customer_id": "C9"}, body={"to": TO}
    )
    assert cmd.kind == CommandKind.CREATE_CALL  # type: ignore[attr-defined]
    ref = cmd.call_ref  # type: ignore[attr-defined]
    assert ref.startswith("api-") and cmd.flow_key == ref  # type: ignore[attr-defined]
    assert command_key(cmd) == b"acct:acme"  # type: ignore[arg-type]
    body = cmd.body  # type: ignore[attr-defined]
    assert body["event_url"] == [f"https://hooks.example.com/webhooks/event/{ref}"]
    path = urlsplit(body["answer_url"][0]).path.split("/")
    assert path[2:6] == ["answer", ref, "voicebot", "bot"]
    assert decode_ctx(path[6]) == (0, {"customer_id": "C9"})


def test_create_call_keeps_given_urls_and_ref(api: ControlApi) -> None:
    cmd = build(
        api,
        kind="create_call",
        call_ref="mine-1",
        account="other",
        body={"to": TO, "ncco": [{"action": "talk", "text": "hi"}], "event_url": ["https://x/e"]},
    )
    assert cmd.call_ref == "mine-1"  # type: ignore[attr-defined]
    assert cmd.body["event_url"] == ["https://x/e"]  # type: ignore[attr-defined]
    assert command_key(cmd) == b"acct:other"  # type: ignore[arg-type]


def test_command_ids_are_deterministic_with_a_key_and_unique_without(api: ControlApi) -> None:
    a = build(api, kind="hangup", call_uuid="u", command_id="k-1")
    b = build(api, kind="hangup", call_uuid="u", command_id="k-1")
    c = build(api, kind="hangup", call_uuid="u")
    d = build(api, kind="hangup", call_uuid="u")
    assert a.id == b.id  # type: ignore[attr-defined]
    assert c.id != d.id  # type: ignore[attr-defined]


def test_leg_command_keys(api: ControlApi) -> None:
    cmd = build(api, kind="transfer", call_ref="r-1", call_uuid="leg", body={"action": "transfer"})
    assert command_key(cmd) == b"r-1"  # type: ignore[arg-type]
    only_uuid = build(api, kind="mute", call_uuid="leg-2")
    assert only_uuid.flow_key == "leg-2"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("req", "message"),
    [
        ({"kind": "hangup"}, "call_uuid: required for hangup"),
        ({"kind": "create_call", "body": {"to": TO}}, "needs ncco or answer_url"),
        ({"kind": "create_call", "flow": "ivr", "body": {"ncco": [], "to": TO}}, "not both"),
        ({"kind": "create_call", "flow": "zzz", "body": {"to": TO}}, "no flow named 'zzz'"),
        ({"kind": "create_call", "body": {"answer_url": ["https://x"]}}, "body.to"),
    ],
)
def test_refusals(api: ControlApi, req: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(api, **req)


def test_openapi_schemas_are_valid() -> None:
    doc = build_openapi()
    assert doc["openapi"] == "3.1.0"
    for schema in doc["components"]["schemas"].values():
        OAS31Validator.check_schema(schema)
    refs = {"CommandRequest", "CommandAccepted", "CallState", "Problem"}
    assert refs <= set(doc["components"]["schemas"])
    ops = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ops) == len(set(ops)), "operationIds are unique"
