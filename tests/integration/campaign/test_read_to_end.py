"""Readers of campaign.results / campaign.state see every record of the last batch.

Tansu answers ListOffsets(latest) with the last batch's base offset + 1, not the offset after its
last record (``orchestrator/kafka/ends.py``). A reader that fetches whole batches still gets them,
unless a fetch is cut by ``max_records`` inside the last batch: then its position passes the
reported end and it stops with the rest of the batch unread. ``read_results`` uses the true end.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from contracts.campaign import ContactResult
from contracts.topics import CAMPAIGN_RESULTS
from orchestrator.campaign.control import read_results
from orchestrator.config import Settings

pytestmark = pytest.mark.integration


async def _batch(producer: AIOKafkaProducer, topic: str, first: int, n: int) -> None:
    now = datetime.now(UTC)
    batch = producer.create_batch()
    for i in range(first, first + n):
        r = ContactResult(
            id=ContactResult.make_id("rte", f"c{i}"),
            campaign="rte",
            contact_id=f"c{i}",
            index=i,
            number=f"+442079{i:06d}",
            disposition="answered",
            attempts=1,
            finished_at=now,
        )
        assert batch.append(key=f"rte/c{i}".encode(), value=r.to_bytes(), timestamp=None)
    await producer.send_batch(batch, topic, partition=0)


async def test_read_results_sees_all_of_the_last_batch(kafka_settings: Settings) -> None:
    topic = f"{kafka_settings.topic_prefix}{CAMPAIGN_RESULTS.name}"
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_settings.kafka_bootstrap_servers,
        max_batch_size=4 * 1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    try:
        # A batch of 50, then one larger than a reader's max_records (5,000): the broker reports
        # the end as 51, and the reader's first fetch stops at 5,000 records.
        await _batch(producer, topic, 0, 50)
        await _batch(producer, topic, 50, 5_100)
    finally:
        await producer.stop()
    found = await read_results(kafka_settings, "rte")
    assert len(found) == 5_150
    assert [r.index for r in found] == list(range(5_150))
