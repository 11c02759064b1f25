"""Readers of campaign.results / campaign.state see every record of the last batch.

A reader whose fetch is cut by ``max_records`` inside the last batch must keep going until its
position reaches the partition's end, not stop with the rest of the batch unread. (Found on an
earlier memory-only broker that under-reported ends; kept as a regression test on Apache Kafka.)
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from contracts.campaign import ContactResult
from contracts.topics import CAMPAIGN_RESULTS
from orchestrator.campaign.operations import read_results
from orchestrator.config import Settings

pytestmark = pytest.mark.integration


async def _batch(producer: AIOKafkaProducer, topic: str, first: int, n: int) -> None:
    now = datetime.now(UTC)
    futures = []
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
        futures.append(
            await producer.send(topic, r.to_bytes(), key=f"rte/c{i}".encode(), partition=0)
        )
    for f in futures:
        await f  # raises if the broker refused a batch


async def test_read_results_sees_all_of_the_last_batch(kafka_settings: Settings) -> None:
    topic = f"{kafka_settings.topic_prefix}{CAMPAIGN_RESULTS.name}"
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_settings.kafka_bootstrap_servers,
        max_batch_size=900 * 1024,  # under the broker's default message.max.bytes (1 MB)
        linger_ms=50,
    )
    await producer.start()
    try:
        # 50 records, then more than a reader's max_records (5,000) in large batches: the
        # reader's first fetch stops inside them, and it must carry on to the end.
        await _batch(producer, topic, 0, 50)
        await _batch(producer, topic, 50, 5_100)
    finally:
        await producer.stop()
    found = await read_results(kafka_settings, "rte")
    assert len(found) == 5_150
    assert [r.index for r in found] == list(range(5_150))
