"""``POST /v1/campaigns?dry_run=true`` and ``GET /v1/campaigns`` (issue 14), on the real broker."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from contracts.campaign import CampaignProgress
from contracts.topics import CAMPAIGN_CONTROL, CAMPAIGN_STATE
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_producer
from tests.integration.ingress.conftest import TOKEN, AppFactory, topic_size, with_secrets

pytestmark = [pytest.mark.integration]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
YAML = {**AUTH, "Content-Type": "application/yaml"}
SPEC = """\
name: dry
contacts: {csv: contacts.csv}
from: {numbers: ["14155550000"]}
flow:
  ncco:
    - action: talk
      text: "Hi {{first_name}}"
calling_hours: null
"""


@pytest.fixture
def settings(kafka_settings: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "contacts.csv").write_text(
        "number,first_name,timezone\n+14155550100,Chen,\n+14155550101,Ann,Europe/Paris\n"
    )
    return with_secrets(kafka_settings, contacts_dir=tmp_path)


async def test_dry_run_reports_without_starting(
    settings: Settings, make_ingress: AppFactory
) -> None:
    async with make_ingress(settings) as ingress:
        c = ingress.client
        r = await c.post("/v1/campaigns?dry_run=true", content=SPEC.encode(), headers=YAML)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["ok"] is True and doc["contacts"]["to_dial"] == 2
        assert doc["samples"][0]["ncco"][0]["text"] == "Hi Chen"

        bad = SPEC.replace("first_name", "firstname").replace(
            "calling_hours: null\n", "flow_typo: 1\n"
        )
        r = await c.post("/v1/campaigns?dry_run=true", content=bad.encode(), headers=YAML)
        assert r.status_code == 422, r.text  # unknown field: the spec's own 422 problem
        assert r.json()["fields"][0]["field"] == "flow_typo"

        bad = SPEC.replace("first_name", "firstname")
        r = await c.post("/v1/campaigns?dry_run=true", content=bad.encode(), headers=YAML)
        assert r.status_code == 422, r.text
        [err] = r.json()["errors"]
        assert (err["line"], err["field"]) == (7, "flow.ncco.0.text")
        assert "did you mean first_name?" in err["message"]

        named = SPEC.replace('  ncco:\n    - action: talk\n      text: "Hi {{first_name}}"\n',
                             "  name: welcom\n")  # fmt: skip
        r = await c.post("/v1/campaigns?dry_run=true", content=named.encode(), headers=YAML)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["text"] == (
            "body:5: flow.name: no flow named 'welcom'; did you mean welcome?"
        )

        # Nothing reached campaign.control.
        topic = f"{settings.topic_prefix}{CAMPAIGN_CONTROL.name}"
        assert await topic_size(settings, topic) == 0


async def test_list_campaigns(settings: Settings, make_ingress: AppFactory) -> None:
    progress = CampaignProgress.model_validate(
        {
            "campaign": "listed",
            "status": "running",
            "at": "2026-03-04T15:00:00Z",
            "contacts_total": 10,
            "finished": 5,
            "dials_per_min": 60.0,
        }
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        value = orjson.dumps({"state": {"progress": progress.model_dump(mode="json")}})
        topic = f"{settings.topic_prefix}{CAMPAIGN_STATE.name}"
        await producer.send_and_wait(topic, value, key=b"listed")
    finally:
        await producer.stop()
    async with make_ingress(settings) as ingress:
        assert (await ingress.client.get("/v1/campaigns")).status_code == 401
        r = await ingress.client.get("/v1/campaigns", headers=AUTH)
        assert r.status_code == 200, r.text
        [entry] = r.json()["campaigns"]
        assert (entry["campaign"], entry["status"], entry["eta_s"]) == ("listed", "running", 5.0)


async def test_a_start_runs_the_same_checks_and_dials_nobody_on_a_mistake(
    settings: Settings, make_ingress: AppFactory, tmp_path: Path
) -> None:
    (tmp_path / "contacts.csv").write_text(
        "number,first_name,timezone\n+14155550100,Chen,Mars/Olympus\n"
    )
    async with make_ingress(settings) as ingress:
        r = await ingress.client.post("/v1/campaigns", content=SPEC.encode(), headers=YAML)
        assert r.status_code == 422, r.text
        [err] = r.json()["errors"]
        assert "Mars/Olympus" in err["text"], err
    topic = f"{settings.topic_prefix}{CAMPAIGN_CONTROL.name}"
    assert await topic_size(settings, topic) == 0  # nothing started
