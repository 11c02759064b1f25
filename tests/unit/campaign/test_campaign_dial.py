"""The create-call command of one attempt: valid for the Voice API, call_ref in every URL."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.call_refs import make_call_ref
from contracts.campaign import Contact, parse_campaign_yaml
from contracts.envelopes import CommandKind, command_key
from contracts.voice_api import CreateCallRequest
from handlers.campaign import run_id
from handlers.campaign_dial import build_create_call, create_call_body
from handlers.flow_ctx import decode_ctx

SPEC = """\
name: spring
contacts: {csv: c.csv}
from: {numbers: ["+447700900000", "447700900001"]}
flow:
  variables: {company: Acme}
  ncco:
    - {action: talk, text: "Hello {{name}} from {{company}}, about {{plan}}"}
    - {action: input, type: [dtmf], dtmf: {maxDigits: 1}}
    - {action: record, endOnKey: "#"}
machine_detection: {mode: advanced, on_machine: leave_message, message: "Call us"}
length_timer: 600
"""
CONTACT = Contact(
    index=7, contact_id="c7", number="+14155550100", name="Ann", variables={"plan": "gold"}
)


def test_body_is_a_valid_create_call_with_the_call_ref_path() -> None:
    spec = parse_campaign_yaml(SPEC)
    ref = make_call_ref("spring", run_id("ctl-1"), CONTACT.index, 2)
    body = create_call_body(spec, CONTACT, ref, "https://hooks.example.com")
    CreateCallRequest.model_validate(body)
    assert body["to"] == [{"type": "phone", "number": "14155550100"}]
    assert body["from"] == {"type": "phone", "number": "447700900001"}  # index 7: second id
    assert body["event_url"] == [f"https://hooks.example.com/webhooks/event/{ref}"]
    talk, inp, rec = body["ncco"]
    assert talk["text"] == "Hello Ann from Acme, about gold"
    assert inp["eventUrl"] == [f"https://hooks.example.com/webhooks/input/{ref}"]
    assert rec["eventUrl"] == [f"https://hooks.example.com/webhooks/recording/{ref}"]
    assert body["advanced_machine_detection"] == {
        "behavior": "continue",
        "mode": "detect_beep",
        "beep_timeout": 45,
    }
    assert body["length_timer"] == 600


def test_command_is_deterministic_and_keyed_by_account() -> None:
    spec = parse_campaign_yaml(SPEC)
    ref = make_call_ref("spring", "abcdef01", 7, 1)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    a = build_create_call(spec, CONTACT, ref, public_base="http://x", account="acme", at=at)
    b = build_create_call(spec, CONTACT, ref, public_base="http://x", account="acme", at=at)
    assert a.id == b.id and a.kind == CommandKind.CREATE_CALL and a.call_ref == ref
    assert command_key(a) == b"acct:acme"
    other = build_create_call(
        spec, CONTACT, make_call_ref("spring", "abcdef01", 7, 2), public_base="http://x",
        account="acme", at=at,
    )  # fmt: skip
    assert other.id != a.id  # a new attempt is a new command with a new call_ref


def test_named_flow_and_standard_amd() -> None:
    spec = parse_campaign_yaml(
        SPEC.replace(
            """flow:
  variables: {company: Acme}
  ncco:
    - {action: talk, text: "Hello {{name}} from {{company}}, about {{plan}}"}
    - {action: input, type: [dtmf], dtmf: {maxDigits: 1}}
    - {action: record, endOnKey: "#"}
""",
            "flow: {name: ivr}\n",
        ).replace('mode: advanced, on_machine: leave_message, message: "Call us"', "mode: standard")
    )
    ref = make_call_ref("spring", "abcdef01", 7, 1)
    body = create_call_body(spec, CONTACT, ref, "http://x")
    CreateCallRequest.model_validate(body)
    # the flow's start ("_") with the contact's values (unsigned here: no key given)
    (url,) = body["answer_url"]
    prefix = f"http://x/webhooks/answer/{ref}/ivr/_/"
    assert url.startswith(prefix)
    assert decode_ctx(url[len(prefix) :])[1] == {
        "name": "Ann",
        "plan": "gold",
        "number": "+14155550100",
        "contact_id": "c7",
    }
    assert "ncco" not in body


def test_progress_table_renders_every_counter() -> None:
    from rich.console import Console

    from contracts.campaign import CampaignProgress
    from orchestrator.campaign.cli import progress_table

    p = CampaignProgress(
        campaign="spring",
        status="running",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        contacts_total=100,
        dialed=40,
        in_flight=5,
        retries_pending=3,
        finished=30,
        dispositions={
            "answered": 20,
            "machine": 4,
            "busy": 2,
            "unanswered": 2,
            "failed": 1,
            "dnc": 1,
        },
        dials_per_min=120.0,
        max_concurrent=10,
        cps_limit=3.0,
    )
    console = Console(width=100, record=True)
    console.print(progress_table(p))
    text = console.export_text()
    for word in ("dialed", "in flight", "answered", "machine", "busy", "no answer", "failed",
                 "retries pending", "dials/min", "ETA", "35 s"):  # fmt: skip
        assert word in text, word


def test_machine_hints_for_the_workers_voicemail_drop() -> None:
    from handlers.campaign_dial import machine_hints

    spec = parse_campaign_yaml(SPEC.replace('message: "Call us"', 'message: "Call us, {{name}}"'))
    assert machine_hints(spec, CONTACT) == {
        "on_machine": "message",
        "machine_message": "Call us, Ann",
        "wait_for_beep": True,
    }
