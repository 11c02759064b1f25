"""The runtime's pure parts: the store's timers and eviction, offset tracking, routing, codecs."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.runtime.engine import _Partition
from orchestrator.runtime.output import key_hash
from orchestrator.runtime.store import (
    Entry,
    KeyBusyError,
    PartitionStore,
    decode_changelog,
    encode_changelog,
)


def test_timer_is_replaced_by_a_later_step() -> None:
    store: PartitionStore[dict[str, int]] = PartitionStore(0)
    e = Entry({"n": 1}, 5, 100.0)
    store.entries["k"] = e
    store.schedule("k", e, 101.0)
    store.schedule("k", e, 103.0)  # a newer record re-armed it
    assert store.due_keys(102.0) == []  # the old heap entry is re-queued, not fired
    assert store.due_keys(103.0) == ["k"]
    assert store.due_keys(200.0) == []  # fired once


def test_cancelled_timer_never_fires() -> None:
    store: PartitionStore[int] = PartitionStore(0)
    e = Entry(1, 0, 0.0)
    store.entries["k"] = e
    store.schedule("k", e, 1.0)
    store.schedule("k", e, None)
    assert store.due_keys(10.0) == []


def test_earlier_timer_wins_over_queued_later_one() -> None:
    store: PartitionStore[int] = PartitionStore(0)
    e = Entry(1, 0, 0.0)
    store.entries["k"] = e
    store.schedule("k", e, 10.0)
    store.schedule("k", e, 2.0)
    assert store.due_keys(2.0) == ["k"]
    assert store.due_keys(11.0) == []


def test_finished_keys_expire_after_retention_and_only_once_committed() -> None:
    store: PartitionStore[int] = PartitionStore(0)
    for i, key in enumerate(["a", "b"]):
        e = Entry(i, offset=10 + i, touched=0.0)
        store.entries[key] = e
        store.mark_finished(key, e, at=100.0 + i)
    assert store.expired(now=150.0, retention_s=60, committed=100) == []  # retention not over
    assert store.expired(now=161.0, retention_s=60, committed=11) == [
        "a"
    ]  # b's offset 11 not committed
    assert store.expired(now=161.0, retention_s=60, committed=12) == ["b"]


def test_unfinished_key_is_not_evicted() -> None:
    store: PartitionStore[int] = PartitionStore(0)
    e = Entry(0, 1, 0.0)
    store.entries["k"] = e
    store.mark_finished("k", e, 1.0)
    store.mark_finished("k", e, None)  # a new record reopened it
    assert store.expired(1000.0, 1, 100) == []
    store.mark_finished("k", e, 500.0)
    assert store.expired(1000.0, 1, 100) == ["k"]


def test_punctuate_api_refuses_busy_keys_and_marks_dirty() -> None:
    store: PartitionStore[int] = PartitionStore(0)
    store.put("a", 1, timer_due=5.0)
    assert store.get("a") == 1 and "a" in store.dirty and store.due_keys(5.0) == ["a"]
    store.entries["a"].busy = True
    with pytest.raises(KeyBusyError):
        store.put("a", 2)
    assert list(store.items()) == []
    store.entries["a"].busy = False
    store.delete("a")
    assert "a" not in store and "a" in store.dirty


def test_changelog_round_trip_and_reindex() -> None:
    e = Entry({"x": [1, 2]}, 42, 1000.5)
    e.due = 1001.0
    e.done_at = 1000.9
    offset, state, touched, due, done = decode_changelog(encode_changelog(e, e.state))
    assert (offset, state, touched, due, done) == (42, {"x": [1, 2]}, 1000.5, 1001.0, 1000.9)
    store: PartitionStore[dict[str, list[int]]] = PartitionStore(3)
    restored = Entry(state, offset, touched)
    restored.due, restored.done_at = due, done
    store.load("k", restored)
    store.reindex()
    assert store.due_keys(1001.0) == ["k"]
    assert store.expired(1001.0, 0.0, 43) == ["k"]
    store.load("k", None)  # tombstone
    assert "k" not in store
    with pytest.raises(ValueError):
        decode_changelog(b'{"state": 1}')


def test_committable_offset_stays_below_incomplete_work() -> None:
    # The output buffers play no part in the offsets.
    part: _Partition[int] = _Partition(
        TopicPartition("t", 0),
        PartitionStore(0),
        0,
        None,
        None,  # type: ignore[arg-type]
    )
    assert part.committable() is None
    for off in (10, 11, 12, 13):
        part.pending.append(off)
        part.last = off
    part.done.update({11, 13})
    assert part.committable() == 10  # 10 still running: nothing at or above it is committed
    part.done.add(10)
    assert part.committable() == 12
    part.done.add(12)
    assert part.committable() == 14 and not part.pending


@given(st.binary(min_size=1, max_size=40), st.integers(1, 64))
def test_key_routing_matches_the_default_partitioner(key: bytes, n: int) -> None:
    parts = list(range(n))
    assert key_hash(key) % n == DefaultPartitioner()(key, parts, parts)


def test_key_routing_on_flow_keys() -> None:
    rng = random.Random(0)
    for _ in range(200):
        key = f"call-{rng.randrange(10**7):07d}".encode()
        assert key_hash(key) % 12 == DefaultPartitioner()(key, list(range(12)), [])
