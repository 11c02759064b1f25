"""The agents app's runtime hooks, without a broker: decode, state key, time, ticks, outputs."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from contracts.agent_calls import AgentCall, AgentsTick
from contracts.envelopes import CommandResult, stable_id
from orchestrator.agents.app import POOL_KEY, AgentsApp
from orchestrator.config import Settings
from orchestrator.runtime import Context, DecodeError
from tests.unit.agents._make import agent, login

T0 = 1_800_000_000.0
REF = "sales.0123abcd.1.1"


def app() -> AgentsApp:
    s = Settings(topic_prefix="p.", public_base_url="https://hooks.example")  # type: ignore[call-arg]
    return AgentsApp(s, registry=CollectorRegistry())


def ctx(t: float, wall: float | None = None, offset: int = 0) -> Context:
    return Context(partition=0, offset=offset, timestamp_ms=int(t * 1000), now=wall or t)


def reserve(t: float) -> bytes:
    return AgentCall(
        id="r1",
        occurred_at=datetime.fromtimestamp(t, UTC),
        kind="reserve",
        campaign="sales",
        call_ref=REF,
        detected_at=t,
        uuid="callee-1",
        connect_within=2.0,
    ).to_bytes()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decode_rejects_junk_with_decode_error_only(value: bytes) -> None:
    with contextlib.suppress(DecodeError):
        app().decode(b"k", value)


def test_every_record_maps_to_the_pool_and_decisions_become_records() -> None:
    a = app()
    cmd = a.decode(b"a1", login(agent("a1"), T0).to_bytes())
    assert a.state_key("a1", cmd) == POOL_KEY
    step = a.apply(POOL_KEY, None, cmd, ctx(T0))
    desk = step.state
    assert desk is not None and desk.pool.agent_ids() == ["a1"]
    step = a.apply(POOL_KEY, desk, a.decode(REF.encode(), reserve(T0 + 1)), ctx(T0 + 1))
    topics = [(o.topic, o.record_type) for o in step.outputs]
    assert ("p.voice.commands", "CommandEnvelope") in topics
    [cmd_out] = [o for o in step.outputs if o.topic == "p.voice.commands"]
    assert cmd_out.key == b"acct:default"  # creates are keyed by account
    body = orjson.loads(cmd_out.value or b"{}")
    assert body["call_ref"] == f"{REF}.a1" and body["reply_to"] == {
        "topic": "agents.control",
        "key": REF,
    }
    # The dispatcher's result of that create comes back and is understood.
    result = CommandResult(
        id="x",
        occurred_at=datetime.fromtimestamp(T0 + 2, UTC),
        flow_key=f"{REF}.a1",
        command_id=stable_id("cmd", "create_call", f"{REF}.a1"),
        kind="create_call",
        status="succeeded",
        call_ref=f"{REF}.a1",
        call_uuid="leg-1",
    )
    a.apply(POOL_KEY, desk, a.decode(REF.encode(), result.to_bytes()), ctx(T0 + 2))
    assert desk.calls[REF].leg_uuid == "leg-1"
    # The state survives the changelog round trip.
    again = a.load_state(orjson.loads(orjson.dumps(a.dump_state(desk))))
    assert again.dump() == desk.dump()


def test_time_is_the_records_and_a_clock_far_ahead_is_capped() -> None:
    a = app()
    step = a.apply(POOL_KEY, None, a.decode(b"a1", login(agent("a1"), T0).to_bytes()), ctx(T0))
    desk = step.state
    assert desk is not None and desk.clock == T0
    later = login(agent("a2"), T0 + 3600, "l2").to_bytes()
    a.apply(POOL_KEY, desk, a.decode(b"a2", later), ctx(T0 + 3600, wall=T0 + 5))
    assert desk.clock == T0 + 6  # the wall clock plus a second, not an hour ahead


def test_a_waiting_caller_sets_a_timer_that_writes_one_tick_at_a_time() -> None:
    a = app()
    desk = a.apply(POOL_KEY, None, a.decode(REF.encode(), reserve(T0)), ctx(T0)).state
    assert desk is not None
    step = a.apply(POOL_KEY, desk, a.decode(REF.encode(), reserve(T0)), ctx(T0, offset=1))
    assert step.timer == pytest.approx(2.0)  # the deadline
    fired = a.on_timer(POOL_KEY, desk, ctx(T0 + 2.0))
    [tick] = fired.outputs
    assert (tick.topic, tick.key, tick.record_type) == ("p.agents.control", b"tick", "AgentsTick")
    assert not a.on_timer(POOL_KEY, desk, ctx(T0 + 2.1)).outputs  # one in flight
    back = AgentsTick.model_validate_json(tick.value or b"")
    step = a.apply(POOL_KEY, desk, back, ctx(back.wall + 0.01))
    kinds = [orjson.loads(o.value or b"{}").get("kind") for o in step.outputs]
    assert "abandoned" in kinds  # decided when the tick was read back
