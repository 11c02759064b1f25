"""The worker's decode step and the health endpoints (real HTTP on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import urllib.request
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from handlers.voice import InvalidEvent
from orchestrator.runtime import Context, DecodeError, HealthServer
from orchestrator.sandbox.synthetic import make_scenario
from orchestrator.worker.voice_app import VoiceApp


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_rejects_junk_with_decode_error_only(value: bytes) -> None:
    app = VoiceApp("p.")
    with contextlib.suppress(DecodeError):  # anything else fails the test
        app.decode(b"k", value)


@pytest.mark.parametrize("value", [None, b"", b"[1]", b'{"type": "x"}', b"\xff\xfe", b'"s"'])
def test_decode_rejects_non_envelopes(value: bytes | None) -> None:
    with pytest.raises(DecodeError):
        VoiceApp().decode(b"k", value)


def test_apply_then_timer_emits_outcomes_to_prefixed_topics() -> None:
    app = VoiceApp("p.", settle_s=0.5)
    sc = make_scenario(random.Random(3), "call-3", "machine")
    state: Any = None
    topics: list[str] = []
    ctx = Context()
    for env in sc.envelopes:
        step = app.apply(sc.flow_key, state, app.decode(b"", orjson.dumps(env)), ctx)
        assert step.timer == 0.5 and not step.finished
        state = step.state
        topics += [o.topic for o in step.outputs]
    assert topics == ["p.voice.commands"]
    ctx.idle_s = 0.5
    step = app.on_timer(sc.flow_key, state, ctx)
    assert step.finished and step.timer is None
    assert {o.topic for o in step.outputs} == {"p.voice.outcomes"}
    assert {orjson.loads(o.value or b"")["id"] for o in step.outputs} == set(sc.outcomes)


def test_record_key_must_match_flow_key() -> None:
    app = VoiceApp()
    env = make_scenario(random.Random(1), "call-1", "busy").envelopes[0]
    with pytest.raises(InvalidEvent):
        app.apply("call-2", None, env, Context())


async def test_health_endpoints() -> None:
    registry = CollectorRegistry()
    Counter("orchestrator_test_things", "x", registry=registry).inc()
    state = {"ready": False}
    server = HealthServer(
        registry,
        alive=lambda: True,
        ready=lambda: state["ready"],
        detail=lambda: {"partitions": [1]},
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    base = f"http://127.0.0.1:{server.port}"

    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    try:
        assert await asyncio.to_thread(get, "/healthz") == (200, b'{"alive":true}')
        code, body = await asyncio.to_thread(get, "/readyz")
        assert code == 503 and orjson.loads(body) == {"ready": False, "partitions": [1]}
        state["ready"] = True
        assert (await asyncio.to_thread(get, "/readyz"))[0] == 200
        code, body = await asyncio.to_thread(get, "/metrics")
        assert code == 200 and b"orchestrator_test_things_total 1.0" in body
        assert (await asyncio.to_thread(get, "/nope"))[0] == 404
    finally:
        await server.stop()
