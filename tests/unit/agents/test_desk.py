"""The agents app's machine (``handlers.agent_desk``): examples, bounds and properties."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contracts.agent_calls import AgentCall, AgentNotice
from contracts.agents import MAX_PROFILE_BYTES, Agent, AgentAction, AgentNeed, AgentState
from contracts.envelopes import CommandEnvelope, stable_id
from contracts.topics import MAX_RECORD_BYTES
from handlers import agent_desk
from handlers.agent_desk import (
    DONE_CAP,
    MAX_AGENTS,
    MAX_CAMPAIGNS,
    MAX_PENDING,
    Abandon,
    AgentDesk,
    DeskOutput,
    HangupLeg,
    LegCreated,
    PlaceLeg,
    abandon_command,
    agent_leg_command,
    hangup_command,
)
from tests.unit.agents._make import agent, command, login

T0 = 1_800_000_000.0
CAMPAIGN = "sales"


def ref(n: int) -> str:
    return f"{CAMPAIGN}.0123abcd.{n}.1"


def call(kind: str, n: int, *, at: float = T0, **kw: Any) -> AgentCall:
    fields: dict[str, Any] = {"call_ref": ref(n)}
    if kind == "reserve":
        fields |= {"detected_at": at, "uuid": f"callee-{n}", "connect_within": 2.0}
    fields |= kw
    return AgentCall(
        id=stable_id("t", kind, ref(n), repr(sorted(kw.items()))),
        occurred_at=datetime.fromtimestamp(at, UTC),
        kind=kind,
        campaign=CAMPAIGN,
        **fields,
    )


def demand(message: str | None = "We'll call back, {{name}}.", **kw: Any) -> AgentCall:
    return AgentCall(
        id=stable_id("t", "demand", repr(kw)),
        occurred_at=datetime.fromtimestamp(T0, UTC),
        kind="demand",
        campaign=CAMPAIGN,
        active=True,
        connect_within=2.0,
        abandon_message=message,
        caller="442079460000",
        **kw,
    )


def of(out: list[DeskOutput], kind: type) -> list[Any]:
    return [o for o in out if isinstance(o, kind)]


def notices(out: list[DeskOutput], kind: str) -> list[AgentNotice]:
    return [o for o in out if isinstance(o, AgentNotice) and o.kind == kind]


def desk_with(*agents: Agent, at: float = T0 - 100) -> AgentDesk:
    d = AgentDesk()
    d.apply(demand(), at)
    for a in agents:
        d.apply(login(a, at), at)
    return d


# --- by example -------------------------------------------------------------------------------


def test_a_human_answer_gets_the_longest_idle_agent_and_a_leg_into_the_bridge() -> None:
    d = AgentDesk()
    d.apply(demand(), T0 - 100)
    d.apply(login(agent("a2"), T0 - 90), T0 - 90)  # idle longer
    d.apply(login(agent("a1"), T0 - 50), T0 - 50)
    # A record stamped earlier than one already read does not move the clock back.
    d.apply(login(agent("a3"), T0 - 95), T0 - 95)
    assert d.pool.record("a3").idle_since == T0 - 50  # type: ignore[union-attr]
    out = d.apply(call("reserve", 1, values={"name": "Ann"}), T0 + 0.2)
    [place] = of(out, PlaceLeg)
    assert (place.agent_id, place.leg_ref) == ("a2", f"{ref(1)}.a1")
    cmd = agent_leg_command(place, public_base="https://hooks.example")
    assert cmd.body["ncco"] == [
        {"action": "conversation", "name": f"bridge-{ref(1)}", "endOnExit": True}
    ]
    assert cmd.body["event_url"] == [f"https://hooks.example/webhooks/event/{ref(1)}.a1"]
    assert cmd.body["from"] == {"type": "phone", "number": "442079460000"}
    assert cmd.reply_to is not None and cmd.reply_to.key == ref(1)
    assert cmd.id == agent_leg_command(place, public_base="https://hooks.example").id
    CommandEnvelope.model_validate_json(cmd.model_dump_json())

    out = d.apply(call("agent_answered", 1, leg_ref=f"{ref(1)}.a1", uuid="leg-1"), T0 + 1.5)
    [n] = notices(out, "connected")
    assert (n.agent_id, n.wait_s) == ("a2", 1.5)
    assert d.pool.state_of("a2") == AgentState.ON_CALL
    d.apply(call("agent_ended", 1, leg_ref=f"{ref(1)}.a1", uuid="leg-1"), T0 + 60)
    assert d.pool.state_of("a2") == AgentState.WRAP_UP
    assert ref(1) not in d.calls and ref(1) in d.done
    # A late duplicate of the reserve is about a call already over: nothing happens.
    assert not of(d.apply(call("reserve", 1), T0 + 61), PlaceLeg)


def test_no_agent_waits_until_the_deadline_then_abandons_with_the_message() -> None:
    d = desk_with()
    out = d.apply(call("reserve", 1, values={"name": "Ann"}), T0 + 0.3)
    assert not of(out, PlaceLeg) and not of(out, Abandon)
    assert d.next_due() is not None and d.next_due() <= T0 + 2.0  # type: ignore[operator]
    assert not of(d.tick(T0 + 1.9), Abandon)
    out = d.tick(T0 + 2.0)
    [ab] = of(out, Abandon)
    [n] = notices(out, "abandoned")
    assert (n.wait_s, n.reason) == (2.0, "no_agent")
    cmd = abandon_command(ab)
    assert cmd.kind == "transfer" and cmd.call_uuid == "callee-1"
    assert cmd.body["destination"]["ncco"] == [{"action": "talk", "text": "We'll call back, Ann."}]


def test_an_agent_freed_before_the_deadline_takes_the_waiting_caller() -> None:
    d = desk_with(agent("a1", wrap=1.0))
    d.apply(call("reserve", 9), T0 - 10)
    d.apply(call("agent_answered", 9, leg_ref=f"{ref(9)}.a1", uuid="l9"), T0 - 9)
    d.apply(call("agent_ended", 9, leg_ref=f"{ref(9)}.a1"), T0 - 0.5)  # wrap-up until T0 + 0.5
    assert not of(d.apply(call("reserve", 1), T0 + 0.1), PlaceLeg)
    assert d.next_due() == T0 + 0.5
    [place] = of(d.tick(T0 + 0.5), PlaceLeg)
    assert place.call_ref == ref(1) and place.agent_id == "a1"


def test_a_failed_agent_leg_puts_the_agent_offline_and_calls_the_next_one() -> None:
    d = desk_with(agent("a1"), agent("a2"))
    [first] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    out = d.apply(call("agent_failed", 1, leg_ref=first.leg_ref, status="busy"), T0 + 1)
    [second] = of(out, PlaceLeg)
    assert second.leg_ref == f"{ref(1)}.a2" and second.agent_id != first.agent_id
    assert second.replaces == first.agent_id
    assert d.pool.state_of(first.agent_id) == AgentState.OFFLINE
    # The second fails too and nobody is left, past the deadline: abandoned.
    out = d.apply(call("agent_failed", 1, leg_ref=second.leg_ref, status="failed"), T0 + 3)
    assert of(out, Abandon) and notices(out, "abandoned")


def test_a_create_call_that_failed_is_a_failed_leg() -> None:
    d = desk_with(agent("a1"), agent("a2"))
    [first] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    out = d.apply(LegCreated(ref(1), first.leg_ref, "failed", detail="http_400"), T0 + 0.5)
    assert [p.leg_ref for p in of(out, PlaceLeg)] == [f"{ref(1)}.a2"]


def test_the_callee_leaving_hangs_up_a_ringing_agent_who_is_freed_when_the_leg_ends() -> None:
    d = desk_with(agent("a1"))
    [place] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    d.apply(LegCreated(ref(1), place.leg_ref, "succeeded", uuid="leg-1"), T0 + 0.2)
    out = d.apply(call("callee_ended", 1), T0 + 1)
    assert of(out, HangupLeg) == [HangupLeg(place.leg_ref, "leg-1", "default", T0 + 1)]
    assert hangup_command(of(out, HangupLeg)[0]).call_uuid == "leg-1"
    # Still held: the phone may be answered before the hangup lands.
    assert d.pool.state_of("a1") == AgentState.RESERVED
    assert not of(d.apply(call("reserve", 2), T0 + 1.1), PlaceLeg)
    out = d.apply(call("agent_failed", 1, leg_ref=place.leg_ref, status="cancelled"), T0 + 1.5)
    assert d.pool.state_of("a1") in {AgentState.AVAILABLE, AgentState.RESERVED}
    # Freed (not put offline: it was our cancel) and straight away given to the waiting caller.
    assert [p.call_ref for p in of(out, PlaceLeg)] == [ref(2)]


def test_a_leg_answered_after_its_callee_left_is_hung_up_not_bridged() -> None:
    d = desk_with(agent("a1"))
    [place] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    d.apply(call("callee_ended", 1, at=T0 + 1), T0 + 1)  # the leg's uuid is not known yet
    out = d.apply(call("agent_answered", 1, at=T0 + 2, leg_ref=place.leg_ref, uuid="leg-1"), T0 + 2)
    assert of(out, HangupLeg) and not notices(out, "connected")
    assert d.pool.state_of("a1") == AgentState.RESERVED
    d.apply(call("agent_ended", 1, leg_ref=place.leg_ref, uuid="leg-1"), T0 + 2.5)
    assert d.pool.state_of("a1") == AgentState.AVAILABLE


def test_an_answer_read_after_the_callees_end_but_seen_before_it_is_a_bridge() -> None:
    """Seen in demo --agents: the agent answered, hung up within a second (a short handle
    time), ``endOnExit`` ended the callee, and the worker wrote the callee's end (its flow)
    before the agent's answer (the agent leg's flow). The desk took the answer for one after the
    callee had left: no ``connected`` notice, so ``campaign status`` showed 40 connected where
    the simulator's ledger had 41 callees who shared the conversation with an agent."""
    d = desk_with(agent("a1", wrap=0.5))
    [place] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    d.apply(LegCreated(ref(1), place.leg_ref, "succeeded", uuid="leg-1"), T0 + 0.2)
    d.apply(call("callee_ended", 1, at=T0 + 1.6), T0 + 1.61)  # read first ...
    out = d.apply(  # ... though the agent's answer was seen 0.3 s before it
        call("agent_answered", 1, at=T0 + 1.3, leg_ref=place.leg_ref, uuid="leg-1"), T0 + 1.62
    )
    [n] = notices(out, "connected")
    assert (n.call_ref, n.agent_id) == (ref(1), "a1")
    assert d.pool.state_of("a1") == AgentState.ON_CALL
    d.apply(call("agent_ended", 1, at=T0 + 1.59, leg_ref=place.leg_ref, uuid="leg-1"), T0 + 1.63)
    assert d.pool.state_of("a1") == AgentState.WRAP_UP  # a call of theirs, with its wrap-up
    assert d.pool.occupancy(T0 + 5).calls == 1
    assert ref(1) not in d.calls


def test_the_callee_ending_a_bridged_call_frees_the_agent_when_their_leg_ends() -> None:
    d = desk_with(agent("a1"))
    [place] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    d.apply(call("agent_answered", 1, leg_ref=place.leg_ref, uuid="l"), T0 + 1)
    assert not of(d.apply(call("callee_ended", 1), T0 + 30), HangupLeg)  # endOnExit does it
    assert d.pool.state_of("a1") == AgentState.ON_CALL
    d.apply(call("agent_ended", 1, leg_ref=place.leg_ref), T0 + 30.2)
    assert d.pool.state_of("a1") == AgentState.WRAP_UP


def test_an_agent_leg_left_in_an_empty_conversation_is_hung_up_then_forgotten() -> None:
    d = desk_with(agent("a1"))
    [place] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    d.apply(call("agent_answered", 1, leg_ref=place.leg_ref, uuid="l"), T0 + 1)
    d.apply(call("callee_ended", 1), T0 + 1.1)
    assert d.next_due() == T0 + 1.1 + agent_desk.GONE_HANGUP_S
    assert of(d.tick(T0 + 4.1), HangupLeg) == [HangupLeg(place.leg_ref, "l", "default", T0 + 4.1)]
    assert not of(d.tick(T0 + 5), HangupLeg)  # once
    assert d.pool.state_of("a1") == AgentState.ON_CALL
    d.tick(T0 + 1.1 + agent_desk.GONE_FORGET_S)  # its end never reported: taken as ended
    assert d.pool.state_of("a1") == AgentState.WRAP_UP and ref(1) not in d.calls


def test_load_notices_are_throttled_and_follow_the_counts() -> None:
    d = AgentDesk()
    out = d.apply(demand(), T0)
    [first] = notices(out, "load")
    assert first.load is not None and first.load.available == 0
    out = d.apply(login(agent("a1"), T0 + 0.1), T0 + 0.1)
    assert not notices(out, "load")  # within the interval
    assert d.next_due() == T0 + 0.25
    [n] = notices(d.tick(T0 + 0.25), "load")
    assert n.load is not None and n.load.available == 1
    assert not notices(d.tick(T0 + 1), "load")  # nothing changed
    assert notices(d.tick(T0 + 10.25), "load")  # the heartbeat


def test_a_demand_names_the_need_and_the_load_counts_only_fitting_agents() -> None:
    d = AgentDesk()
    d.apply(login(agent("a1", groups=("sales",)), T0), T0)
    d.apply(login(agent("a2", groups=("care",)), T0), T0)
    [n] = notices(d.apply(demand(need=AgentNeed(group="sales")), T0 + 1), "load")
    assert n.load is not None and (n.load.available, n.load.logged_in) == (1, 1)
    [place] = of(d.apply(call("reserve", 1), T0 + 2), PlaceLeg)
    assert place.agent_id == "a1"  # the campaign's need applies to its reserves


def test_the_queue_is_bounded() -> None:
    d = desk_with()
    for n in range(MAX_PENDING):
        assert not of(d.apply(call("reserve", n, at=T0), T0), Abandon)
    out = d.apply(call("reserve", MAX_PENDING, at=T0), T0)
    assert [n.reason for n in notices(out, "abandoned")] == ["queue_full"]


def test_logins_beyond_the_cap_are_refused_with_a_reason() -> None:
    d = AgentDesk()
    for i in range(MAX_AGENTS):
        d.apply(login(agent(f"a{i}"), T0), T0)
    d.apply(login(agent("a99999"), T0 + 1), T0 + 1)
    assert "a99999" not in d.pool and len(d.pool) == MAX_AGENTS
    assert d.refused[-1]["agent_id"] == "a99999" and "500 agents" in d.refused[-1]["reason"]
    # Known agents may still log in again (a profile update).
    d.apply(login(agent("a1", skills=("fr",)), T0 + 2, "again"), T0 + 2)
    assert d.pool.record("a1") is not None and d.pool.record("a1").agent.skills == ["fr"]  # type: ignore[union-attr]


def _big_agent(i: int) -> Agent:
    """An agent whose profile is as large as the contract allows."""
    doc: dict[str, Any] = {
        "id": f"agent-{i:04d}@team",
        "endpoint": {
            "type": "websocket",
            "uri": f"wss://bots.example/{i}",
            "content-type": "audio/l16;rate=16000",
            "headers": {"k": "h" * 480},
        },
        "skills": ["s0"],
    }
    room = MAX_PROFILE_BYTES - len(
        orjson.dumps(
            Agent.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_none=True)
        )
    )
    skills: list[str] = []
    while room > 70:  # labels of 64 characters, each costing 67 bytes with quotes and comma
        skills.append(f"s{len(skills):02d}" + "x" * 61)
        room -= 67
    doc["skills"] = skills or ["s0"]
    return Agent.model_validate(doc)


def test_the_record_stays_under_the_record_limit_when_every_bound_is_full() -> None:
    d = AgentDesk()
    t = T0
    for c in range(MAX_CAMPAIGNS):
        d.apply(
            AgentCall(
                id=f"d{c}",
                occurred_at=datetime.fromtimestamp(t, UTC),
                kind="demand",
                campaign=f"campaign-{c:02d}-{'x' * 30}",
                active=True,
                abandon_message="m" * 1500,
                need=AgentNeed(group="g" * 60, skills=[f"s{k}{'y' * 30}" for k in range(3)]),
            ),
            t,
        )
    i = 0
    while True:
        a = _big_agent(i)
        assert (
            len(orjson.dumps(a.model_dump(mode="json", by_alias=True, exclude_none=True)))
            <= MAX_PROFILE_BYTES
        )
        d.apply(login(a, t, f"login-{i}-{'z' * 30}"), t)
        if a.id not in d.pool:
            break
        i += 1
    # Every agent has a full dedup list (long event ids) and is on a call.
    for n in range(i):
        for k in range(agent_desk.DEDUP_DEPTH):
            d.apply(
                command(f"e{n}-{k}-{'q' * 150}", f"agent-{n:04d}@team", AgentAction.AVAILABLE, t), t
            )
    # Agents beyond the pending callers are on calls (those keep no values)...
    for n in range(MAX_PENDING, i):
        d.apply(call("reserve", n, at=t, region_url="https://api-us-3.vonage.com"), t)
        track = d.calls[ref(n)]
        d.apply(call("agent_answered", n, leg_ref=track.leg_ref, uuid=f"{n:036d}"), t)
    # ... and the pending ones, each with the most values a reserve may carry.
    for n in range(min(i, MAX_PENDING)):
        d.apply(
            call(
                "reserve",
                n,
                at=t,
                values={f"v{k}": "w" * 90 for k in range(5)},
                region_url="https://api-us-3.vonage.com",
            ),
            t,
        )
    assert sum(1 for c in d.calls.values() if c.pending) == min(i, MAX_PENDING)
    for n in range(DONE_CAP):
        d._finish(f"{'c' * 48}.0123abcd.{n:010d}.20")
    size = d.size()
    assert size < MAX_RECORD_BYTES - 10_000, size
    assert i < MAX_AGENTS  # with such large profiles the byte budget, not the count, binds
    # Each agent's record beyond its profile stays within the slack the budget counts.
    for r in d.records():
        whole = len(orjson.dumps(r.model_dump(mode="json", by_alias=True, exclude_none=True)))
        assert (
            whole
            - len(orjson.dumps(r.agent.model_dump(mode="json", by_alias=True, exclude_none=True)))
            <= agent_desk.AGENT_SLACK
        )


# --- properties -------------------------------------------------------------------------------

AGENTS = ("a1", "a2", "a3")
CALLS = (1, 2, 3, 4)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[float, Any]]:
    """Records of a few agents and calls, in a plausible but shuffled order, with duplicates."""
    steps: list[tuple[float, Any]] = [(T0 - 10, demand())]
    t = T0
    for _ in range(draw(st.integers(5, 40))):
        t += draw(st.sampled_from([0.0, 0.1, 0.5, 1.5, 3.0]))
        kind = draw(
            st.sampled_from(
                ["login", "logout", "available", "reserve", "answered", "ended", "failed",
                 "callee_ended", "created", "tick", "dup"]
            )
        )  # fmt: skip
        a = draw(st.sampled_from(AGENTS))
        n = draw(st.sampled_from(CALLS))
        leg = f"{ref(n)}.a{draw(st.integers(1, 3))}"
        rec: Any
        if kind == "dup" and len(steps) > 1:
            rec = draw(st.sampled_from(steps[1:]))[1]
        elif kind == "login":
            rec = login(agent(a, wrap=draw(st.sampled_from([0.0, 2.0]))), t, f"l-{a}-{t}")
        elif kind in ("logout", "available"):
            rec = command(f"{kind}-{a}-{t}", a, AgentAction(kind), t)
        elif kind == "reserve":
            rec = call("reserve", n, at=t)
        elif kind == "answered":
            rec = call("agent_answered", n, leg_ref=leg, uuid=f"u-{leg}")
        elif kind == "ended":
            rec = call("agent_ended", n, leg_ref=leg)
        elif kind == "failed":
            rec = call("agent_failed", n, leg_ref=leg, status="busy")
        elif kind == "callee_ended":
            rec = call("callee_ended", n)
        elif kind == "created":
            rec = LegCreated(
                ref(n), leg, draw(st.sampled_from(["succeeded", "failed"])), f"u-{leg}"
            )
        else:
            rec = "tick"
        steps.append((t, rec))
    return steps


def run(
    steps: list[tuple[float, Any]], desk: AgentDesk | None = None
) -> tuple[AgentDesk, list[DeskOutput]]:
    d = desk or AgentDesk()
    out: list[DeskOutput] = []
    for t, rec in steps:
        out += d.tick(t) if rec == "tick" else d.apply(rec, t)
    return d, out


def check_invariants(d: AgentDesk, out: list[DeskOutput]) -> None:
    # No agent holds two calls, and every call that holds an agent is the one the pool says.
    holders: dict[str, str] = {}
    for track in d.calls.values():
        if track.agent_id is not None:
            assert track.agent_id not in holders, (track.agent_id, holders)
            holders[track.agent_id] = track.call_ref
            assert d.pool.agent_for(track.call_ref) == track.agent_id
            assert d.pool.state_of(track.agent_id) in {AgentState.RESERVED, AgentState.ON_CALL}
    for r in d.records():
        if r.state in {AgentState.RESERVED, AgentState.ON_CALL}:
            assert r.call_ref in d.calls and d.calls[r.call_ref].agent_id == r.agent.id
    # Each call is abandoned at most once, and never after it was connected.
    abandoned = [a.call_ref for a in out if isinstance(a, Abandon)]
    assert len(abandoned) == len(set(abandoned))
    # Every leg placed is a new leg_ref.
    legs = [p.leg_ref for p in out if isinstance(p, PlaceLeg)]
    assert len(legs) == len(set(legs))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_no_double_booking_and_each_decision_once(steps: list[tuple[float, Any]]) -> None:
    d, out = run(steps)
    check_invariants(d, out)
    # A connected call is never abandoned afterwards.
    order: dict[str, str] = {}
    for o in out:
        if isinstance(o, AgentNotice) and o.kind == "connected":
            order.setdefault(o.call_ref or "", "connected")
        if isinstance(o, Abandon):
            assert order.get(o.call_ref) != "connected", o.call_ref


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_restored_mid_way_decides_exactly_as_the_uninterrupted_run(
    steps: list[tuple[float, Any]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(steps)))
    whole, out_whole = run(steps)
    first, out_first = run(steps[:cut])
    raw = orjson.loads(orjson.dumps(first.dump()))
    second, out_second = run(steps[cut:], AgentDesk.restore(raw))
    assert out_first + out_second == out_whole
    assert second.dump() == whole.dump()


@settings(max_examples=100, deadline=None)
@given(histories())
def test_the_same_records_give_the_same_desk(steps: list[tuple[float, Any]]) -> None:
    a, out_a = run(steps)
    b, out_b = run(steps)
    assert out_a == out_b and a.dump() == b.dump()


@settings(max_examples=300, deadline=None)
@given(
    answered=st.floats(0.0, 3.0),
    ended=st.floats(0.0, 3.0),
    agent_ends=st.floats(0.0, 0.5),
    delays=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    callee_read=st.integers(0, 2),
)
def test_the_answer_and_the_callees_end_in_either_order_decide_by_when_they_were_seen(
    answered: float, ended: float, agent_ends: float, delays: list[float], callee_read: int
) -> None:
    """The agent leg's records (answered, then ended) and the callee's end come from two flows,
    so the desk may read them interleaved in any order, each flow's own order kept. Read after
    the callee's end, what was seen decides: an answer seen before it is one ``connected`` notice
    and a call of the agent's, one seen after it no bridge. An answer read before the callee's
    end is connected (the desk cannot know yet that the callee had left). Never an abandon, and
    the agent ends free."""
    assume(abs(answered - ended) > 1e-3)
    d = desk_with(agent("a1", wrap=0.5))
    [place] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    d.apply(LegCreated(ref(1), place.leg_ref, "succeeded", uuid="leg-1"), T0 + 0.2)
    t_ans, t_end = T0 + 1 + answered, T0 + 1 + ended
    bridged = t_ans < t_end
    # Bridged: the agent's leg ends with the callee's (endOnExit, either side first); not
    # bridged: it sits in the empty conversation until it is hung up.
    t_agent_end = t_end - agent_ends if bridged else t_ans + agent_ends
    t_agent_end = max(t_agent_end, t_ans)
    agent_flow = [
        call("agent_answered", 1, at=t_ans, leg_ref=place.leg_ref, uuid="leg-1"),
        call("agent_ended", 1, at=t_agent_end, leg_ref=place.leg_ref, uuid="leg-1"),
    ]
    records = list(agent_flow)
    records.insert(callee_read, call("callee_ended", 1, at=t_end))
    out: list[DeskOutput] = []
    clock = T0 + 0.2
    for rec, delay in zip(records, delays, strict=True):
        clock = max(clock, rec.occurred_at.timestamp() + delay)  # read after it was seen
        out += d.apply(rec, clock)
    out += d.tick(clock + agent_desk.GONE_FORGET_S + 1)
    connected = bridged or callee_read > 0
    assert len(notices(out, "connected")) == (1 if connected else 0)
    assert not of(out, Abandon) and not notices(out, "abandoned")
    assert d.pool.state_of("a1") == AgentState.AVAILABLE and ref(1) not in d.calls
    assert d.pool.occupancy(clock + 100).calls == (1 if connected else 0)


def test_agent_ids_in_legs_are_path_safe() -> None:
    # The agent leg's call_ref carries no agent id (ids may hold '@'), only the callee's ref.
    d = desk_with(
        Agent.model_validate({"id": "ann@team", "endpoint": {"type": "app", "user": "ann"}})
    )
    [place] = of(d.apply(call("reserve", 1), T0), PlaceLeg)
    assert set(place.leg_ref) <= set(string.ascii_letters + string.digits + "._~-")
