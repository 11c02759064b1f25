"""Flow rendering (pure): branches, retries, connect/conversation/record/notify, variables, URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.flow import Flow, parse_flow
from contracts.ncco import parse_ncco
from handlers.flow import (
    MAX_CTX_CHARS,
    FlowRenderError,
    decode_ctx,
    encode_ctx,
    render_answer,
    render_event,
    render_fallback,
    render_input,
    render_notify,
    render_step,
    webhook_url,
)

BASE = "https://hooks.example.com"
REF = "ref-123"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "flows"
ANSWER = {
    "to": "447700900001",
    "from": "447700900999",
    "uuid": "leg-1",
    "conversation_uuid": "CON-1",
}


def load(name: str) -> Flow:
    return parse_flow((EXAMPLES / name).read_text(), source=name)


IVR = load("ivr.yaml")
CONF = load("moderated-conference.yaml")
BOT = load("stream-to-bot.yaml")


def urls(ncco: list[dict[str, Any]] | None) -> Iterator[str]:
    """Every webhook URL an NCCO hands to Vonage."""

    def walk(value: Any, key: str = "") -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, k)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v, key)
        elif key == "eventUrl" and isinstance(value, str):
            yield value

    yield from walk(ncco or [])


def assert_urls_carry_ref(ncco: list[dict[str, Any]] | None, ref: str = REF) -> None:
    for url in urls(ncco):
        assert url.startswith(f"{BASE}/webhooks/"), url
        assert url.split("/")[5] == ref, url


def dtmf(digits: str, timed_out: bool = False) -> dict[str, Any]:
    return {**ANSWER, "dtmf": {"digits": digits, "timed_out": timed_out}}


def speech(text: str) -> dict[str, Any]:
    return {**ANSWER, "speech": {"results": [{"text": text, "confidence": "0.9"}]}}


def ivr_input(payload: dict[str, Any], attempt: int = 0) -> Any:
    return render_input(IVR, "menu", base_url=BASE, call_ref=REF, payload=payload, attempt=attempt)


def test_answer_renders_the_menu_with_an_input_url_in_the_call_ref_path() -> None:
    r = render_answer(IVR, base_url=BASE, call_ref=REF, payload=ANSWER)
    assert r.step == "menu"
    assert [a["action"] for a in r.ncco or []] == ["talk", "input"]
    assert r.ncco is not None
    assert r.ncco[0]["text"].startswith("Welcome to Acme.")
    assert r.ncco[1]["eventUrl"] == [f"{BASE}/webhooks/input/{REF}/ivr/menu"]
    assert r.ncco[1]["type"] == ["dtmf", "speech"]
    parse_ncco(r.ncco)


@pytest.mark.parametrize(
    ("payload", "step"),
    [
        (dtmf("1"), "sales"),
        (dtmf("2"), "support"),
        (dtmf("3"), "conference"),
        (dtmf("3", timed_out=True), "conference"),  # digits given, then the timer ran out
        (speech("Sales please"), "sales"),
        (speech("I NEED HELP"), "support"),
        (speech("the meeting"), "conference"),
    ],
)
def test_menu_branches_by_digits_or_speech(payload: dict[str, Any], step: str) -> None:
    r = ivr_input(payload)
    assert (r.step, r.reason) == (step, "branch")
    assert_urls_carry_ref(r.ncco)


def test_speech_matches_whole_words_only() -> None:
    assert ivr_input(speech("wholesales")).reason == "no-match-retry"


def test_sales_connects_to_a_number_with_voicemail_failover() -> None:
    r = ivr_input(dtmf("1"))
    assert r.ncco is not None
    connect = r.ncco[1]
    assert connect["endpoint"] == [{"type": "phone", "number": "447700900100"}]
    assert connect["from"] == "447700900001"  # {{caller_id}}
    assert connect["eventType"] == "synchronous"
    assert connect["eventUrl"] == [f"{BASE}/webhooks/event/{REF}/ivr/voicemail"]
    assert "on_failure" not in connect


def test_support_connects_to_sip() -> None:
    r = ivr_input(dtmf("2"))
    assert r.ncco is not None
    assert r.ncco[1]["endpoint"] == [{"type": "sip", "uri": "sip:support@pbx.example.com"}]


def test_conference_branch_joins_a_named_conversation_as_attendee() -> None:
    r = ivr_input(dtmf("3"))
    assert r.ncco is not None
    conv = r.ncco[-1]
    assert conv["action"] == "conversation"
    assert conv["name"] == "acme-daily"
    assert conv["startOnEnter"] is False
    assert "role" not in conv
    assert conv["eventUrl"] == [f"{BASE}/webhooks/event/{REF}"]


def test_timeout_retries_once_then_goes_to_goodbye() -> None:
    first = ivr_input(dtmf("", timed_out=True))
    assert first.reason == "timeout-retry"
    assert first.ncco is not None
    assert first.ncco[0] == {"action": "talk", "text": "Sorry, I did not hear a choice."}
    retry_url = first.ncco[-1]["eventUrl"][0]
    ctx = retry_url.rsplit("/", 1)[1]
    assert retry_url == f"{BASE}/webhooks/input/{REF}/ivr/menu/{ctx}"
    assert decode_ctx(ctx) == (1, {})
    second = ivr_input(dtmf("", timed_out=True), attempt=1)
    assert (second.reason, second.step) == ("timeout-exhausted", "goodbye")
    assert second.ncco == [{"action": "talk", "text": "Thank you for calling Acme. Goodbye."}]


def test_no_match_retries_then_gives_up() -> None:
    assert ivr_input(dtmf("9")).reason == "no-match-retry"
    assert ivr_input(dtmf("9"), attempt=1).step == "goodbye"


def test_goodbye_when_retries_are_used_up_without_goto() -> None:
    r = render_input(CONF, "pin", base_url=BASE, call_ref=REF, payload=dtmf(""), attempt=2)
    assert r.reason == "timeout-goodbye"
    assert r.ncco == [{"action": "talk", "text": "Sorry, we could not understand. Goodbye."}]


def test_moderator_pin_from_a_variable_and_default_branch() -> None:
    host = render_input(CONF, "pin", base_url=BASE, call_ref=REF, payload=dtmf("1234"))
    assert host.step == "host"
    assert host.ncco is not None
    assert host.ncco[-1]["startOnEnter"] is True and host.ncco[-1]["endOnExit"] is True
    assert host.ncco[-1]["record"] is True
    guest = render_input(CONF, "pin", base_url=BASE, call_ref=REF, payload=dtmf("999"))
    assert (guest.step, guest.reason) == ("attendee", "default")
    # A per-call PIN travels in the URL ctx and changes the branch.
    other = render_input(
        CONF, "pin", base_url=BASE, call_ref=REF, payload=dtmf("999"), variables={"host_pin": "999"}
    )
    assert other.step == "host"


def test_websocket_connect_with_variables_from_custom_data() -> None:
    payload = {**ANSWER, "custom_data": {"customer_id": "C42", "undeclared": "dropped"}}
    r = render_answer(BOT, base_url=BASE, call_ref=REF, payload=payload)
    assert r.ncco is not None
    ep = r.ncco[0]["endpoint"][0]
    assert ep["type"] == "websocket"
    assert ep["headers"] == {"call_ref": REF, "caller": "447700900999", "customer_id": "C42"}
    assert r.variables["customer_id"] == "C42"
    assert "undeclared" not in r.variables
    # The failover URL carries the variable, so the failover step can use it too.
    ctx = r.ncco[0]["eventUrl"][0].rsplit("/", 1)[1]
    assert decode_ctx(ctx) == (0, {"customer_id": "C42"})


def test_sync_connect_events_render_the_failover_step_only_on_failure() -> None:
    for status in ("busy", "timeout", "failed", "rejected", "unanswered"):
        r = render_event(
            IVR, "voicemail", base_url=BASE, call_ref=REF, payload={**ANSWER, "status": status}
        )
        assert r.step == "voicemail"
        assert r.ncco is not None
        record = r.ncco[1]
        assert record["action"] == "record"
        assert record["eventUrl"] == [f"{BASE}/webhooks/recording/{REF}"]
    for status in ("started", "ringing", "answered", "completed"):
        r = render_event(
            IVR, "voicemail", base_url=BASE, call_ref=REF, payload={**ANSWER, "status": status}
        )
        assert r.ncco is None
    assert (
        render_event(IVR, None, base_url=BASE, call_ref=REF, payload={"status": "busy"}).ncco
        is None
    )


def notify_flow() -> Flow:
    return parse_flow(
        {
            "name": "n",
            "start": "a",
            "steps": {
                "a": {
                    "actions": [
                        {"action": "talk", "text": "one moment"},
                        {"action": "notify", "payload": {"k": "v"}, "goto": "b"},
                    ]
                },
                "b": {"actions": [{"action": "talk", "text": "done"}]},
                "c": {
                    "actions": [
                        {"action": "notify", "payload": {}},
                        {"action": "talk", "text": "x"},
                    ]
                },
            },
        }
    )


def test_notify_with_goto_comes_back_to_render_the_next_step() -> None:
    f = notify_flow()
    ncco = render_step(f, "a", base_url=BASE, call_ref=REF)
    assert ncco[1]["eventUrl"] == [f"{BASE}/webhooks/notify/{REF}/n/b"]
    r = render_notify(f, "b", base_url=BASE, call_ref=REF, payload={"k": "v"})
    assert r.ncco == [{"action": "talk", "text": "done"}]
    plain = render_step(f, "c", base_url=BASE, call_ref=REF)
    assert plain[0]["eventUrl"] == [f"{BASE}/webhooks/notify/{REF}"]
    assert render_notify(f, None, base_url=BASE, call_ref=REF, payload={}).ncco is None


def test_fallback() -> None:
    answer_failed = {**ANSWER, "reason": "timeout", "original_request": {"type": "answer"}}
    r = render_fallback(IVR, base_url=BASE, call_ref=REF, payload=answer_failed)
    assert r.step == "menu"
    event_failed = {**ANSWER, "original_request": {"type": "event"}}
    assert render_fallback(IVR, base_url=BASE, call_ref=REF, payload=event_failed).ncco is None
    with_step = parse_flow({**IVR.model_dump(), "fallback": "goodbye"})
    r2 = render_fallback(with_step, base_url=BASE, call_ref=REF, payload=event_failed)
    assert r2.step == "goodbye"


def test_goto_chains_render_inline() -> None:
    f = parse_flow(
        {
            "name": "g",
            "start": "a",
            "variables": {"x": "1"},
            "steps": {
                "a": {"actions": [{"action": "talk", "text": "a"}], "goto": "b"},
                "b": {
                    "actions": [{"action": "stream", "streamUrl": ["https://x/y.mp3"]}],
                    "goto": "c",
                },
                "c": {"input": {"branches": [{"digits": "1", "goto": "a"}]}},
            },
        }
    )
    ncco = render_step(f, "a", base_url=BASE, call_ref=REF)
    assert [a["action"] for a in ncco] == ["talk", "stream", "input"]
    assert ncco[2]["eventUrl"] == [f"{BASE}/webhooks/input/{REF}/g/c"]


def test_capture_carries_the_digits_to_later_steps() -> None:
    f = parse_flow(
        {
            "name": "cap",
            "start": "ask",
            "steps": {
                "ask": {
                    "input": {"dtmf": {"maxDigits": 6}, "capture": "account", "default": "confirm"}
                },
                "confirm": {
                    "actions": [
                        {"action": "talk", "text": "You entered {{account}}.", "bargeIn": True}
                    ],
                    "input": {
                        "branches": [{"digits": "1", "goto": "done"}],
                        "default": "ask",
                    },
                },
                "done": {"actions": [{"action": "talk", "text": "Account {{account}} confirmed."}]},
            },
        }
    )
    r = render_input(f, "ask", base_url=BASE, call_ref=REF, payload=dtmf("424242"))
    assert r.ncco is not None
    assert r.ncco[0]["text"] == "You entered 424242."
    _, carried = decode_ctx(r.ncco[1]["eventUrl"][0].rsplit("/", 1)[1])
    assert carried == {"account": "424242"}
    done = render_input(
        f, "confirm", base_url=BASE, call_ref=REF, payload=dtmf("1"), variables=carried
    )
    assert done.ncco == [{"action": "talk", "text": "Account 424242 confirmed."}]


def test_phone_numbers_from_variables_are_normalised_and_validated() -> None:
    r = render_answer(BOT, base_url=BASE, call_ref=REF, payload=ANSWER)
    assert r.ncco is not None
    sales = render_input(
        IVR,
        "menu",
        base_url=BASE,
        call_ref=REF,
        payload=dtmf("1"),
        variables={"sales_number": "+44 7700 900555"},
    )
    assert sales.ncco is not None
    assert sales.ncco[1]["endpoint"][0]["number"] == "447700900555"
    with pytest.raises(FlowRenderError, match="number"):
        render_input(
            IVR,
            "menu",
            base_url=BASE,
            call_ref=REF,
            payload=dtmf("1"),
            variables={"sales_number": "not a number"},
        )


def test_webhook_url_and_ctx() -> None:
    assert webhook_url(BASE + "/", "event", "r.1~x") == f"{BASE}/webhooks/event/r.1~x"
    for bad in ("a/b", "", "x" * 129, "a b", "a?b"):
        with pytest.raises(FlowRenderError):
            webhook_url(BASE, "event", bad)
    assert encode_ctx(0, dict(IVR.variables), IVR) is None  # defaults are not carried
    token = encode_ctx(2, {**IVR.variables, "company": "Zeta"}, IVR)
    assert token is not None and decode_ctx(token) == (2, {"company": "Zeta"})
    with pytest.raises(FlowRenderError, match="URL characters"):
        encode_ctx(0, {"company": "x" * MAX_CTX_CHARS}, IVR)
    for junk in ("!!!", "e30", "WzFd", "eyJhIjotMX0", "eyJ2Ijp7ImEiOltdfX0"):
        # not base64 / {} ok / [1] / {"a":-1} / {"v":{"a":[]}}
        if junk == "e30":
            assert decode_ctx(junk) == (0, {})
            continue
        with pytest.raises(FlowRenderError):
            decode_ctx(junk)


@settings(max_examples=300, deadline=None)
@given(
    digits=st.text(alphabet="0123456789*#", max_size=6),
    words=st.text(max_size=30),
    attempt=st.integers(min_value=0, max_value=5),
    ref=st.from_regex(r"[A-Za-z0-9._~-]{1,40}", fullmatch=True),
)
def test_any_input_renders_a_valid_ncco_whose_urls_carry_the_call_ref(
    digits: str, words: str, attempt: int, ref: str
) -> None:
    payload = {**ANSWER, "dtmf": {"digits": digits}, "speech": {"results": [{"text": words}]}}
    r = render_input(IVR, "menu", base_url=BASE, call_ref=ref, payload=payload, attempt=attempt)
    assert r.ncco is not None
    parse_ncco(r.ncco)
    assert_urls_carry_ref(r.ncco, ref)
