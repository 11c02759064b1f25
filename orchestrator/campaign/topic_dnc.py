"""Uploaded do-not-call numbers, read back from ``campaign.uploads`` into a campaign's list.

The controller's handlers are synchronous, so the list is filled by a background task; the
campaign reads no contact until it is complete (a contact checked against half a list could be
dialled against the caller's wishes).
"""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from contracts.campaign import TopicSlice
from orchestrator.campaign.dnc import DncList
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer

__all__ = ["load_dnc_slices"]


async def load_dnc_slices(settings: Settings, slices: list[TopicSlice], into: DncList) -> None:
    """Add every number of ``slices`` to ``into`` (records of other keys are skipped)."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        for part in slices:
            tp = TopicPartition(part.topic, part.partition)
            key = part.key.encode()
            consumer.assign([tp])
            consumer.seek(tp, part.begin)
            while await consumer.position(tp) < part.end:
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=5000)
                for m in batch.get(tp, []):
                    if m.offset >= part.end:
                        break
                    if m.key == key and m.value:
                        into.numbers.add(m.value.decode("utf-8", "replace"))
    finally:
        await consumer.stop()
