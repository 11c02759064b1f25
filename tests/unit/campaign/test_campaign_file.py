"""The campaign file: valid files parse, and every error names the line and the field."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from contracts.campaign import (
    CampaignControl,
    CampaignFileError,
    ControlAction,
    load_campaign_file,
    parse_campaign_yaml,
    parse_duration,
)

GOOD = """\
name: spring-sale
contacts:
  csv: contacts.csv
  default_region: GB
from:
  numbers: ["447700900000", "+447700900001"]
flow:
  ncco:
    - action: talk
      text: "Hello {{name}}"
pacing:
  cps_share: 0.5
  max_concurrent: 20
machine_detection:
  mode: advanced
  on_machine: leave_message
  message: "Sorry we missed you"
retry:
  busy: {delay: 5m, max_attempts: 3}
  unanswered: {delay: 90, max_attempts: 2}
calling_hours:
  days: [mon, tue, wed, thu, fri]
  start: 9:00
  end: "20:30"
dnc: [dnc.txt]
"""


def test_good_file_parses_with_units_and_clock_times() -> None:
    spec = parse_campaign_yaml(GOOD, "c.yaml")
    assert spec.name == "spring-sale"
    assert spec.retry.busy.delay == 300.0
    assert spec.retry.unanswered.delay == 90.0
    assert spec.retry.failed.max_attempts == 1  # default: no retry
    assert spec.calling_hours is not None
    assert spec.calling_hours.start == time(9, 0)  # YAML 1.1 sexagesimal 540 undone
    assert spec.calling_hours.end == time(20, 30)
    assert spec.calling_hours.weekdays == frozenset({0, 1, 2, 3, 4})
    assert spec.from_.numbers == ["447700900000", "+447700900001"]
    # No outcome within ringing + Vonage's maximum call length + margin: only then give up.
    assert spec.effective_attempt_timeout == 45 + 7200 + 900


def test_paths_resolve_relative_to_the_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(GOOD)
    spec = load_campaign_file(f)
    assert spec.contacts.csv == str(tmp_path / "contacts.csv")
    assert spec.dnc == [str(tmp_path / "dnc.txt")]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_concurrent: 20",
            "max_concurrent: 0",
            "c.yaml:13: pacing.max_concurrent: must be >= 1",
        ),
        ("cps_share: 0.5", "cps_share: 0.5\n  burst: 3", "c.yaml:13: pacing.burst: unknown field"),
        ("{delay: 5m,", "{delay: soon,", "c.yaml:19: retry.busy.delay: must be a duration"),
        ('end: "20:30"', 'end: "08:00"', "c.yaml:21: calling_hours: end must be after start"),
        ("name: spring-sale", "name: spring sale!", "c.yaml:1: name: must match"),
        (
            "  csv: contacts.csv\n",
            "",
            "c.yaml:2: contacts: give exactly one of csv, jsonl or topic",
        ),
        (
            'message: "Sorry we missed you"',
            "beep_timeout: 60",
            "machine_detection: on_machine: leave_message needs a message",
        ),
    ],
)
def test_errors_name_line_and_field(old: str, new: str, expected: str) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_yaml(text, "c.yaml")
    assert expected in str(err.value), str(err.value)


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(CampaignFileError, match=r"c.yaml:\d+: not valid YAML"):
        parse_campaign_yaml("name: x\ncontacts:\n  csv: [unclosed\n", "c.yaml")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(CampaignFileError, match="cannot read"):
        load_campaign_file(tmp_path / "nope.yaml")
    with pytest.raises(CampaignFileError, match="empty"):
        parse_campaign_yaml("", "c.yaml")
    with pytest.raises(CampaignFileError, match=r"from: is required"):
        parse_campaign_yaml("name: a\ncontacts: {csv: x}\nflow: {answer_url: 'https://x/a'}\n")


@pytest.mark.parametrize(
    ("value", "seconds"), [(5, 5.0), ("5s", 5.0), ("2m", 120.0), ("1.5h", 5400.0), ("250ms", 0.25)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_control_start_needs_matching_spec() -> None:
    from datetime import UTC, datetime

    spec = parse_campaign_yaml(GOOD)
    ok = CampaignControl(
        id="x",
        occurred_at=datetime.now(UTC),
        campaign=spec.name,
        action=ControlAction.START,
        spec=spec,
    )
    assert CampaignControl.model_validate_json(ok.to_bytes()).spec == spec
    with pytest.raises(ValueError, match="needs the campaign spec"):
        CampaignControl(
            id="x", occurred_at=datetime.now(UTC), campaign="a", action=ControlAction.START
        )


def test_start_message_keeps_calling_hours_null() -> None:
    """``calling_hours: null`` disables the check; the START message must not bring the default back."""
    from datetime import UTC, datetime

    spec = parse_campaign_yaml(GOOD + "calling_hours: null\n")
    assert spec.calling_hours is None
    msg = CampaignControl(
        id="x",
        occurred_at=datetime.now(UTC),
        campaign=spec.name,
        action=ControlAction.START,
        spec=spec,
    )
    decoded = CampaignControl.model_validate_json(msg.to_bytes())
    assert decoded.spec is not None and decoded.spec.calling_hours is None
