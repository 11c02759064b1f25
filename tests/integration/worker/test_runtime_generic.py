"""The generic runtime with an ``async`` application, in process, on the local broker.

What the campaign controller will rely on: per-key order with concurrency across keys, a slow key
not blocking its partition, offsets committed only below completed work, timers, punctuate,
dead letters, and state restored by the next owner.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from orchestrator.config import Settings
from orchestrator.kafka.clients import group_name
from orchestrator.runtime import App, Context, Output, PartitionStore, Runtime, RuntimeConfig, Step
from orchestrator.runtime.output import key_hash
from tests.integration.worker.helpers import produce, read_json, read_topic, topic, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

State = dict[str, Any]


class Recorder(App[State, dict[str, Any]]):
    name = "recorder"
    invalid_errors = (ValueError,)

    def __init__(self, out: str) -> None:
        self.out = out
        self.active = 0
        self.max_active = 0

    def decode(self, key: bytes, value: bytes | None) -> dict[str, Any]:
        event = orjson.loads(value or b"null")
        if not isinstance(event, dict):
            raise ValueError("not an object")  # decode errors other than DecodeError: undecodable
        return event

    async def apply(
        self, key: str, state: State | None, event: dict[str, Any], ctx: Context
    ) -> Step[State]:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(event.get("sleep", 0.0))
        finally:
            self.active -= 1
        if event.get("boom") == "invalid":
            raise ValueError("asked to fail")
        if event.get("boom") == "bug":
            raise RuntimeError("a bug")
        seq = [*(state or {"seq": []})["seq"], event["n"]]
        out = Output(
            self.out,
            key.encode(),
            orjson.dumps(
                {"key": key, "n": event["n"], "t": time.monotonic(), "offset": ctx.offset}
            ),
        )
        return Step({"seq": seq}, [out], timer=event.get("timer"))

    def on_timer(self, key: str, state: State, ctx: Context) -> Step[State]:
        out = Output(
            self.out, key.encode(), orjson.dumps({"key": key, "timer": True, "idle": ctx.idle_s})
        )
        return Step({**state, "timer_fired": True}, [out], finished=True)

    def punctuate(
        self, partition: int, store: PartitionStore[State], ctx: Context
    ) -> Iterable[Output]:
        tick_key = f"tick-{partition}"
        ticks = (store.get(tick_key) or {"seq": []})["seq"]
        store.put(tick_key, {"seq": [*ticks, len(ticks)]}, now=ctx.now)
        return [
            Output(self.out, tick_key.encode(), orjson.dumps({"key": tick_key, "tick": len(ticks)}))
        ]


def same_partition_keys(n: int, partitions: int, target: int) -> list[str]:
    keys: list[str] = []
    i = 0
    while len(keys) < n:
        key = f"key-{i}"
        if key_hash(key.encode()) % partitions == target:
            keys.append(key)
        i += 1
    return keys


def make_runtime(
    settings: Settings, group: str, *, exactly_once: bool = False
) -> tuple[Runtime[State, dict[str, Any]], Recorder]:
    app = Recorder(topic(settings, "voice.outcomes"))
    cfg = RuntimeConfig(
        input_topic=topic(settings, "voice.events"),
        changelog_topic=topic(settings, "voice.state"),
        dlq_topic=topic(settings, "voice.dlq"),
        group_id=group,
        output_topics=[topic(settings, "voice.outcomes")],
        concurrency=16,
        commit_interval_s=0.1,
        punctuate_interval_s=0.5,
        retention_s=0.5,
        consumer_overrides={"session_timeout_ms": 6000, "heartbeat_interval_ms": 500},
        exactly_once=exactly_once,
    )
    return Runtime(settings, app, cfg), app


async def committed(settings: Settings, group: str, partition: int) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_name(settings, group),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic(settings, "voice.events"), partition))
    finally:
        await consumer.stop()


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
async def test_async_app_order_concurrency_commits_timers_punctuate_dlq_restore(
    kafka_settings: Settings,
    exactly_once: bool,
) -> None:
    settings = kafka_settings
    group = f"rt-{uuid.uuid4().hex[:8]}"
    slow, *others = same_partition_keys(9, 3, target=0)
    records: list[tuple[bytes, bytes]] = [(slow.encode(), orjson.dumps({"n": 0, "sleep": 2.5}))]
    for n in range(5):  # 8 keys x 5 records, random-ish sleeps, all on the slow key's partition
        for i, key in enumerate(others):
            records.append((key.encode(), orjson.dumps({"n": n, "sleep": 0.01 * ((i + n) % 4)})))
    records.append((slow.encode(), orjson.dumps({"n": 1, "timer": 0.3})))
    records += [
        (b"bad-1", b"[1, 2]"),
        (b"bad-2", orjson.dumps({"n": 0, "boom": "invalid"})),
        (b"bad-3", orjson.dumps({"n": 0, "boom": "bug"})),
    ]
    await produce(settings, "voice.events", records)

    rt, app = make_runtime(settings, group, exactly_once=exactly_once)
    await rt.start()
    task = asyncio.create_task(rt.run())
    try:
        # While the slow key's first record is running, the others on its partition complete...
        outs = await wait_for(
            lambda: _outs_for(settings, set(others), 5),
            30,
            "the other keys to complete while the slow one runs",
            every=0.2,
        )
        assert outs is not None
        # ... and the committed offset stays at the slow record (offset 0 of partition 0).
        c = await committed(settings, group, 0)
        assert c is None or c == 0, f"committed {c} past an unfinished record"
        await wait_for(lambda: _outs_for(settings, {slow}, 2), 30, "the slow key")
        await wait_for(lambda: _has(settings, lambda o: o.get("timer")), 10, "the timer output")
        # The timer step said "finished": the key is evicted after retention (0.5 s) and commit.
        store = rt._parts[0].store
        await wait_for(lambda: slow not in store, 10, "the finished key to be evicted")
        await wait_for(
            lambda: _has(settings, lambda o: o.get("tick") == 1), 10, "two punctuate ticks"
        )
        await wait_for(
            lambda: committed_past(
                settings, group, 0, len([r for r in records if key_hash(r[0]) % 3 == 0])
            ),
            10,
            "the commit to move past everything",
        )
    finally:
        rt.request_stop()
        await task
        await rt.close()
    assert app.max_active > 1, "different keys ran concurrently"
    outputs = await read_json(settings, "voice.outcomes")
    for key in others:
        assert [o["n"] for o in outputs if o.get("key") == key and "n" in o] == list(range(5)), (
            "per-key order"
        )
    letters = {d["key_b64"]: d["reason"] for d in await read_json(settings, "voice.dlq")}
    tombstones = [
        m
        for m in await read_topic(settings, "voice.state")
        if m.key == slow.encode() and m.value is None
    ]
    assert tombstones, "eviction writes a tombstone to the changelog"
    assert {base64.b64decode(k).decode(): r for k, r in letters.items()} == {
        "bad-1": "undecodable",
        "bad-2": "invalid_event",
        "bad-3": "handler_error",
    }

    # A second runtime in the group restores the states and continues them.
    await produce(settings, "voice.events", [(others[0].encode(), orjson.dumps({"n": 5}))])
    rt2, _ = make_runtime(settings, group, exactly_once=exactly_once)
    await rt2.start()
    task2 = asyncio.create_task(rt2.run())
    try:
        await wait_for(
            lambda: _outs_for(settings, {others[0]}, 6), 30, "the record after the restart"
        )
        part = rt2._parts[0]
        assert part.store.get(others[0]) == {"seq": [0, 1, 2, 3, 4, 5]}
        assert rt2.stats["restored_records"] > 0
    finally:
        rt2.request_stop()
        await task2
        await rt2.close()


async def _outs_for(settings: Settings, keys: set[str], count: int) -> list[dict[str, Any]] | None:
    outs = [
        o for o in await read_json(settings, "voice.outcomes") if o.get("key") in keys and "n" in o
    ]
    per: dict[str, int] = {}
    for o in outs:
        per[o["key"]] = per.get(o["key"], 0) + 1
    return outs if all(per.get(k, 0) >= count for k in keys) else None


async def _has(settings: Settings, pred: Any) -> bool:
    return any(pred(o) for o in await read_json(settings, "voice.outcomes"))


async def committed_past(settings: Settings, group: str, partition: int, n: int) -> bool:
    c = await committed(settings, group, partition)
    return c is not None and c >= n
