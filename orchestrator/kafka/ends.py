"""End offsets that are true on the local broker too.

Tansu (the embedded broker) answers ListOffsets(latest) with the base offset of the partition's
last record *batch* + 1, not the offset after its last record: after a producer batch of 50
records it reports 1 more than the batch's first offset. A restore that reads "to the end" from
that number silently drops the rest of the batch (found by the soak: restored worker state older
than the committed input offset, and dial-ledger entries missing after a kill -9). Apache Kafka
reports the true high watermark; this helper is a no-op cost there (one empty fetch).

``end_offsets`` probes past the reported end until a fetch returns nothing and returns the
offset after the last record seen. It must only be used where nobody else is writing the
partitions (restores of partitions this process just took over), which is where ends matter.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["end_offsets"]


async def end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], *, probe_ms: int = 200
) -> dict[TopicPartition, int]:
    """The offset after the last record of each assigned partition; positions are preserved."""
    ends = {tp: int(off) for tp, off in (await consumer.end_offsets(tps)).items()}
    probe = [tp for tp in tps if ends[tp] > 0]
    if not probe:
        return ends
    saved = {tp: await consumer.position(tp) for tp in probe}
    for tp in probe:
        consumer.seek(tp, ends[tp])
    while True:
        batch = await consumer.getmany(*probe, timeout_ms=probe_ms, max_records=10_000)
        if not any(batch.values()):
            break
        for tp, records in batch.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
    for tp, pos in saved.items():
        consumer.seek(tp, pos)
    return ends
