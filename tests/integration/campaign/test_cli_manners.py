"""``campaign status``, ``list`` and ``results`` as scripts see them (issue 14), on a real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from click.testing import CliRunner

from contracts.campaign import CampaignProgress, ContactResult, Disposition
from contracts.topics import CAMPAIGN_RESULTS, CAMPAIGN_STATE
from orchestrator.cli import cli
from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.kafka.clients import make_producer
from orchestrator.localbroker import LocalBroker
from tests.conftest import make_settings

pytestmark = [pytest.mark.integration]

AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def _progress(name: str, status: str, **kw: object) -> CampaignProgress:
    return CampaignProgress.model_validate(
        {
            "campaign": name,
            "status": status,
            "at": AT,
            "started_at": AT - timedelta(hours=1),
            "contacts_total": 50,
            "max_concurrent": 10,
            "cps_limit": 3.0,
            **kw,
        }
    )


async def _produce(settings: Settings) -> None:
    running = _progress(
        "spring",
        "running",
        dialed=40,
        finished=1,
        retries_pending=3,
        retries_pending_by_disposition={"timeout": 2, "busy": 1},
        next_retry_at=AT + timedelta(minutes=25),
    )
    done = _progress("autumn", "completed", dialed=50, finished=50)
    result = ContactResult(
        id=ContactResult.make_id("spring", "0"),
        campaign="spring",
        contact_id="0",
        index=0,
        number="+14155550100",
        disposition=Disposition.ANSWERED,
        attempts=1,
        finished_at=AT,
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        state = f"{settings.topic_prefix}{CAMPAIGN_STATE.name}"
        for p in (running, done):
            value = orjson.dumps({"state": {"progress": p.model_dump(mode="json")}})
            await producer.send_and_wait(state, value, key=p.campaign.encode())
        results = f"{settings.topic_prefix}{CAMPAIGN_RESULTS.name}"
        await producer.send_and_wait(results, result.to_bytes(), key=b"spring/0")
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def env(broker: LocalBroker) -> dict[str, str]:
    settings = make_settings(broker.bootstrap)
    asyncio.run(ensure_topics(settings, create=True))
    asyncio.run(_produce(settings))
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "LOG_LEVEL": "warning",
    }


@pytest.mark.timeout(60)  # following a running campaign would never return: fail, not hang
def test_status_piped_prints_once_with_the_next_retry(env: dict[str, str]) -> None:
    # CliRunner's stdout is not a terminal: a running campaign is printed once, not followed.
    res = CliRunner().invoke(cli, ["campaign", "status", "spring"], env=env)
    assert res.exit_code == 0, res.output
    assert res.stdout.count("campaign spring") == 1
    assert "next retry  15:25:00 UTC (in 25 min)" in res.stdout
    assert "retries waiting  busy 1, timeout 2" in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80


def test_status_json(env: dict[str, str]) -> None:
    res = CliRunner().invoke(cli, ["campaign", "status", "spring", "--json"], env=env)
    assert res.exit_code == 0, res.output
    [line] = res.stdout.splitlines()
    doc = orjson.loads(line)
    assert doc["status"] == "running"
    assert doc["next_retry_at"] == "2026-03-04T15:25:00Z"
    assert doc["retries_pending_by_disposition"] == {"timeout": 2, "busy": 1}


def test_status_of_an_unknown_campaign(env: dict[str, str]) -> None:
    res = CliRunner().invoke(cli, ["campaign", "status", "nope", "--once"], env=env)
    assert res.exit_code == 1
    assert res.stderr == "error: no campaign named 'nope' (yet)\n"


def test_list_and_list_json(env: dict[str, str]) -> None:
    res = CliRunner().invoke(cli, ["campaign", "list"], env=env)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["campaign", "status", "contacts", "dialed", "in", "flight",
                                "retries", "started"]  # fmt: skip
    assert {ln.split()[0] for ln in lines[1:]} == {"spring", "autumn"}
    assert max(len(line) for line in lines) <= 80
    res = CliRunner().invoke(cli, ["campaign", "list", "--json"], env=env)
    assert res.exit_code == 0, res.output
    doc = orjson.loads(res.stdout)
    assert {(d["campaign"], d["status"]) for d in doc} == {
        ("spring", "running"),
        ("autumn", "completed"),
    }


def test_results_of_a_running_campaign_say_they_are_partial(env: dict[str, str]) -> None:
    res = CliRunner().invoke(cli, ["campaign", "results", "spring", "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert res.stderr == (
        "warning: campaign spring is running: results are partial (1 of 50 contacts final)\n"
    )
    assert [orjson.loads(x)["contact_id"] for x in res.stdout.splitlines()] == ["0"]
    res = CliRunner().invoke(cli, ["campaign", "results", "autumn", "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
