"""``App.state_key``: records of many Kafka keys share one state, in partition order.

The agents app keeps every agent in one state (the pool), but its input is keyed by agent id and
by call. The hook maps each record to a state key; the runtime then orders, stores, checkpoints,
deduplicates replays (by source offset) and restores per *state* key. Checked on the real broker
for a plain-function (inline) app and an ``async`` one.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest

from orchestrator.config import Settings
from orchestrator.runtime import App, Context, Output, Runtime, RuntimeConfig, Step
from orchestrator.runtime.output import key_hash
from tests.integration.worker.helpers import produce, read_json, read_topic, topic, wait_for

pytestmark = [pytest.mark.integration]

State = dict[str, Any]


class _Merger(App[State, dict[str, Any]]):
    """Every record of a partition into one state ("all-<n>"); ``bad`` keys refuse a state key."""

    name = "merger"
    invalid_errors = (ValueError,)

    def __init__(self, out: str) -> None:
        self.out = out
        self.seen_keys: list[tuple[str, str]] = []

    def decode(self, key: bytes, value: bytes | None) -> dict[str, Any]:
        doc = orjson.loads(value or b"null")
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        return doc

    def state_key(self, key: str, event: dict[str, Any]) -> str:
        if key.startswith("bad"):
            raise ValueError("no state for this key")
        return f"all-{event['group']}"

    def _step(
        self, key: str, state: State | None, event: dict[str, Any], ctx: Context
    ) -> Step[State]:
        self.seen_keys.append((key, ctx.record_key))
        seq = [*(state or {"seq": []})["seq"], f"{ctx.record_key}:{event['n']}"]
        out = Output(self.out, key.encode(), orjson.dumps({"state": key, "seq": seq}))
        return Step({"seq": seq}, [out])


class InlineMerger(_Merger):
    def apply(
        self, key: str, state: State | None, event: dict[str, Any], ctx: Context
    ) -> Step[State]:
        return self._step(key, state, event, ctx)


class AsyncMerger(_Merger):
    async def apply(
        self, key: str, state: State | None, event: dict[str, Any], ctx: Context
    ) -> Step[State]:
        # Yield, so that records of different Kafka keys (same state) would overlap if the runtime
        # ordered them by Kafka key instead of by state key.
        await asyncio.sleep(0.005 * (event["n"] % 3))
        return self._step(key, state, event, ctx)


def _runtime(settings: Settings, app: _Merger, group: str) -> Runtime[State, dict[str, Any]]:
    return Runtime(
        settings,
        app,
        RuntimeConfig(
            input_topic=topic(settings, "voice.events"),
            changelog_topic=topic(settings, "voice.state"),
            dlq_topic=topic(settings, "voice.dlq"),
            group_id=group,
            output_topics=[topic(settings, "voice.outcomes")],
            commit_interval_s=0.1,
            consumer_overrides={"session_timeout_ms": 6000, "heartbeat_interval_ms": 500},
        ),
    )


def _keys_in_partition(n: int, target: int, partitions: int = 3) -> list[str]:
    keys, i = [], 0
    while len(keys) < n:
        k = f"agent-{i}"
        if key_hash(k.encode()) % partitions == target:
            keys.append(k)
        i += 1
    return keys


@pytest.mark.parametrize("kind", ["inline", "async"])
async def test_state_key_merges_kafka_keys_in_order_and_restores(
    kafka_settings: Settings, kind: str
) -> None:
    settings = kafka_settings
    group = f"sk-{uuid.uuid4().hex[:8]}"
    keys = _keys_in_partition(5, target=1)
    records = [(keys[i % 5].encode(), orjson.dumps({"n": i, "group": "g"})) for i in range(30)] + [
        (b"bad-1", orjson.dumps({"n": 99, "group": "g"}))
    ]
    await produce(settings, "voice.events", records)
    expected = [f"{keys[i % 5]}:{i}" for i in range(30)]
    make = InlineMerger if kind == "inline" else AsyncMerger

    app = make(topic(settings, "voice.outcomes"))
    rt = _runtime(settings, app, group)
    await rt.start()
    task = asyncio.create_task(rt.run())
    try:
        await wait_for(
            lambda: _last_seq(settings, "all-g", 30), 30, "every record applied to one state"
        )
        assert rt._parts[1].store.get("all-g") == {"seq": expected}
        assert set(rt._parts[1].store.keys()) == {"all-g"}
        # apply gets the state key; the Kafka key is in the context.
        assert {sk for sk, _ in app.seen_keys} == {"all-g"}
        assert {rk for _, rk in app.seen_keys} == set(keys)
    finally:
        rt.request_stop()
        await task
        await rt.close()

    changelog = [m for m in await read_topic(settings, "voice.state") if m.value is not None]
    assert changelog and {m.key for m in changelog} == {b"all-g"}, "the changelog is per state key"
    letters = await read_json(settings, "voice.dlq")
    assert [(d["reason"], d["error"][:9]) for d in letters] == [("invalid_event", "state key")]

    # A new owner restores the one state and continues it; nothing already applied is redone.
    await produce(
        settings, "voice.events", [(keys[2].encode(), orjson.dumps({"n": 30, "group": "g"}))]
    )
    rt2 = _runtime(settings, make(topic(settings, "voice.outcomes")), group)
    await rt2.start()
    task2 = asyncio.create_task(rt2.run())
    try:
        await wait_for(lambda: _last_seq(settings, "all-g", 31), 30, "the record after restart")
        assert rt2._parts[1].store.get("all-g") == {"seq": [*expected, f"{keys[2]}:30"]}
    finally:
        rt2.request_stop()
        await task2
        await rt2.close()


async def _last_seq(settings: Settings, state: str, n: int) -> bool:
    outs = [o for o in await read_json(settings, "voice.outcomes") if o.get("state") == state]
    return any(len(o["seq"]) == n for o in outs)
