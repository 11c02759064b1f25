"""Compaction and tombstones on the changelogs, on a real broker: a restore after the cleaner ran
gives the same state as a restore before it.

Each changelog gets a short ``segment.ms`` and tombstone retention so that the cleaner compacts
within seconds (the product's own settings are an hour and a day). The records are written the
way the roles write them: transactional state stores (``voice.state`` and ``campaign.state`` use
the runtime's changelog format) and the dispatcher's dial ledger through its partition
transaction. The state is then restored with the roles' own restore code, before and after
compaction, and compared with a fold of everything that was written.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from orchestrator.config import Settings
from orchestrator.dispatcher.ledger import DialLedger, LedgerEntry, LedgerState
from orchestrator.dispatcher.txn import PartitionTxn
from orchestrator.kafka.clients import group_name, make_admin, make_consumer, make_producer
from orchestrator.kafka.reading import partitions_of, read_to_end
from orchestrator.localbroker import LocalBroker
from orchestrator.runtime.restore import restore
from orchestrator.runtime.store import Entry, PartitionStore, encode_changelog

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    """A broker of this module's own: its cleaner works on these changelogs alone, with the fast
    settings below. (These tests used to hang now and then, in ``consumer.stop()`` after a
    restore: aiokafka's fetcher swallowed the cancel; ``tests/integration/kafka/
    test_consumer_stop.py`` covers the fix.)"""
    with LocalBroker() as own:
        yield own


FAST_CLEANING = {
    "cleanup.policy": "compact",
    "segment.ms": "300",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "100",
    "min.compaction.lag.ms": "0",
    "max.message.bytes": "1001024",
}


async def _fast_cleaning(settings: Settings, topic: str) -> None:
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, FAST_CLEANING)])
    finally:
        await admin.close()


async def _records(settings: Settings, topic: str) -> int:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    n = 0

    def count(_: Any, records: list[Any]) -> None:
        nonlocal n
        n += len(records)

    try:
        await read_to_end(consumer, await partitions_of(consumer, topic), count)
    finally:
        await consumer.stop()
    return n


async def _compacted(settings: Settings, topic: str, written: int, roll: Any) -> int:
    """Wait until the cleaner has removed records (a new record now and then rolls the active
    segment, which the cleaner never touches)."""
    for _ in range(120):
        await roll()
        left = await _records(settings, topic)
        if left < written // 2:
            return left
        await asyncio.sleep(0.5)
    raise AssertionError(f"{topic}: not compacted ({written} records written)")


async def _settled(settings: Settings, topic: str, within: float = 30.0) -> None:
    """Wait until no transaction is still completing on ``topic``: a commit is answered before
    its markers are written, so a read_committed read right after it can stop short of it."""
    committed = make_consumer(settings, group_id=None)
    everything = make_consumer(settings, group_id=None, isolation_level="read_uncommitted")
    await committed.start()
    await everything.start()
    try:
        tps = await partitions_of(committed, topic)
        deadline = asyncio.get_running_loop().time() + within
        while await committed.end_offsets(tps) != await everything.end_offsets(tps):
            assert asyncio.get_running_loop().time() < deadline, f"{topic}: transactions open"
            await asyncio.sleep(0.1)
    finally:
        await committed.stop()
        await everything.stop()


async def _restored(settings: Settings, topic: str, partitions: int) -> dict[int, dict[str, Any]]:
    await _settled(settings, topic)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        stores = {p: PartitionStore[Any](p) for p in range(partitions)}
        await restore(consumer, topic, stores, lambda raw: raw, timeout_s=90.0)
    finally:
        await consumer.stop()
    return {p: {k: (e.state, e.offset) for k, e in s.entries.items()} for p, s in stores.items()}


@pytest.mark.parametrize("changelog", ["voice.state", "campaign.state"])
async def test_store_restore_is_the_same_after_compaction(
    kafka_settings: Settings, changelog: str
) -> None:
    topic = f"{kafka_settings.topic_prefix}{changelog}"
    await _fast_cleaning(kafka_settings, topic)
    rng = random.Random(changelog)
    producer = make_producer(
        kafka_settings, transactional_id=f"compaction-{topic}", enable_idempotence=True
    )
    await producer.start()
    expected: dict[int, dict[str, Any]] = {p: {} for p in range(3)}
    written = 0
    try:
        for round_ in range(20):
            await producer.begin_transaction()
            for i in range(40):
                key, p = f"k{i}", i % 3
                offset = round_ * 100 + i
                if rng.random() < 0.15:  # finished and evicted: a tombstone
                    value = None
                    expected[p].pop(key, None)
                else:
                    state = {"round": round_, "n": rng.randrange(1000)}
                    value = encode_changelog(Entry(state, offset, 0.0), state)
                    expected[p][key] = (state, offset)
                await producer.send(topic, value, key=key.encode(), partition=p)
                written += 1
            await producer.commit_transaction()
        before = await _restored(kafka_settings, topic, 3)

        async def roll() -> None:
            async with producer.transaction():
                for p in range(3):
                    state = {"roll": True}
                    await producer.send(
                        topic,
                        encode_changelog(Entry(state, 0, 0.0), state),
                        key=b"roll",
                        partition=p,
                    )

        left = await _compacted(kafka_settings, topic, written, roll)
    finally:
        await producer.stop()
    after = await _restored(kafka_settings, topic, 3)
    for p in range(3):
        before[p].pop("roll", None)
        after[p].pop("roll", None)
    assert before == expected, "restore before compaction: the fold of everything written"
    assert after == expected, f"restore after compaction ({left} of {written} records left)"


async def test_dial_ledger_restore_is_the_same_after_compaction(
    kafka_settings: Settings,
) -> None:
    prefix = kafka_settings.topic_prefix
    ledger_topic = f"{prefix}voice.dispatch-ledger"
    commands_topic = f"{prefix}voice.commands"
    await _fast_cleaning(kafka_settings, ledger_topic)
    txn = PartitionTxn(kafka_settings, group_name(kafka_settings, "compaction"), commands_topic, 0)
    await txn.start()
    writer = DialLedger(lambda _: txn, ledger_topic, 3, keep_for=timedelta(0))
    now = datetime.now(UTC)
    written = 0
    try:
        for i in range(150):
            base = LedgerEntry(
                command_id=f"cmd-{i}",
                call_ref=f"ref-{i}",
                state=LedgerState.SENDING,
                to=f"phone:4477{i:08d}",
                at=now,
                first_at=now,
                source_partition=0,
                source_offset=i,
            )
            await writer.write(base, durable=True)
            final = LedgerState.CREATED if i % 3 else LedgerState.FAILED
            await writer.write(base.model_copy(update={"state": final, "call_uuid": f"u-{i}"}))
            written += 2
        await txn.commit()
        # Final entries whose command offset is committed and older than keep_for (0 here) are
        # tombstoned: the first 100 commands are done, the last 50 still count.
        removed = await writer.compact(0, 100, now + timedelta(seconds=1))
        await txn.commit()
        written += removed

        async def reread() -> dict[str, LedgerEntry]:
            # As a new owner does: fence first (which completes the last transaction's markers),
            # then restore.
            heir = PartitionTxn(kafka_settings, txn.group_id, commands_topic, 0)
            await heir.start()
            try:
                ledger = DialLedger(lambda _: heir, ledger_topic, 3)
                await ledger.restore(kafka_settings, [0])
            finally:
                await heir.stop()
            return {f"cmd-{i}": e for i in range(150) if (e := ledger.get(f"cmd-{i}"))}

        before = await reread()

        async def roll() -> None:
            roller = PartitionTxn(kafka_settings, txn.group_id, commands_topic, 0)
            await roller.start()
            try:
                await DialLedger(lambda _: roller, ledger_topic, 3).write(
                    LedgerEntry(
                        command_id="roll",
                        state=LedgerState.NOT_SENT,
                        at=now,
                        first_at=now,
                        source_partition=0,
                        source_offset=10_000,
                    ),
                    durable=True,
                )
            finally:
                await roller.stop()

        left = await _compacted(kafka_settings, ledger_topic, written, roll)
        after = await reread()
    finally:
        await txn.stop()
    assert removed == 100
    assert sorted(before) == [f"cmd-{i}" for i in range(100, 150)]
    assert after == before, f"after compaction ({left} of {written} records left)"
