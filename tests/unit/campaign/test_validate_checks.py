"""``campaign validate``'s pure checks: one test per mistake issue 14 lists, each naming where."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.campaign import CampaignFileError, Contact, parse_campaign_document
from handlers.campaign_check import (
    ContactCheck,
    estimate_seconds,
    flow_problems,
    ncco_problems,
    retry_rules,
    ringing_warnings,
)
from handlers.template_vars import template_refs, unsatisfied

# A Wednesday, 10:00 in New York.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)

BASE = """\
name: check
contacts: {csv: contacts.csv}
from: {numbers: ["14155550000"]}
flow:
  ncco:
    - action: talk
      text: "Hi {{first_name}}"
"""


def contact(index: int = 0, **variables: str) -> Contact:
    tz = variables.pop("timezone", None)
    name = variables.pop("name", None)
    number = variables.pop("number", "+12125550100")
    return Contact(
        index=index,
        contact_id=str(index),
        number=number,
        valid=number.startswith("+"),
        name=name,
        timezone=tz,
        variables=variables,
    )


def check(text: str, contacts: list[Contact], dnc: frozenset[str] = frozenset()) -> ContactCheck:
    c = ContactCheck(parse_campaign_document(text, "c.yaml"), NOW, dnc)
    for x in contacts:
        c.add(x)
    return c


# --- the spec --------------------------------------------------------------------------------


def test_unknown_field_names_line_and_the_field_meant() -> None:
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_document(BASE.replace("numbers:", "numbrs:"), "c.yaml")
    assert "c.yaml:3: from.numbrs: unknown field; did you mean numbers?" in str(err.value)
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_document(BASE + "pacng: {cps_share: 0.5}\n", "c.yaml")
    assert "c.yaml:8: pacng: unknown field; did you mean pacing?" in str(err.value)


def test_unknown_field_far_from_any_name_gets_no_guess() -> None:
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_document(BASE + "zzzzqqq: 1\n", "c.yaml")
    assert str(err.value) == "c.yaml:8: zzzzqqq: unknown field"


def test_ncco_error_names_line_and_field_not_the_request_model() -> None:
    text = BASE + "    - action: input\n      type: [dtmf]\n      dtmf: {maxDigits: lots}\n"
    d = parse_campaign_document(text, "c.yaml")
    problems = ncco_problems(d, contact(first_name="Chen"), "http://localhost:8080")
    assert [(p.line, p.field) for p in problems] == [(10, "flow.ncco.1.dtmf.maxDigits")]
    assert "CreateCallRequest" not in problems[0].message
    assert (
        problems[0]
        .text("c.yaml", "contacts.csv")
        .startswith("c.yaml:10: flow.ncco.1.dtmf.maxDigits: ")
    )


def test_unknown_ncco_field_and_action_get_did_you_mean() -> None:
    text = BASE.replace('text: "Hi {{first_name}}"', 'text: "Hi"\n      bargein: true')
    text += "    - action: tallk\n      text: bye\n"
    d = parse_campaign_document(text, "c.yaml")
    problems = ncco_problems(d, contact(), "http://localhost:8080")
    by_field = {p.field: (p.line, p.message) for p in problems}
    assert by_field["flow.ncco.0.bargein"] == (8, "unknown field; did you mean bargeIn?")
    assert by_field["flow.ncco.1.action"] == (9, "unknown action 'tallk'; did you mean talk?")


def test_a_valid_ncco_has_no_problems() -> None:
    d = parse_campaign_document(BASE, "c.yaml")
    assert ncco_problems(d, contact(first_name="Chen"), "http://localhost:8080") == []


def test_misspelt_flow_name_is_refused_with_the_name_meant() -> None:
    text = BASE.replace(
        '  ncco:\n    - action: talk\n      text: "Hi {{first_name}}"\n', "  name: confrim\n"
    )
    d = parse_campaign_document(text, "c.yaml")
    problems = flow_problems(d, {"confirm", "welcome"})
    assert [(p.line, p.field) for p in problems] == [(5, "flow.name")]
    assert problems[0].message == "no flow named 'confrim'; did you mean confirm?"
    assert flow_problems(d, None) == []  # flows unknown here: nothing to say
    assert "no flows are loaded" in flow_problems(d, set())[0].message


# --- template variables ----------------------------------------------------------------------


def test_template_typo_is_an_error_naming_line_field_and_column_meant() -> None:
    c = check(
        BASE.replace("first_name", "firstname"), [contact(i, first_name="Chen") for i in range(3)]
    )
    [p] = c.problems()
    assert (p.line, p.field, p.row) == (7, "flow.ncco.0.text", None)
    assert "{{firstname}} is not a contact column; did you mean first_name?" in p.message
    assert "all 3 rows" in p.message


def test_a_variable_empty_in_some_rows_names_each_row_and_column() -> None:
    rows = [contact(0, first_name="Chen"), contact(1, first_name=""), contact(2, first_name="Bo")]
    [p] = check(BASE, rows).problems()
    assert (p.row, p.column, p.field) == (2, "first_name", "flow.ncco.0.text")
    assert p.text("c.yaml", "contacts.csv").startswith("contacts.csv: row 2, column first_name:")


def test_many_rows_missing_are_named_five_then_counted() -> None:
    rows = [contact(i) for i in range(8)] + [contact(8, first_name="Chen")]
    problems = check(BASE, rows).problems()
    assert [p.row for p in problems[:5]] == [1, 2, 3, 4, 5]
    assert problems[5].message == "... and 3 more rows without first_name"


def test_defaults_satisfy_a_variable() -> None:
    declared = BASE + "  variables: {first_name: there}\n"
    assert check(declared, [contact()]).problems() == []


def test_machine_message_and_name_are_checked_too() -> None:
    text = BASE + (
        "machine_detection:\n  mode: advanced\n  on_machine: leave_message\n"
        "  message: 'Hello {{name}}, call {{agent}}'\n"
    )
    d = parse_campaign_document(text, "c.yaml")
    refs = template_refs(d.spec)
    assert [(r.name, r.path) for r in refs][1:] == [
        ("name", ("machine_detection", "message")),
        ("agent", ("machine_detection", "message")),
    ]
    missing = unsatisfied(d.spec, contact(first_name="A", agent="Bo"), refs)
    assert [r.name for r in missing] == ["name"]
    assert unsatisfied(d.spec, contact(first_name="A", agent="Bo", name="Chen"), refs) == []


def test_number_and_contact_id_are_always_known() -> None:
    text = BASE.replace("{{first_name}}", "{{number}} {{contact_id}}")
    assert check(text, [contact()]).problems() == []


# --- time zones and calling hours ------------------------------------------------------------


def test_unknown_contact_time_zone_is_an_error_naming_the_row() -> None:
    rows = [contact(0, first_name="A", timezone="Mars/Olympus"), contact(1, first_name="B")]
    [p] = check(BASE, rows).problems()
    assert (p.row, p.column) == (1, "timezone")
    assert p.message == "unknown time zone 'Mars/Olympus'"
    rows = [contact(0, first_name="A", timezone="Europe/Pariss")]
    assert "did you mean Europe/Paris?" in check(BASE, rows).problems()[0].message


def test_calling_hours_that_cannot_be_met_before_stop_at() -> None:
    # Weekdays 09-17 in New York; stop_at is Saturday noon UTC, now is Friday 18:00 there.
    text = BASE + (
        "calling_hours: {days: [mon, tue, wed, thu, fri], start: '09:00', end: '17:00'}\n"
        "stop_at: '2026-03-07T12:00:00Z'\n"
    )
    late = ContactCheck(
        parse_campaign_document(text, "c.yaml"), datetime(2026, 3, 6, 23, 0, tzinfo=UTC)
    )
    late.add(contact(0, first_name="A", timezone="America/New_York"))
    late.add(contact(1, first_name="B", timezone="Asia/Tokyo"))  # Saturday already: closed too
    problems = late.problems()
    assert [(p.row, p.field, p.line) for p in problems] == [
        (1, "calling_hours", 8),
        (2, "calling_hours", 8),
    ]
    assert "never open before stop_at" in problems[0].message
    # The same file checked on Wednesday morning: the window opens before stop_at.
    assert check(text, [contact(0, first_name="A", timezone="America/New_York")]).problems() == []


def test_calling_hours_never_open_in_all_zones_at_once() -> None:
    # A Sydney window of one hour never overlaps a New York one: a number in both is never open.
    text = BASE + "calling_hours: {start: '09:00', end: '10:00', fallback_timezone: UTC}\n"
    d = parse_campaign_document(text, "c.yaml")
    c = ContactCheck(d, NOW)
    c.add(contact(0, first_name="A", timezone="Australia/Sydney"))
    assert c.problems() == []
    # +1 800 numbers map to every US zone: Hawaii 09-10 and New York 09-10 never coincide.
    c.add(contact(1, first_name="A", number="+18005550100"))
    assert [p.row for p in c.problems()] == [2]
    assert "never open in any zone of this number at once" in c.problems()[0].message


# --- counts, samples, estimate, retries ------------------------------------------------------


def test_dnc_and_invalid_are_counted_and_not_sampled() -> None:
    rows = [
        contact(0, first_name="A"),
        contact(1, first_name="B", number="12"),
        contact(2, first_name="C", number="+12125550102"),
        contact(3, first_name="D", number="+12125550103"),
        contact(4, first_name="E", number="+12125550104"),
    ]
    c = check(BASE, rows, dnc=frozenset({"+12125550102"}))
    assert (c.rows, c.invalid, c.in_dnc, c.dialable) == (5, 1, 1, 3)
    assert [s.index for s in c.samples] == [0, 3, 4]


def test_estimate_is_bound_by_cps_or_by_concurrency() -> None:
    assert estimate_seconds(300, cps=3.0, max_concurrent=1000) == 100.0
    # 10 calls of 60 s at once is 1/6 call per second, slower than 3 CPS.
    assert estimate_seconds(60, cps=3.0, max_concurrent=10, mean_call_s=60.0) == 360.0
    assert estimate_seconds(1, cps=0.0, max_concurrent=1) == float("inf")


AGENTS = (
    BASE
    + """\
mode: predictive
agents: {abandon_message: "This was Acme. Call us back on 0800 000 000."}
machine_detection: {mode: standard, on_machine: hangup}
"""
)


@pytest.mark.parametrize(
    ("text", "warned"),
    [
        (AGENTS + "ringing_timer: 10\n", True),
        (AGENTS.replace("predictive", "progressive") + "ringing_timer: 14\n", True),
        (AGENTS + "ringing_timer: 15\n", False),
        (AGENTS, False),  # the default, 45 s
        (BASE + "ringing_timer: 10\n", False),  # agentless: nobody is abandoned
    ],
)
def test_a_ringing_timer_under_the_safe_harbour_is_a_warning(text: str, warned: bool) -> None:
    notes = ringing_warnings(parse_campaign_document(text, "c.yaml").spec)
    assert bool(notes) is warned
    assert all(n.startswith("ringing_timer: ") and "15 s or four rings" in n for n in notes)


def test_retry_rules_show_the_defaults() -> None:
    d = parse_campaign_document(BASE + "retry: {busy: {delay: 5m, max_attempts: 2}}\n", "c.yaml")
    assert retry_rules(d.spec) == [
        ("busy", 300.0, 2),
        ("unanswered", 1800.0, 3),
        ("timeout", 1800.0, 3),
        ("failed", 0.0, 1),
        ("machine", 0.0, 1),
    ]
