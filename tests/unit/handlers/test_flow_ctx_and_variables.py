"""A named flow hears the contact's values, signed; a variable nobody fills is never a blank."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.campaign import Contact, ContactResult, parse_campaign_yaml
from contracts.flow import parse_flow
from handlers.campaign import CampaignMachine, DialRequest, FinalResult
from handlers.campaign_dial import create_call_body
from handlers.flow import FlowRenderError, render_answer
from handlers.flow_ctx import START_STEP, ctx_keys, decode_ctx, pack_ctx
from handlers.template_vars import missing_variables, spec_variables

KEYS = ctx_keys(["secret-one", "secret-two"])
FLOW = parse_flow(
    """
name: confirm
variables: {name: there, date: null}
start: hello
steps:
  hello:
    actions: [{action: talk, text: "Hi {{name}}, your appointment is on {{date}}."}]
    input:
      capture: answer
      branches: [{digits: "1", goto: bye}]
  bye:
    actions: [{action: talk, text: "Goodbye."}]
"""
)
NAMED = parse_campaign_yaml(
    """
name: spring
contacts: {csv: c.csv}
from: {numbers: ["447700900000"]}
flow: {name: confirm}
"""
)
INLINE = parse_campaign_yaml(
    """
name: spring
contacts: {csv: c.csv}
from: {numbers: ["447700900000"]}
flow:
  variables: {company: Acme}
  ncco: [{action: talk, text: "Hello {{name}} from {{company}} about {{plan}}"}]
calling_hours: null
"""
)
CHEN = Contact(index=0, contact_id="c0", number="+14155550100", name="Chen", variables={})


def _answer_ctx(url: str) -> tuple[str, str]:
    parts = urlparse(url).path.split("/")  # /webhooks/answer/{ref}/{flow}/{step}/{ctx}
    return parts[5], parts[6]


def test_named_flow_renders_with_the_contacts_values_from_the_signed_answer_url() -> None:
    contact = CHEN.model_copy(update={"variables": {"date": "Friday 6 March"}})
    body = create_call_body(NAMED, contact, "spring.r.0.1", "https://h.example", KEYS[0])
    step, ctx = _answer_ctx(body["answer_url"][0])
    assert step == START_STEP
    _, values = decode_ctx(ctx, KEYS)
    r = render_answer(
        FLOW,
        base_url="https://h.example",
        call_ref="spring.r.0.1",
        payload={},
        variables=values,
        ctx_key=KEYS[0],
    )
    assert r.ncco is not None
    assert r.ncco[0]["text"] == "Hi Chen, your appointment is on Friday 6 March."


def test_ctx_signed_with_a_key_we_do_not_have_or_not_signed_is_refused() -> None:
    token = pack_ctx(0, {"name": "Chen"}, KEYS[1])
    assert token is not None
    assert decode_ctx(token, KEYS) == (0, {"name": "Chen"})  # rotation: any key verifies
    with pytest.raises(FlowRenderError, match="signature"):
        decode_ctx(token, ctx_keys(["another"]))
    unsigned = pack_ctx(0, {"name": "Mallory"}, None)
    with pytest.raises(FlowRenderError, match="not signed"):
        decode_ctx(unsigned, KEYS)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(FlowRenderError):
        decode_ctx(forged, KEYS)


@given(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
        min_size=1,
        max_size=200,
    )
)
def test_junk_ctx_raises_only_flow_render_error(junk: str) -> None:
    try:
        decode_ctx(junk, KEYS)
    except FlowRenderError:
        return
    # only a token carrying a valid MAC could decode, and junk does not carry one
    raise AssertionError(f"{junk!r} decoded without a valid signature")


def test_missing_variables_are_listed_and_defaults_fill_them() -> None:
    assert spec_variables(INLINE) == {"name", "company", "plan"}
    ann = Contact(
        index=1, contact_id="c1", number="+14155550101", name=None, variables={"plan": ""}
    )
    assert missing_variables(INLINE, ann) == ["name", "plan"]  # empty cell = missing
    full = ann.model_copy(update={"name": "Ann", "variables": {"plan": "gold"}})
    assert missing_variables(INLINE, full) == []  # company: the declared default
    # a named flow: its null-default variables must come from the contact
    assert missing_variables(NAMED, CHEN, FLOW) == ["date"]
    dated = CHEN.model_copy(update={"variables": {"date": "Friday"}})
    assert missing_variables(NAMED, dated, FLOW) == []
    nameless = dated.model_copy(update={"name": None})
    assert missing_variables(NAMED, nameless, FLOW) == []  # name: there


def test_the_machine_never_dials_a_contact_with_a_blank() -> None:
    now = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    m = CampaignMachine(INLINE, run="r", cps_limit=10)
    ok = Contact(
        index=0, contact_id="a", number="+14155550100", name="Ann", variables={"plan": "gold"}
    )
    blank = Contact(index=1, contact_id="b", number="+14155550101", name="Bo", variables={})
    out = m.add_contacts([ok, blank], eof=True, now=now) + m.tick(now)
    dialed = [o.contact.contact_id for o in out if isinstance(o, DialRequest)]
    finals: list[ContactResult] = [o.result for o in out if isinstance(o, FinalResult)]
    assert dialed == ["a"]
    assert [(r.contact_id, r.disposition, r.detail) for r in finals] == [
        ("b", "failed", "missing_variables: plan")
    ]
