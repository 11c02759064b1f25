"""Contacts from a Kafka topic: a fixed order and row numbers, read lazily, and a campaign on it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from contracts.campaign import CampaignStatus, ContactsSource
from orchestrator.campaign.topic_source import TopicContactReader, topic_ranges
from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.kafka.clients import make_producer
from orchestrator.localbroker import LocalBroker
from tests.integration.campaign.harness import campaign_spec, local_env, results_raw

pytestmark = [pytest.mark.integration]


async def _make_topic(settings: Settings, name: str, n: int) -> str:
    from contracts.topics import TopicSpec

    topic = f"{settings.topic_prefix}{name}"
    spec = TopicSpec(topic, 3, "contact", "contact JSON", replication_factor=1)
    await ensure_topics(settings, create=True, specs=[spec])
    producer = make_producer(settings)
    await producer.start()
    try:
        for i in range(n):
            row = {"id": f"k{i}", "number": f"+44 20 7946 {i:04d}", "name": f"P{i}"}
            await producer.send_and_wait(topic, orjson.dumps(row), key=f"k{i}".encode())
    finally:
        await producer.stop()
    return topic


async def _read_all(reader: TopicContactReader) -> list:
    out: list = []
    for _ in range(200):
        out += reader.read(7)
        if reader.eof:
            return out
        await asyncio.sleep(0.05)
    raise AssertionError(f"reader never reached the end: {reader.error}")


async def test_topic_reader_order_restart_and_fixed_ranges(kafka_settings: Settings) -> None:
    topic = await _make_topic(kafka_settings, "contacts-a", 60)
    ranges = await topic_ranges(kafka_settings, topic)
    assert sum(end - begin for _, begin, end in ranges) == 60
    got = await _read_all(TopicContactReader(kafka_settings, topic, ranges))
    assert [c.index for c in got] == list(range(60))
    assert len({c.contact_id for c in got}) == 60 and all(c.valid for c in got)
    # A restarted reader continues at its cursor with the same row numbers.
    again = await _read_all(TopicContactReader(kafka_settings, topic, ranges, start=25))
    assert [(c.index, c.contact_id) for c in again] == [(c.index, c.contact_id) for c in got[25:]]
    # Records added after the start are not part of this campaign.
    producer = make_producer(kafka_settings)
    await producer.start()
    await producer.send_and_wait(topic, b'{"number": "+442079469999"}', key=b"late")
    await producer.stop()
    late = await _read_all(TopicContactReader(kafka_settings, topic, ranges))
    assert len(late) == 60


@pytest.mark.timeout(180)
async def test_campaign_on_a_contact_topic(broker: LocalBroker, tmp_path: Path) -> None:
    n = 40
    (tmp_path / "dnc.txt").write_text("+44 20 7946 0003\n")
    async with local_env(
        broker.bootstrap, cps=20, time_scale=20, clock_scale=60, seed=3, faults=False
    ) as env:
        topic = await _make_topic(env.settings, "contacts-b", n)
        ranges = await topic_ranges(env.settings, topic)
        spec = campaign_spec(
            "tpc", tmp_path / "unused.csv", tmp_path / "dnc.txt", cap=10, hours=False
        )
        spec = spec.model_copy(
            update={"contacts": ContactsSource(topic=topic, default_region="GB")}
        )
        from contracts.campaign import ControlAction
        from orchestrator.campaign.operations import send_control

        await send_control(
            env.settings, "tpc", ControlAction.START, spec=spec, contacts_total=n,
            source_ranges=ranges,
        )  # fmt: skip
        await env.wait_for("tpc", lambda p: p.status == CampaignStatus.COMPLETED, within=120)
        results = await results_raw(env.settings)
    by_contact = {r["contact_id"]: r for r in results}
    assert len(by_contact) == n
    assert by_contact["k3"]["disposition"] == "dnc"
