"""A producer fenced in the middle of a transaction is recognised as fenced.

aiokafka's sender routine may meet the fence first; the call that fails then is a state error
("Can't send messages while not in transaction", an invalid transition from FATAL_ERROR), not
ProducerFenced. The dispatcher took that for a broken producer and exited (found by
tests/integration/dispatcher/test_fenced_partition.py, when the fence fell mid-transaction).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from orchestrator.config import Settings
from orchestrator.kafka.clients import make_producer
from orchestrator.kafka.fencing import FENCED, was_fenced

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(90)
async def test_a_fence_met_by_the_sender_first_is_still_a_fence(kafka_settings: Settings) -> None:
    topic = f"{kafka_settings.topic_prefix}voice.outcomes"
    tid = f"fencing-{uuid.uuid4().hex[:8]}"
    old = make_producer(kafka_settings, transactional_id=tid, enable_idempotence=True)
    await old.start()
    try:
        await old.begin_transaction()
        await (await old.send(topic, b"before", key=b"k"))  # the partition joins the transaction
        new = make_producer(kafka_settings, transactional_id=tid, enable_idempotence=True)
        await new.start()  # fences the old one, aborting its open transaction
        await new.stop()
        errors: list[BaseException] = []
        for _ in range(50):  # until the old producer's calls fail, however they fail
            try:
                await old.send(topic, b"after", key=b"k")
                await old.commit_transaction()
                await old.begin_transaction()
            except Exception as err:
                errors.append(err)
                break
            await asyncio.sleep(0.1)
        assert errors, "the fenced producer went on committing"
        assert was_fenced(errors[0], old), repr(errors[0])
        # Once fatal, every later call fails with a state error, which is still the fence.
        with pytest.raises(Exception) as later:
            await old.begin_transaction()
            await old.send(topic, b"later", key=b"k")
        assert not isinstance(later.value, FENCED), repr(later.value)  # not said: read
        assert was_fenced(later.value, old), repr(later.value)
    finally:
        await old.stop()


async def test_an_error_without_a_fence_is_not_one(kafka_settings: Settings) -> None:
    producer = make_producer(kafka_settings, transactional_id=f"fencing-{uuid.uuid4().hex[:8]}")
    assert not was_fenced(RuntimeError("boom"), producer)
    assert not was_fenced(RuntimeError("boom"), None)
