"""Breaking changes to a record's schema are caught against the last released schemas.

docs/api/released/<version>/ holds the schemas of the last release (``orchestrator schema export
--released``); the current contracts must stay compatible with it, or bump ``schema_version``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.apidocs.catalog import released_names
from orchestrator.apidocs.compat import breaking_changes, compare_released, latest_release
from orchestrator.apidocs.export import export_released, schema_documents
from orchestrator.cli import cli

REPO = Path(__file__).resolve().parents[3]
RELEASED = REPO / "docs" / "api" / "released"


@pytest.fixture(scope="module")
def current() -> dict[str, dict[str, Any]]:
    return schema_documents(released_names())


def test_current_records_are_compatible_with_the_last_release(
    current: dict[str, dict[str, Any]],
) -> None:
    baseline = latest_release(RELEASED)
    assert baseline is not None, f"no released baseline under {RELEASED}"
    # A record added since the release is not in the baseline: new records are compatible.
    breaks = compare_released(baseline, current)
    assert not breaks, "breaking changes (bump schema_version, docs/schemas.md):\n" + "\n".join(
        map(str, breaks)
    )


def _outcome(current: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(current["Outcome"])


def test_removed_field_is_breaking(current: dict[str, dict[str, Any]]) -> None:
    new = _outcome(current)
    del new["properties"]["disposition"]
    new["required"].remove("disposition")
    assert [str(b) for b in breaking_changes("Outcome", current["Outcome"], new)] == [
        "Outcome: disposition: field removed"
    ]


def test_new_required_field_is_breaking(current: dict[str, dict[str, Any]]) -> None:
    new = _outcome(current)
    new["properties"]["tenant"] = {"type": "string"}
    new["required"].append("tenant")
    assert [b.what for b in breaking_changes("Outcome", current["Outcome"], new)] == [
        "new required field"
    ]
    new["required"].append("detail")  # optional before
    assert "optional field made required" in {
        b.what for b in breaking_changes("Outcome", current["Outcome"], new)
    }


def test_type_change_is_breaking_even_in_a_nested_model(
    current: dict[str, dict[str, Any]],
) -> None:
    new = copy.deepcopy(current["CampaignControl"])
    new["$defs"]["Pacing"]["properties"]["max_concurrent"]["type"] = "string"
    found = breaking_changes("CampaignControl", current["CampaignControl"], new)
    assert [(b.path, b.what) for b in found] == [
        ("spec.pacing.max_concurrent", "type changed: integer -> string")
    ]


def test_enum_value_removed_or_type_constant_changed_is_breaking(
    current: dict[str, dict[str, Any]],
) -> None:
    new = copy.deepcopy(current["ContactResult"])
    new["$defs"]["Disposition"]["enum"].remove("expired")
    new["properties"]["type"]["const"] = "campaign.result.v2"
    whats = {b.what for b in breaking_changes("ContactResult", current["ContactResult"], new)}
    assert whats == {
        'value(s) no longer allowed: "expired"',
        'value(s) no longer allowed: "campaign.result"',
    }


def test_additions_are_compatible(current: dict[str, dict[str, Any]]) -> None:
    new = _outcome(current)
    new["properties"]["campaign"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    new["description"] = "reworded"
    res = copy.deepcopy(current["ContactResult"])
    res["$defs"]["Disposition"]["enum"].append("abandoned")
    assert breaking_changes("Outcome", current["Outcome"], new) == []
    assert breaking_changes("ContactResult", current["ContactResult"], res) == []


def test_a_schema_version_bump_allows_the_change(current: dict[str, dict[str, Any]]) -> None:
    new = _outcome(current)
    del new["properties"]["rate"]
    assert breaking_changes("Outcome", current["Outcome"], new)
    new["properties"]["schema_version"]["default"] = 2
    assert breaking_changes("Outcome", current["Outcome"], new) == []


def test_removed_record_type_and_cli_exit_code(
    tmp_path: Path, current: dict[str, dict[str, Any]]
) -> None:
    export_released(tmp_path / "9.9.9")
    fewer = {k: v for k, v in current.items() if k != "CampaignTick"}
    assert [str(b) for b in compare_released(tmp_path / "9.9.9", fewer)] == [
        "CampaignTick: (root): record type removed"
    ]
    doc = tmp_path / "9.9.9" / "Outcome.schema.json"
    doc.write_text(doc.read_text().replace('"properties": {', '"properties": {"gone": {},', 1))
    out = CliRunner().invoke(cli, ["schema", "compat", "--baseline", str(tmp_path / "9.9.9")])
    assert out.exit_code == 1
    assert "BREAKING Outcome: gone: field removed" in out.output
