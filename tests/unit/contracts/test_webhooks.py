"""Webhook classification and the normalisations Vonage's inconsistencies need (DIGEST §4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import webhooks as w
from contracts.webhooks import WebhookValidationError, classify_webhook

LEG = "0b7e1c2d-3f4a-4b5c-9d6e-7f8091a2b3c4"
CONV = "CON-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def ev(status: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uuid": LEG,
        "conversation_uuid": CONV,
        "from": "447700900001",
        "to": "447700900002",
        "timestamp": "2025-01-02T03:04:05.678Z",
    }
    if status is not None:
        body["status"] = status
    body.update(extra)
    return body


@pytest.mark.parametrize(
    ("status", "model"),
    [
        ("started", w.StartedEvent),
        ("ringing", w.RingingEvent),
        ("answered", w.AnsweredEvent),
        ("busy", w.BusyEvent),
        ("cancelled", w.CancelledEvent),
        ("unanswered", w.UnansweredEvent),
        ("rejected", w.RejectedEvent),
        ("failed", w.FailedEvent),
        ("timeout", w.TimeoutEvent),
        ("disconnected", w.DisconnectedEvent),
        ("completed", w.CompletedEvent),
    ],
)
def test_status_events(status: str, model: type[w.Webhook]) -> None:
    hook = classify_webhook(ev(status), "event")
    assert type(hook) is model
    assert hook.event_type == status
    assert hook.leg_uuid == LEG
    assert hook.conversation_uuid == CONV
    assert hook.timestamp == datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.mark.parametrize("status", ["human", "machine"])
def test_amd_uses_call_uuid(status: str) -> None:
    body = ev(status)
    body["call_uuid"] = body.pop("uuid")
    hook = classify_webhook(body)
    assert isinstance(hook, w.AmdEvent)
    assert hook.event_type == status
    assert hook.leg_uuid == LEG


def test_amd_accepts_uuid_but_needs_one() -> None:
    assert classify_webhook(ev("machine", sub_state="beep_timeout")).leg_uuid == LEG
    body = ev("human")
    del body["uuid"]
    with pytest.raises(WebhookValidationError, match="call_uuid"):
        classify_webhook(body)


def test_completed_normalises_money_duration_and_times() -> None:
    hook = classify_webhook(
        ev(
            "completed",
            duration="61",
            rate=0.0045,
            price="0.00457500",
            start_time="2025-01-02 03:04:05",
            end_time="2025-01-02T03:05:06.000Z",
        )
    )
    assert isinstance(hook, w.CompletedEvent)
    assert hook.duration == 61
    assert hook.rate == "0.0045"
    assert hook.price == "0.00457500"
    assert hook.start_time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert hook.end_time == datetime(2025, 1, 2, 3, 5, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("duration", "abc", "duration"),
        ("duration", "1.5", "duration"),
        ("duration", -3, "duration"),
        ("price", "free", "price"),
        ("price", True, "price"),
        ("start_time", "yesterday", "start_time"),
    ],
)
def test_completed_rejects_garbage(field: str, value: object, needle: str) -> None:
    with pytest.raises(WebhookValidationError) as err:
        classify_webhook(ev("completed", **{field: value}))
    assert needle in str(err.value)
    assert err.value.field == needle


def test_answered_empty_values_are_none() -> None:
    hook = classify_webhook(ev("answered", start_time="", rate="", network=""))
    assert isinstance(hook, w.AnsweredEvent)
    assert hook.start_time is None and hook.rate is None


def test_inference_without_status() -> None:
    assert type(classify_webhook(ev(dtmf={"digits": "12", "timed_out": True}))) is w.InputEvent
    rec = {
        "recording_url": "https://api.nexmo.com/v1/files/x",
        "recording_uuid": "r1",
        "conversation_uuid": CONV,
        "size": "12",
    }
    hook = classify_webhook(rec, "recording")
    assert isinstance(hook, w.RecordEvent) and hook.size == 12 and hook.leg_uuid is None
    moved = {"uuid": LEG, "conversation_uuid_from": CONV, "conversation_uuid_to": "CON-b"}
    hook = classify_webhook(moved)
    assert isinstance(hook, w.TransferEvent)
    assert hook.conversation_uuid == "CON-b"
    # conversation_uuid is derived, not invented in the stored body
    assert "conversation_uuid" not in hook.model_dump(exclude_unset=True)
    assert type(classify_webhook({"reason": "boom", "conversation_uuid": CONV})) is w.ErrorEvent


def test_transfer_type_form_and_status_form() -> None:
    body = {"uuid": LEG, "conversation_uuid_from": "CON-a", "conversation_uuid_to": "CON-b"}
    assert classify_webhook({**body, "type": "transfer"}).event_type == "transfer"
    assert classify_webhook({**body, "status": "transfer"}).event_type == "transfer"


def test_transcription_and_payment() -> None:
    tr = classify_webhook(
        {
            "conversation_uuid": CONV,
            "recording_uuid": "r1",
            "status": "transcribed",
            "type": "record",
            "transcription_url": "https://api.nexmo.com/v1/files/t",
        }
    )
    assert tr.event_type == "transcribed"
    pay = classify_webhook(ev("success"))
    assert isinstance(pay, w.PaymentEvent) and pay.event_type == "payment"


def test_answer_keeps_sip_headers_and_custom_data() -> None:
    body = {
        "uuid": LEG,
        "conversation_uuid": CONV,
        "to": "442079460000",
        "SipHeader_X-UserId": "1938ND9",
        "custom_data": '{"a": 1}',
    }
    hook = classify_webhook(body, "answer")
    assert isinstance(hook, w.AnswerWebhook)
    assert hook.sip_headers == {"X-UserId": "1938ND9"}
    assert hook.custom_data == {"a": 1}
    assert hook.model_dump(by_alias=True)["SipHeader_X-UserId"] == "1938ND9"
    # without a hint, an answer-shaped body (no status, no timestamp) is still an answer
    plain = {k: v for k, v in body.items() if k != "custom_data"}
    assert classify_webhook(plain).event_type == "answer"


def test_notify_and_fallback_follow_the_endpoint() -> None:
    hook = classify_webhook({"foo": "bar", "status": "whatever"}, "notify")
    assert isinstance(hook, w.NotifyWebhook) and hook.payload["foo"] == "bar"
    fb = classify_webhook(
        ev("started", reason="Connection closed.", original_request={"url": "u", "type": "event"}),
        "fallback",
    )
    assert isinstance(fb, w.FallbackWebhook)
    assert fb.event_type == "fallback" and fb.leg_uuid == LEG
    assert fb.original_request is not None and fb.original_request.type == "event"
    # without a hint, original_request marks a fallback
    assert classify_webhook({"reason": "x", "original_request": {}}).event_type == "fallback"


def test_extra_fields_are_kept() -> None:
    hook = classify_webhook(ev("ringing", brand_new_field={"x": 1}))
    assert hook.model_dump()["brand_new_field"] == {"x": 1}


@pytest.mark.parametrize(
    ("body", "kind", "needle"),
    [
        ([], None, "JSON object"),
        ("x", "event", "JSON object"),
        ({"status": ["started"]}, None, "status"),
        ({"status": "exploded", "uuid": LEG}, None, "status: unknown"),
        ({"type": 3}, None, "type"),
        ({"type": "mystery"}, None, "type: unknown"),
        ({"uuid": LEG}, "event", "status"),
        (ev("started", uuid=""), None, "uuid"),
        ({**ev("started"), "conversation_uuid": None}, None, "conversation_uuid"),
        ({"status": "started"}, "bogus-kind", "kind"),
        (
            {"status": "completed", "uuid": LEG, "conversation_uuid": CONV, "direction": "x"},
            None,
            "direction",
        ),
    ],
)
def test_invalid_bodies_say_why(body: Any, kind: str | None, needle: str) -> None:
    with pytest.raises(WebhookValidationError) as err:
        classify_webhook(body, kind)
    assert needle in str(err.value)
    assert len(str(err.value)) < 300
