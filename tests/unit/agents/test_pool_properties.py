"""The agent pool under random interleavings and redeliveries of its events.

Hypothesis draws sequences of agent commands and call events (for a few agents and calls, so
they collide), with some events delivered again later. Whatever it draws: no call holds two
agents, only a free agent that fits is ever reserved, a redelivered event changes nothing, the
same deliveries give the same pool, and a pool restored from its records mid-way ends where the
uninterrupted one does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.agents import AgentAction, AgentCommand, AgentNeed, AgentRecord, AgentState
from handlers.agents import (
    AgentLegFailed,
    AgentPool,
    CallEnded,
    Connected,
    Decision,
    PoolEvent,
    Release,
    Reserve,
    Reserved,
)
from tests.unit.agents._make import agent, command

AGENTS = ("a0", "a1", "a2", "a3")
CALLS = ("c0", "c1", "c2", "c3", "c4")
NEEDS = (None, AgentNeed(group="sales"), AgentNeed(skills=["fr"]))


@dataclass(frozen=True)
class Step:
    at: float
    event: PoolEvent


def _event(draw: st.DrawFn, event_id: str, now: float) -> PoolEvent:
    kind = draw(
        st.sampled_from(["login", "command", "reserve", "release", "connected", "ended", "failed"])
    )
    agent_id = draw(st.sampled_from(AGENTS))
    call = draw(st.sampled_from(CALLS))
    if kind == "login":
        groups = draw(st.sampled_from([(), ("sales",)]))
        skills = draw(st.sampled_from([(), ("fr",), ("fr", "de")]))
        wrap = draw(st.sampled_from([0.0, 10.0]))
        profile = agent(agent_id, groups=groups, skills=skills, wrap=wrap)
        return command(event_id, agent_id, AgentAction.LOGIN, now, profile)
    if kind == "command":
        action = draw(
            st.sampled_from([AgentAction.LOGOUT, AgentAction.OFFLINE, AgentAction.AVAILABLE])
        )
        return command(event_id, agent_id, action, now)
    if kind == "reserve":
        return Reserve(event_id, call, draw(st.sampled_from(NEEDS)))
    if kind == "release":
        return Release(event_id, call)
    if kind == "connected":
        return Connected(event_id, call)
    if kind == "ended":
        return CallEnded(event_id, call)
    return AgentLegFailed(event_id, call, agent_id, draw(st.sampled_from(["busy", "failed"])))


@st.composite
def deliveries(draw: st.DrawFn) -> list[Step]:
    """Events in time order, some of them delivered a second time later on."""
    now = 0.0
    steps: list[Step] = []
    for i in range(draw(st.integers(1, 40))):
        now += draw(st.sampled_from([0.0, 0.5, 3.0, 15.0]))
        if steps and draw(st.integers(0, 4)) == 0:
            steps.append(Step(now, draw(st.sampled_from(steps)).event))  # a redelivery
        else:
            steps.append(Step(now, _event(draw, f"e{i}", now)))
    return steps


def _event_id(event: PoolEvent) -> str:
    return event.id if isinstance(event, AgentCommand) else event.event_id


def _run(pool: AgentPool, steps: list[Step]) -> list[list[Decision]]:
    return [pool.apply(s.event, s.at) for s in steps]


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(deliveries())
def test_never_double_booked_and_only_free_fitting_agents_are_reserved(steps: list[Step]) -> None:
    pool = AgentPool()
    applied: set[str] = set()
    for step in steps:
        pool.tick(step.at)  # wrap-ups due by now end whatever the event: time, not the event
        before = {r.agent.id: r for r in pool.records()}
        decisions = pool.apply(step.event, step.at)
        after = pool.records()  # each record validates: call_ref iff reserved or on a call
        event_id = _event_id(step.event)
        if event_id in applied:
            assert decisions == [] and after == list(before.values()), "a redelivery changed things"
        if any(isinstance(d, Reserved) for d in decisions) or after != list(before.values()):
            # Applied: from now on a redelivery is a no-op. (A reserve that found nobody, or a
            # command for an agent never logged in, touched nothing and is not remembered.)
            applied.add(event_id)
        held = Counter(r.call_ref for r in after if r.call_ref is not None)
        assert all(n == 1 for n in held.values()), f"a call holds two agents: {held}"
        for d in decisions:
            if not isinstance(d, Reserved):
                continue
            was = before[d.agent_id]
            asked_again = was.call_ref == d.call_ref and d.replaces is None
            free = was.state == AgentState.AVAILABLE or (
                was.state == AgentState.WRAP_UP
                and was.wrap_up_until is not None
                and was.wrap_up_until <= step.at
            )
            assert asked_again or free, f"reserved {d.agent_id} while {was.state}"
            need = step.event.need if isinstance(step.event, Reserve) else was.need
            if not asked_again and isinstance(step.event, Reserve):
                assert was.agent.fits(need)
            now_record = {r.agent.id: r for r in after}[d.agent_id]
            assert now_record.call_ref == d.call_ref
            assert now_record.state in {AgentState.RESERVED, AgentState.ON_CALL}
            assert asked_again or now_record.state == AgentState.RESERVED


@SETTINGS
@given(deliveries())
def test_the_same_deliveries_give_the_same_pool(steps: list[Step]) -> None:
    first, second = AgentPool(), AgentPool()
    assert _run(first, steps) == _run(second, steps)
    assert first.records() == second.records()
    end = steps[-1].at + 100.0
    assert first.occupancy(end) == second.occupancy(end)


@SETTINGS
@given(deliveries(), st.data())
def test_a_pool_restored_from_its_records_carries_on_identically(
    steps: list[Step], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(steps)))
    whole = AgentPool()
    expected = _run(whole, steps)
    part = AgentPool()
    got = _run(part, steps[:cut])
    wire = [r.to_bytes() for r in part.records()]
    restored = AgentPool.restore(AgentRecord.model_validate_json(b) for b in wire)
    assert restored.records() == part.records()
    got += _run(restored, steps[cut:])
    assert got == expected
    assert restored.records() == whole.records()
