"""(a) Every file in the shared Vonage examples parses into the model it is an example of.

The mapping is explicit (file name -> contract) so that a new example file fails
``test_every_example_is_mapped`` until someone decides what it is. Files that are not a webhook,
NCCO, request, response or error body are listed in ``NOT_CONTRACTS`` with the reason.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from contracts.webhooks import classify_webhook
from tests.shared_ref import EXAMPLES_DIR, example_names, require_shared

from ._parse import parse_as

#: file -> contract name (see ``_parse.parse_as``; webhooks are classified, not forced).
EXAMPLES: dict[str, str] = {
    # webhooks
    "answer_webhook_post_body.json": "AnswerWebhook",
    "event_started.json": "StartedEvent",
    "event_started_2021_doc.json": "StartedEvent",
    "voice_v2_call_placed_webhook.json": "StartedEvent",
    "event_ringing.json": "RingingEvent",
    "event_answered.json": "AnsweredEvent",
    "event_busy.json": "BusyEvent",
    "event_cancelled.json": "CancelledEvent",
    "event_unanswered.json": "UnansweredEvent",
    "event_websocket_unanswered.json": "UnansweredEvent",
    "event_rejected.json": "RejectedEvent",
    "event_failed.json": "FailedEvent",
    "event_timeout.json": "TimeoutEvent",
    "event_disconnected.json": "DisconnectedEvent",
    "event_websocket_disconnected.json": "DisconnectedEvent",
    "event_completed.json": "CompletedEvent",
    "event_human.json": "AmdEvent",
    "event_machine.json": "AmdEvent",
    "event_input_dtmf.json": "InputEvent",
    "event_input_speech.json": "InputEvent",
    "event_record.json": "RecordEvent",
    "event_record_transcribed.json": "TranscriptionEvent",
    "event_transfer.json": "TransferEvent",
    "event_transfer_2021_doc.json": "TransferEvent",
    "event_error.json": "ErrorEvent",
    "event_payment.json": "PaymentEvent",
    "fallback_added_fields.json": "FallbackWebhook",
    # NCCOs and NCCO fragments
    "ncco_connect_app.json": "Ncco",
    "ncco_connect_fallback_synchronous.json": "Ncco",
    "ncco_connect_phone_dtmfanswer.json": "Ncco",
    "ncco_connect_sip_headers.json": "Ncco",
    "ncco_connect_vbc.json": "Ncco",
    "ncco_connect_websocket_synchronous.json": "Ncco",
    "ncco_conversation_attendee.json": "Ncco",
    "ncco_conversation_moderator.json": "Ncco",
    "ncco_conversation_standard.json": "Ncco",
    "ncco_input_ivr.json": "Ncco",
    "ncco_notify.json": "Ncco",
    "ncco_pay.json": "Ncco",
    "ncco_record_multichannel.json": "Ncco",
    "ncco_record_then_connect.json": "Ncco",
    "ncco_record_transcription_custom.json": "Ncco",
    "ncco_record_transcription_default.json": "Ncco",
    "ncco_stream_bargein_input.json": "Ncco",
    "ncco_talk_bargein_input.json": "Ncco",
    "ncco_talk_bargein_input_speech_dtmf.json": "Ncco",
    "ncco_talk_ssml.json": "Ncco",
    "ncco_pay_prompt_errors_fragment.json": "PayPrompt",
    "websocket_endpoint_with_authorization_oas110.json": "WebsocketEndpoint",
    # Voice API requests / responses
    "create_call_request_advanced_amd_oas110.json": "CreateCallRequest",
    "create_call_request_ncco_spec.json": "CreateCallRequest",
    "create_call_response_201.json": "CreateCallResponse",
    "get_call_response_200.json": "Call",
    "list_calls_response_200.json": "ListCallsResponse",
    "update_call_transfer_ncco_spec.json": "UpdateCallRequest",
    "update_call_transfer_url_spec.json": "UpdateCallRequest",
    "subscribe_dtmf_request_oas110.json": "DtmfSubscribeRequest",
    "dtmf_response_200.json": "CallActionResponse",
    "talk_start_response_200.json": "CallActionResponse",
    "talk_stop_response_200.json": "CallActionResponse",
    "stream_start_response_200.json": "CallActionResponse",
    "stream_stop_response_200.json": "CallActionResponse",
    # Application API
    "application_create_response_201_options.json": "Application",
    "application_get_response_200.json": "Application",
    "application_list_response_200.json": "ApplicationListResponse",
    "application_update_signed_callbacks_request.json": "ApplicationUpdateRequest",
    # errors
    "application_error_400_payload_validation.json": "ProblemDetails",
    "error_400_sdk_fixture.json": "ProblemDetails",
    "error_401.json": "ProblemDetails",
    "error_401_spec.json": "ProblemDetails",
    "error_403.json": "ProblemDetails",
    "error_404_conversation_api.json": "ProblemDetails",
    "error_404_spec.json": "ProblemDetails",
    "error_405_spec.json": "ProblemDetails",
    "error_406_spec.json": "ProblemDetails",
    "error_415_spec.json": "ProblemDetails",
    "error_429.json": "ProblemDetails",
    "error_500.json": "ProblemDetails",
}

#: Files that are an HTTP request line, not a body: parsed specially below.
ANSWER_GET_LINES = {"answer_webhook_get_request_line.json"}

NOT_CONTRACTS: dict[str, str] = {
    "SOURCES.md": "provenance notes for the examples, not a payload",
    "signed_webhook_jwt_sample.json": "decoded JWT header+claims of a signed webhook; checked by "
    "the ingress signature verifier, not a body model",
    "transcription_file_content.json": "content of the transcription file downloaded from "
    "transcription_url; we store the URL, never parse the file",
    "websocket_first_message.json": "in-band websocket text frame (not HTTP, not handled here)",
    "websocket_dtmf_message.json": "in-band websocket text frame (not HTTP, not handled here)",
}


def test_every_example_is_mapped() -> None:
    require_shared()
    known = set(EXAMPLES) | ANSWER_GET_LINES | set(NOT_CONTRACTS)
    unmapped = sorted(set(example_names()) - known)
    assert not unmapped, f"decide what these shared examples are: {unmapped}"
    stale = sorted(known - set(example_names()))
    assert not stale, f"mapped but no longer in {EXAMPLES_DIR}: {stale}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_parses(name: str) -> None:
    require_shared()
    body = json.loads((EXAMPLES_DIR / name).read_text())
    parsed = parse_as(EXAMPLES[name], body)
    assert type(parsed).__name__ == EXAMPLES[name]


def test_answer_get_request_line_parses() -> None:
    require_shared()
    raw = json.loads((EXAMPLES_DIR / "answer_webhook_get_request_line.json").read_text())
    query = dict(parse_qsl(urlsplit(raw["request_line"]).query))
    hook = classify_webhook(query, "answer")
    assert hook.event_type == "answer"
    assert hook.leg_uuid == query["uuid"]
    assert hook.sip_headers == {"X-UserId": "1938ND9"}  # type: ignore[attr-defined]
