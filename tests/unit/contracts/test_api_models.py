"""Voice API / Application API request rules, error builders and the schema export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import errors
from contracts.application_api import Application, ApplicationCreateRequest, VoiceWebhook
from contracts.envelopes import ENVELOPES
from contracts.schema import all_models
from contracts.voice_api import (
    Call,
    CreateCallRequest,
    DtmfRequest,
    DtmfSubscribeRequest,
    HangupRequest,
    ListCallsQuery,
    StartStreamRequest,
    StartTalkRequest,
    TransferDestination,
    TransferRequest,
    UpdateCallRequest,
)
from orchestrator.apidocs.export import export_all

TO = [{"type": "phone", "number": "447700900001"}]
FROM = {"type": "phone", "number": "447700900002"}
NCCO = [{"action": "talk", "text": "hi"}]


def create(**kw: Any) -> CreateCallRequest:
    body: dict[str, Any] = {"to": TO, "from": FROM, "ncco": NCCO}
    body.update(kw)
    return CreateCallRequest.model_validate({k: v for k, v in body.items() if v is not None})


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"answer_url": ["https://a.example/answer"]}, "exactly one of ncco or answer_url"),
        ({"ncco": None}, "exactly one of ncco or answer_url"),
        ({"random_from_number": True}, "mutually exclusive"),
        ({"from": None}, "random_from_number"),
        ({"from": None, "random_from_number": False}, "random_from_number"),
        ({"length_timer": 0}, "length_timer"),
        ({"length_timer": 86401}, "length_timer"),
        ({"ringing_timer": 121}, "ringing_timer"),
        ({"answer_method": "GET"}, "answer_method needs answer_url"),
        ({"event_method": "PUT"}, "event_method"),
        ({"machine_detection": "beep"}, "machine_detection"),
        ({"advanced_machine_detection": {"mode": "fast"}}, "advanced_machine_detection.mode"),
        ({"to": []}, "to"),
        ({"to": [{"type": "phone", "number": "+44 7700"}]}, "number"),
        ({"ncco": [{"action": "talk", "text": "x", "bargeIn": True}]}, "bargeIn"),
        ({"event_url": ["ftp://x.example/e"]}, "event_url"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_create_call_rules(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        create(**kw)
    assert needle in str(err.value)


def test_create_call_variants_and_wire_form() -> None:
    by_url = create(ncco=None, answer_url=["https://a.example/answer"], answer_method="POST")
    assert by_url.to_json_dict() == {
        "to": TO,
        "from": FROM,
        "answer_url": ["https://a.example/answer"],
        "answer_method": "POST",
    }
    random = create(**{"from": None, "random_from_number": True, "length_timer": 86400})
    assert random.to_json_dict()["random_from_number"] is True
    sip_from = create(**{"from": {"type": "phone", "number": "sip:me@pbx.example.org"}})
    assert sip_from.from_ is not None and sip_from.from_.number.startswith("sip:")
    assert create().to_json_dict()["ncco"] == NCCO


def test_update_call_bodies() -> None:
    assert HangupRequest().to_json_dict() == {"action": "hangup"}
    t = TransferRequest(destination=TransferDestination(url=["https://a.example/ncco"]))
    assert t.to_json_dict() == {
        "action": "transfer",
        "destination": {"type": "ncco", "url": ["https://a.example/ncco"]},
    }
    for action in ["hangup", "mute", "unmute", "earmuff", "unearmuff"]:
        assert UpdateCallRequest.model_validate({"action": action}).to_json_dict() == {
            "action": action
        }
    with pytest.raises(ValidationError, match="exactly one of ncco or url"):
        TransferDestination(url=["https://a.example/n"], ncco=NCCO)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        UpdateCallRequest.model_validate({"action": "explode"})


def test_talk_stream_dtmf_subscribe() -> None:
    assert StartTalkRequest(text="hi", level=0.5).to_json_dict() == {"text": "hi", "level": "0.5"}
    with pytest.raises(ValidationError, match="level"):
        StartTalkRequest(text="hi", level="2")
    with pytest.raises(ValidationError, match="language"):
        StartTalkRequest(text="hi", language="xx-XX")
    with pytest.raises(ValidationError, match="1500"):
        StartTalkRequest(text="x" * 1501)
    with pytest.raises(ValidationError, match="stream_url"):
        StartStreamRequest(stream_url=[])
    with pytest.raises(ValidationError, match="digits"):
        DtmfRequest(digits="12a")
    assert DtmfSubscribeRequest(event_url=["https://a.example/dtmf"]).to_json_dict()
    with pytest.raises(ValidationError):
        DtmfSubscribeRequest(event_url=[])


def test_call_object_normalises() -> None:
    call = Call.model_validate(
        {
            "_links": {"self": {"href": "/v1/calls/u"}},
            "uuid": "u",
            "status": "completed",
            "price": 0.25,
            "duration": "7",
            "start_time": "2024-01-01 10:00:00",
        }
    )
    assert call.price == "0.25" and call.duration == 7
    assert call.start_time is not None and call.start_time.tzinfo is not None
    assert call.links is not None and call.links.self_ is not None
    with pytest.raises(ValidationError):
        Call.model_validate({"uuid": "u", "status": "exploded"})


def test_list_calls_query_params() -> None:
    q = ListCallsQuery(
        status="completed", page_size=100, date_start="2024-01-01T00:00:00Z", order="desc"
    )
    assert q.to_params() == {
        "status": "completed",
        "page_size": "100",
        "date_start": "2024-01-01T00:00:00Z",
        "order": "desc",
    }
    with pytest.raises(ValidationError):
        ListCallsQuery(page_size=101)


def test_application_timeouts_and_aliases() -> None:
    hook = VoiceWebhook.model_validate(
        {"address": "https://a.example/e", "connection_timeout": 500}
    )
    assert hook.connect_timeout == 500
    assert hook.model_dump(by_alias=True, exclude_unset=True) == {
        "address": "https://a.example/e",
        "connect_timeout": 500,
    }
    for bad in [
        {"connect_timeout": 299},
        {"connect_timeout": 1001},
        {"socket_timeout": 999},
        {"socket_timeout": 10001},
    ]:
        with pytest.raises(ValidationError):
            VoiceWebhook.model_validate({"address": "https://a.example/e", **bad})

    def app(voice: dict[str, Any]) -> dict[str, Any]:
        return {"name": "n", "capabilities": {"voice": voice}}

    ok = ApplicationCreateRequest.model_validate(
        app(
            {"webhooks": {"event_url": {"address": "https://a.example/e", "socket_timeout": 10000}}}
        )
    )
    assert (
        ok.to_json_dict()["capabilities"]["voice"]["webhooks"]["event_url"]["socket_timeout"]
        == 10000
    )
    for bad_voice in [
        {"webhooks": {"answer_url": {"address": "https://a.example/a", "socket_timeout": 6000}}},
        {"conversations_ttl": 9001},
        {"leg_persistence_time": 32},
        {"region": "mars-1"},
        {"webhooks": {"answer_url": {"address": "not a url"}}},
    ]:
        with pytest.raises(ValidationError):
            ApplicationCreateRequest.model_validate(app(bad_voice))
    with pytest.raises(ValidationError, match="empty"):
        ApplicationCreateRequest.model_validate({"name": "n", "capabilities": {"vbc": {"x": 1}}})
    with pytest.raises(ValidationError, match="name"):
        ApplicationCreateRequest.model_validate({"name": ""})
    created = Application.model_validate(
        {"id": "i", "name": "n", "keys": {"public_key": "p", "private_key": "k"}}
    )
    assert created.keys is not None and created.keys.private_key == "k"


@pytest.mark.parametrize(
    ("builder", "title", "anchor"),
    [
        (errors.unauthorized, "Unauthorized", "unauthorized"),
        (errors.forbidden, "Forbidden", "forbidden"),
        (lambda **kw: errors.not_found("abc", **kw), "Not Found", "not-found"),
        (lambda **kw: errors.wrong_verb("PATCH", **kw), "Request method not allowed", "wrong-verb"),
        (errors.accept_header, "Invalid Accept header", "accept-header"),
        (errors.content_type_header, "Unsupported Content-Type header", "content-type-header"),
        (errors.rate_limited, "Rate Limit Hit", "rate-limit"),
        (lambda **kw: errors.bad_request("too early", **kw), "Bad Request", "bad-request"),
        (
            lambda **kw: errors.payload_validation([("name", "required")], **kw),
            "Bad Request",
            "payload-validation",
        ),
        (errors.invalid_json, "Invalid JSON", "invalid-json"),
    ],
)
def test_error_builders_are_problem_details(builder: Any, title: str, anchor: str) -> None:
    body = builder(instance="trace-1")
    parsed = errors.ProblemDetails.model_validate(body)
    assert parsed.title == title and parsed.anchor == anchor and parsed.instance == "trace-1"
    assert json.loads(json.dumps(body)) == body
    assert builder()["instance"] != builder()["instance"]  # fresh trace id each time


def test_error_helpers() -> None:
    assert errors.internal_error(instance="i") == {
        "type": "https://developer.vonage.com/api-errors",
        "title": "Internal Server Error",
        "instance": "i",
    }
    assert set(errors.BY_STATUS) >= {401, 403, 405, 406, 415, 429, 500}
    assert errors.BY_STATUS[429]()["title"] == "Rate Limit Hit"
    v = errors.payload_validation([("capabilities.voice.region", "must be one of ...")])
    assert v["invalid_parameters"] == [
        {"name": "capabilities.voice.region", "reason": "must be one of ..."}
    ]
    assert errors.parse_problem("nope") is None
    assert errors.parse_problem({"Error": "Bad Request"}) is not None


def test_schema_export(tmp_path: Path) -> None:
    models = all_models()
    for env in ENVELOPES:
        assert models[env.__name__] is env
    for name in [
        "Ncco",
        "CreateCallRequest",
        "CompletedEvent",
        "AnswerWebhook",
        "ProblemDetails",
        "Application",
    ]:
        assert name in models
    written = export_all(tmp_path / "out")
    assert len(written) == len(models) + 1  # and the dial ledger's entry, from the dispatcher
    index = json.loads((tmp_path / "out" / "index.json").read_text())["schemas"]
    assert set(index) == {*models, "LedgerEntry"}
    for path in written:
        schema = json.loads(path.read_text())
        assert schema["title"]
    ncco = json.loads((tmp_path / "out" / "Ncco.schema.json").read_text())
    assert ncco["type"] == "array" and ncco["minItems"] == 1
    # Deterministic: a second export is byte-identical.
    again = export_all(tmp_path / "again")
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]
