"""``orchestrator schema export``: complete, self-describing, and mapped to the topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from contracts.schema import JSON_SCHEMA_DIALECT
from contracts.topics import CONTACTS_SOURCE, ROLES, TOPICS, TRAFFIC
from orchestrator.apidocs.catalog import models, record_names
from orchestrator.apidocs.export import export_all
from orchestrator.cli import cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("schemas")
    export_all(out)
    return out


def test_every_file_is_a_standalone_json_schema(exported: Path) -> None:
    files = sorted(exported.glob("*.schema.json"))
    assert len(files) == len(models())
    ids = set()
    for path in files:
        doc = json.loads(path.read_text())
        assert doc["$schema"] == JSON_SCHEMA_DIALECT, path.name
        assert doc["$id"].endswith(path.name), path.name
        Draft202012Validator.check_schema(doc)
        ids.add(doc["$id"])
    assert len(ids) == len(files)


def test_index_maps_every_topic_to_its_schemas(exported: Path) -> None:
    index = json.loads((exported / "index.json").read_text())
    topics = index["topics"]
    assert set(topics) == {t.name for t in TOPICS} | {CONTACTS_SOURCE}
    for topic, entry in topics.items():
        assert entry["schemas"], topic
        for file in entry["schemas"]:
            assert (exported / file).is_file(), file
        for traffic in entry["traffic"]:
            assert set(traffic["publishers"]) | set(traffic["subscribers"]) <= set(ROLES)
    assert topics["campaign.results"]["schemas"] == ["ContactResult.schema.json"]
    assert set(topics["campaign.control"]["schemas"]) == {
        "CampaignControl.schema.json",
        "CampaignTick.schema.json",
        "Outcome.schema.json",
        "CommandResult.schema.json",
        "LegMilestone.schema.json",
        "AgentNotice.schema.json",
    }
    assert set(topics["agents.control"]["schemas"]) == {
        "AgentCommand.schema.json",
        "AgentCall.schema.json",
        "AgentsTick.schema.json",
        "CommandResult.schema.json",
    }
    assert topics["voice.dispatch-ledger"]["schemas"] == ["LedgerEntry.schema.json"]
    assert index["campaign_file"] == "CampaignSpec.schema.json"
    assert (exported / index["asyncapi"]).is_file() and (exported / index["openapi"]).is_file()


def test_traffic_table_is_complete_and_resolvable() -> None:
    catalogue = models()
    assert {t.name for t in TOPICS} <= {row.topic for row in TRAFFIC}
    for row in TRAFFIC:
        assert row.publishers and row.subscribers, row
        assert set(row.publishers) | set(row.subscribers) <= set(ROLES), row
        for name in row.messages:
            assert name in catalogue, f"{row.topic}: no model named {name}"
    # Every record model on a topic says what it is.
    for name in record_names():
        props = catalogue[name].model_json_schema()["properties"]
        if name not in {
            "ContactRow",
            "LedgerEntry",
            "VoiceStateRecord",
            "CampaignStateRecord",
            "AgentPoolRecord",
        }:
            assert "type" in props, f"{name} has no type field"


def test_openapi_export_is_what_the_ingress_serves(exported: Path) -> None:
    from orchestrator.ingress.openapi import build_openapi

    assert json.loads((exported / "openapi.json").read_text()) == build_openapi()


def test_cli_export_and_base_uri(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        cli, ["schema", "export", str(tmp_path), "--base-uri", "https://schemas.test/v/"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads((tmp_path / "Outcome.schema.json").read_text())
    assert doc["$id"] == "https://schemas.test/v/Outcome.schema.json"
    assert (tmp_path / "asyncapi.yaml").is_file()


def test_export_is_deterministic(exported: Path, tmp_path: Path) -> None:
    export_all(tmp_path)
    for path in sorted(exported.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
