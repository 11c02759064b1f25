"""The record models of the schema export match what the roles really write and read.

Some records are written as plain JSON rather than through a model (the state topics'
changelog records, the contact rows other services write): these tests hold the models that
document them to the code that writes or reads them, so the published schemas cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import yaml
from jsonschema import Draft202012Validator

from contracts.campaign import (
    CampaignControl,
    CampaignSpec,
    ContactRow,
    ControlAction,
    parse_campaign_yaml,
)
from contracts.changelog import CampaignStateRecord, VoiceStateRecord
from orchestrator.apidocs.export import schema_documents
from orchestrator.campaign.contacts import contact_from_row
from orchestrator.campaign.controller import ControllerApp
from orchestrator.runtime.app import Context
from orchestrator.runtime.store import Entry, encode_changelog
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 3, 13, 50, tzinfo=UTC)


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema_documents([name])[name])


def test_voice_state_record_is_what_the_runtime_writes() -> None:
    entry: Entry[dict[str, object]] = Entry({"legs": {}}, 41, 1_700_000_000.5)
    entry.due = 1_700_000_003.0
    entry.done_at = 1_700_000_004.0
    raw = orjson.loads(encode_changelog(entry, {"legs": {"u1": {"status": "completed"}}}))
    VoiceStateRecord.model_validate(raw)
    _validator("VoiceStateRecord").validate(raw)


def test_campaign_state_record_is_what_the_controller_writes(tmp_path: Path) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text("number,name\n+447700900001,Ann\n")
    spec = parse_campaign_yaml(
        f"name: rec\ncontacts: {{csv: {contacts}}}\nfrom: {{numbers: ['442079460000']}}\n"
        "flow: {ncco: [{action: talk, text: hi}]}\n"
        "calling_hours: null\nretry: {busy: {delay: 30s, max_attempts: 2}}\n"
    )
    app = ControllerApp(make_settings("127.0.0.1:9"), clock=lambda: T0.timestamp())
    start = CampaignControl(
        id="ctl-1",
        occurred_at=T0,
        campaign="rec",
        action=ControlAction.START,
        spec=spec,
        source_ranges=[(0, 0, 5)],
    )
    step = app.apply("rec", None, start, Context(partition=0, offset=0, timestamp_ms=0, now=1.0))
    assert step.state is not None
    entry: Entry[object] = Entry(step.state, 0, 1.0)
    raw = orjson.loads(encode_changelog(entry, app.dump_state(step.state)))
    CampaignStateRecord.model_validate(raw)
    _validator("CampaignStateRecord").validate(raw)


def test_demo_campaign_file_validates_against_the_exported_schema() -> None:
    """What an editor would check: the YAML as written (durations like 8s, quoted clock times)."""
    text = (REPO / "examples" / "demo-campaign.yaml").read_text()
    _validator("CampaignSpec").validate(yaml.safe_load(text))
    parse_campaign_yaml(text)
    bad = {**yaml.safe_load(text), "retry": {"busy": {"delay": "soon"}}}
    assert list(_validator("CampaignSpec").iter_errors(bad))


def test_contact_row_schema_matches_the_reader() -> None:
    row = {"msisdn": 447700900123, "id": 7, "name": "Bo", "plan": "gold", "variables": {"x": 1}}
    ContactRow.model_validate(row)
    _validator("ContactRow").validate(row)
    contact = contact_from_row(3, row, "GB")
    assert contact.valid and contact.number == "+447700900123"
    assert contact.contact_id == "7" and contact.variables == {"plan": "gold", "x": "1"}
    # A nested object as an extra column is not a contact value.
    assert list(_validator("ContactRow").iter_errors({"number": "1", "extra": {"a": 1}}))


def test_campaign_spec_in_a_control_record_round_trips() -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "x",
            "contacts": {"topic": "leads"},
            "from": {"random_from_number": True},
            "flow": {"name": "survey"},
        }
    )
    ctrl = CampaignControl(
        id="c", occurred_at=T0, campaign="x", action=ControlAction.START, spec=spec
    )
    _validator("CampaignControl").validate(orjson.loads(ctrl.to_bytes()))


def test_the_hot_path_records_declare_exactly_their_models_fields() -> None:
    """The TypedDicts the worker builds its records with declare the models' fields, no more."""
    from typing import get_type_hints

    from contracts.envelopes import CommandEnvelope, CommandRecord, Outcome, OutcomeRecord

    for typed, model in ((OutcomeRecord, Outcome), (CommandRecord, CommandEnvelope)):
        wire = {info.alias or name for name, info in model.model_fields.items()}
        assert set(get_type_hints(typed)) == wire, typed.__name__
        # A key the record may leave out is one the model does not require.
        required = {info.alias or n for n, info in model.model_fields.items() if info.is_required()}
        assert required <= typed.__required_keys__, typed.__name__
