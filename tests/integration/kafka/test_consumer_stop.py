"""A consumer's stop ends even when aiokafka's fetcher swallows the cancel it is sent.

aiokafka 0.14's fetcher routine, while it waits for its in-flight fetches after an assignment
change, suppresses ``CancelledError``; a stop that lands there waits forever (the compaction
tests hung 300 s in a restore's ``consumer.stop()``). The product's consumer
(:class:`orchestrator.kafka.clients.Consumer`) cancels again. Here the swallowing routine is put
in place deterministically, so the test does not depend on hitting the race.
"""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.config import Settings
from orchestrator.kafka.clients import STOP_RECANCEL_S, make_consumer
from orchestrator.kafka.reading import partitions_of, read_to_end

pytestmark = [pytest.mark.integration]


async def _swallows_one_cancel(swallowed: asyncio.Event) -> None:
    """Like the fetcher routine caught in its ``suppress(CancelledError)`` block."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        swallowed.set()
    await asyncio.Event().wait()  # the next cancel ends it


async def test_stop_ends_when_the_fetcher_swallows_the_cancel(kafka_settings: Settings) -> None:
    consumer = make_consumer(kafka_settings, group_id=None)
    await consumer.start()
    topic = f"{kafka_settings.topic_prefix}voice.events"
    await read_to_end(consumer, await partitions_of(consumer, topic), lambda *_: None)
    consumer.assign([])
    fetcher = consumer._fetcher
    real = fetcher._fetch_task
    real.cancel()
    await asyncio.gather(real, return_exceptions=True)
    swallowed = asyncio.Event()
    fetcher._fetch_task = asyncio.ensure_future(_swallows_one_cancel(swallowed))
    await asyncio.sleep(0)

    stopping = asyncio.ensure_future(consumer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5 * STOP_RECANCEL_S + 5)
    if not done:  # the old stop: free the loop, then fail
        fetcher._fetch_task.cancel()
        await stopping
    assert done, "consumer.stop() hung on a fetcher that swallowed its cancel"
    stopping.result()
    assert swallowed.is_set(), "the first cancel reached the routine and was swallowed"
    assert fetcher._fetch_task.done()


async def test_stop_of_a_consumer_after_a_restore_style_read(kafka_settings: Settings) -> None:
    """The path the hang was found on: read to the end, give the partitions back, stop; many
    times over, each bounded."""
    topic = f"{kafka_settings.topic_prefix}voice.events"
    for _ in range(20):
        consumer = make_consumer(kafka_settings, group_id=None)
        await consumer.start()
        try:
            await read_to_end(consumer, await partitions_of(consumer, topic), lambda *_: None)
            consumer.assign([])
        finally:
            stopping = asyncio.ensure_future(consumer.stop())
            done, _ = await asyncio.wait({stopping}, timeout=5 * STOP_RECANCEL_S + 5)
            if not done:
                consumer._fetcher._fetch_task.cancel()
                await stopping
            assert done, "consumer.stop() hung after a read and assign([])"
