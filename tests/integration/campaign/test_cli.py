"""``orchestrator campaign`` commands against the real broker (no controller needed)."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from contracts.campaign import ContactResult, Disposition
from contracts.topics import CAMPAIGN_CONTROL, CAMPAIGN_RESULTS
from orchestrator.cli import cli
from orchestrator.kafka.admin import ensure_topics
from orchestrator.kafka.clients import make_producer
from orchestrator.localbroker import LocalBroker
from tests.conftest import make_settings
from tests.integration.campaign.harness import raw_records

pytestmark = [pytest.mark.integration]

CAMPAIGN = """\
name: cli-test
contacts: {csv: contacts.csv}
from: {numbers: ["14155550000"]}
flow: {ncco: [{action: talk, text: "Hi {{name}}"}]}
dnc: [dnc.txt]
"""


def _env(settings: object) -> dict[str, str]:
    s = settings
    return {
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,  # type: ignore[attr-defined]
        "TOPIC_PREFIX": s.topic_prefix,  # type: ignore[attr-defined]
        "LOG_LEVEL": "warning",
    }


def test_start_pause_and_results_through_the_cli(broker: LocalBroker, tmp_path: Path) -> None:
    settings = make_settings(broker.bootstrap)
    asyncio.run(ensure_topics(settings, create=True))
    (tmp_path / "contacts.csv").write_text("number,name\n+14155550100,Ann\n+14155550101,Bob\n")
    (tmp_path / "dnc.txt").write_text("+1 415 555 0101\n12345\n")
    f = tmp_path / "c.yaml"
    f.write_text(CAMPAIGN)
    runner = CliRunner()
    env = _env(settings)

    res = runner.invoke(cli, ["campaign", "start", str(f)], env=env)
    assert res.exit_code == 0, res.output
    assert "started cli-test (2 contacts)" in res.output
    assert "dnc.txt:2: not a phone number" in res.stderr

    res = runner.invoke(cli, ["campaign", "pause", "cli-test"], env=env)
    assert res.exit_code == 0, res.output

    records = asyncio.run(raw_records(settings, CAMPAIGN_CONTROL.name))
    assert [(k, v["action"]) for k, v in records] == [
        (b"cli-test", "start"),
        (b"cli-test", "pause"),
    ]
    assert records[0][1]["spec"]["contacts"]["csv"] == str(tmp_path / "contacts.csv")
    assert records[0][1]["contacts_total"] == 2

    # A broken file is refused with its line and field.
    f.write_text(CAMPAIGN.replace("numbers:", "numbrs:"))
    res = runner.invoke(cli, ["campaign", "start", str(f)], env=env)
    assert res.exit_code == 2
    assert "c.yaml:3: from.numbrs: unknown field" in res.stderr

    # Results: one row per contact, duplicates of a re-send dropped.
    async def produce() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            topic = f"{settings.topic_prefix}{CAMPAIGN_RESULTS.name}"
            for i, disp in (
                (0, Disposition.ANSWERED),
                (1, Disposition.DNC),
                (0, Disposition.ANSWERED),
            ):
                r = ContactResult(
                    id=ContactResult.make_id("cli-test", str(i)),
                    campaign="cli-test",
                    contact_id=str(i),
                    index=i,
                    number=f"+1415555010{i}",
                    disposition=disp,
                    attempts=1 - i,
                    call_refs=[f"cli-test.abcdef01.{i}.1"] if i == 0 else [],
                    finished_at=datetime.now(UTC),
                )
                await producer.send_and_wait(topic, r.to_bytes(), key=f"cli-test/{i}".encode())
        finally:
            await producer.stop()

    asyncio.run(produce())
    out = tmp_path / "results.csv"
    res = runner.invoke(cli, ["campaign", "results", "cli-test", "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["contact_id"], r["disposition"]) for r in rows] == [("0", "answered"), ("1", "dnc")]
    assert rows[0]["call_refs"] == "cli-test.abcdef01.0.1"
    out = tmp_path / "results.jsonl"
    res = runner.invoke(cli, ["campaign", "results", "cli-test", "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert [orjson.loads(x)["contact_id"] for x in out.read_text().splitlines()] == ["0", "1"]
