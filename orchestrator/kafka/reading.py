"""Reading partitions to their end: the one kit for restores, read models, readers and checks.

"The end" is the offset ``ListOffsets`` reports when the read starts: the high watermark for a
``read_uncommitted`` consumer, the last stable offset for a ``read_committed`` one. A read is
done when the consumer's *position* reaches it, not when the last record seen is one short of
it: transaction markers and compacted-away records occupy offsets that no record carries, and
the position moves past them while the records do not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

__all__ = ["ReadAborted", "end_offsets", "partitions_of", "read_to_end"]

OnBatch = Callable[[TopicPartition, list[ConsumerRecord[bytes, bytes]]], None]


class ReadAborted(Exception):
    """``should_stop`` said so before the end was reached."""


async def partitions_of(
    consumer: AIOKafkaConsumer,
    topic: str,
    *,
    within: float = 3.0,
) -> list[TopicPartition]:
    """Every partition of ``topic``; ``[]`` when the cluster has no such topic.

    A missing topic is answered after a few metadata refreshes (``within`` seconds at most),
    not after aiokafka's full metadata wait, so a caller can refuse a mistyped name at once.
    Topics the product creates are ready before they are used (``ensure_topics`` waits for
    their leaders); the refreshes cover a topic another tool created a moment ago.
    """
    parts = consumer.partitions_for_topic(topic)
    if parts:
        return [TopicPartition(topic, p) for p in sorted(parts)]
    client = consumer._client  # aiokafka has no public call for one topic's metadata
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    await client.add_topic(topic)
    while not (parts := consumer.partitions_for_topic(topic)) and loop.time() < deadline:
        await asyncio.sleep(0.2)
        await client.force_metadata_update()
    return [TopicPartition(topic, p) for p in sorted(parts or ())]


async def end_offsets(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """The end of each partition now (high watermark, or last stable offset if read_committed)."""
    if not tps:
        return {}
    return {tp: int(off) for tp, off in (await consumer.end_offsets(list(tps))).items()}


async def read_to_end(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    on_batch: OnBatch,
    *,
    start: Mapping[TopicPartition, int] | Literal["beginning", "current"] = "beginning",
    within: float = 60.0,
    max_records: int = 5000,
    should_stop: Callable[[], bool] | None = None,
) -> dict[TopicPartition, int]:
    """Read each of ``tps`` to the end it has now, handing every fetched batch to ``on_batch``;
    return those ends.

    ``start``: ``"beginning"`` (assigns ``tps``), a mapping of offsets (assigns; partitions it
    leaves out start at the beginning), or ``"current"``: carry on from the positions of a
    consumer that already has ``tps`` assigned (an incremental refresh). Records written after
    the ends were listed are left for the next read (a snapshot). Raises ``TimeoutError`` after
    ``within`` seconds and :class:`ReadAborted` when ``should_stop`` returns true between
    fetches.
    """
    tps = list(tps)
    if start != "current":
        consumer.assign(tps)
    if not tps:
        return {}
    ends = await end_offsets(consumer, tps)
    if start == "beginning":
        await consumer.seek_to_beginning(*tps)
    elif start != "current":
        for tp in tps:
            if tp in start:
                consumer.seek(tp, start[tp])
        if rest := [tp for tp in tps if tp not in start]:
            await consumer.seek_to_beginning(*rest)
    remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
    async with asyncio.timeout(within):
        while remaining:
            if should_stop is not None and should_stop():
                raise ReadAborted(sorted(str(tp) for tp in remaining))
            batch = await consumer.getmany(*remaining, timeout_ms=200, max_records=max_records)
            for tp, records in batch.items():
                if records:
                    on_batch(tp, records)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    return ends
