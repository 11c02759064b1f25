"""A partition whose transactional id another producer initialised is never left unread.

Found by the short soak (two calls of 1,000 ended with no outcome): a worker woken from a pause
was fenced on a partition the group then gave back to it. The runtime "gave up" the partition,
paused it and waited for the group to revoke it, which never came, since the group said the
partition was still this worker's. Its records were never read again. On the way there, the
checkpoint on revoke was fenced, yet the partition's store (holding what the aborted transaction
had applied) was kept as standby, and the producer kept with it was reused without fencing
anyone.

Here the other producer is initialised by the test, on the real broker, while the group (one
member) still gives the partition to the runtime. The record must get its output, once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any

import orjson
import pytest

from orchestrator.config import Settings
from orchestrator.kafka.membership import request_rejoin
from orchestrator.runtime import Runtime
from orchestrator.runtime.checkpoint import ExactlyOnce
from orchestrator.sandbox.checker.collect import read_topic
from tests.integration.worker.helpers import produce, topic
from tests.integration.worker.test_runtime_generic import make_runtime, same_partition_keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def committed_outputs(settings: Settings) -> list[dict[str, Any]]:
    """What a read_committed reader (the product's own consumer settings) sees of the outputs."""
    records = await read_topic(settings, topic(settings, "voice.outcomes"), limit_s=30)
    return [orjson.loads(r.value) for r in records if r.value]


async def fence(rt: Runtime[Any, Any], partition: int) -> None:
    """Claim ``partition`` from outside, as another owner would: the runtime's producer for it
    is fenced."""
    assert isinstance(rt._writer, ExactlyOnce)
    other = ExactlyOnce(rt.settings, rt._writer.group_id, rt._writer.input_topic)
    await other.claim(partition, {})
    await other.release_all()


async def until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within:.0f} s: {what}")


def outputs_of(outputs: list[dict[str, Any]], key: str, n: int) -> int:
    return sum(1 for o in outputs if o.get("key") == key and o.get("n") == n)


async def owns(rt: Runtime[Any, Any], partition: int) -> bool:
    return partition in rt.detail()["partitions"]


@pytest.mark.timeout(120)
async def test_fenced_while_the_group_still_assigns_it(kafka_settings: Settings) -> None:
    settings = kafka_settings
    partitions = settings.topic_partitions or 1
    (key,) = same_partition_keys(1, partitions, target=1)
    rt, _app = make_runtime(settings, f"rt-fenced-{uuid.uuid4().hex[:8]}", exactly_once=True)
    await rt.start()
    run = asyncio.create_task(rt.run())
    try:
        await produce(settings, "voice.events", [(key.encode(), orjson.dumps({"n": 0}))])

        async def first() -> bool:
            return outputs_of(await committed_outputs(settings), key, 0) == 1

        await until(first, 45, "the first record's output")
        await fence(rt, 1)
        await produce(settings, "voice.events", [(key.encode(), orjson.dumps({"n": 1}))])

        async def second() -> bool:
            return outputs_of(await committed_outputs(settings), key, 1) >= 1

        # Before: the partition was given up and paused, and its record never read again.
        await until(second, 45, "the output of the record whose transaction was fenced")
        assert not run.done()
        await until(lambda: owns(rt, 1), 30, "the partition claimed again")
    finally:
        rt.request_stop()
        await asyncio.wait({run}, timeout=20)
        await rt.close()

    async def each_once() -> bool:  # the commit markers follow the commit's answer
        outputs = await committed_outputs(settings)
        return outputs_of(outputs, key, 0) == 1 and outputs_of(outputs, key, 1) == 1

    await until(each_once, 30, "each output committed")
    outputs = await committed_outputs(settings)
    assert outputs_of(outputs, key, 0) == 1
    assert outputs_of(outputs, key, 1) == 1  # the fenced transaction's copy is not visible


@pytest.mark.timeout(120)
async def test_a_store_fenced_at_revoke_is_not_kept_as_standby(kafka_settings: Settings) -> None:
    """The checkpoint on revoke is fenced: what the store applied was never committed, so the
    partition comes back from the changelog and its record is replayed, with a new producer."""
    settings = kafka_settings
    partitions = settings.topic_partitions or 1
    (key,) = same_partition_keys(1, partitions, target=2)
    rt, _app = make_runtime(settings, f"rt-standby-{uuid.uuid4().hex[:8]}", exactly_once=True)
    # No checkpoint but the one on revoke (and the final one).
    rt.cfg = dataclasses.replace(rt.cfg, commit_interval_s=600.0)
    await rt.start()
    run = asyncio.create_task(rt.run())
    try:
        await until(lambda: owns(rt, 2), 45, "the partition assigned")
        await fence(rt, 2)
        applied = rt.stats["applied"]
        await produce(settings, "voice.events", [(key.encode(), orjson.dumps({"n": 0}))])

        async def seen() -> bool:
            return rt.stats["applied"] > applied

        await until(seen, 30, "the record applied in memory")
        assert request_rejoin(rt._consumer)

        async def replayed() -> bool:
            return rt.stats["applied"] > applied + 1 and await owns(rt, 2)

        # Before: restored from the standby store with the fenced producer, then given up.
        await until(replayed, 45, "the record replayed after the partition came back")
        assert 2 not in rt._fenced
    finally:
        rt.request_stop()
        await asyncio.wait({run}, timeout=20)
        await rt.close()  # its final checkpoint commits the replayed record's output

    async def committed_once() -> bool:  # the commit markers follow the commit's answer
        return outputs_of(await committed_outputs(settings), key, 0) == 1

    await until(committed_once, 30, "the replayed record's output committed")
    assert outputs_of(await committed_outputs(settings), key, 0) == 1
