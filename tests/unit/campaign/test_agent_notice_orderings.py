"""An agent campaign's "connected" figure whatever order its records arrive in (pure).

The desk (``handlers.agent_desk``) and the campaign machine (``handlers.campaign``) wired
together as the roles wire them, without Kafka: a human answer asks the desk for an agent, the
worker's records of the agent's leg (answered, ended) and of the callee's end reach the desk
interleaved (two flows: each keeps its own order, nothing orders them between each other), and
the desk's notices and the callees' outcomes reach the campaign in any order, before or after the
last outcome completes it, with a checkpoint and restore anywhere. Every callee an agent answered
while they were still on the line is counted connected, once: ``orchestrator demo --agents``
compares that figure with the simulator's ledger (it said 40 against 41 when the desk read a
short call's end before its agent's answer).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.agent_calls import AgentCall, AgentNotice
from contracts.campaign import CampaignStatus
from handlers.agent_desk import AgentDesk, LegCreated, PlaceLeg
from handlers.campaign import (
    AgentOutcome,
    CampaignMachine,
    ContactTrack,
    DialResult,
    FinalResult,
    LegOutcome,
    Milestone,
    ReserveAgent,
)
from tests.unit.agents._make import agent, login
from tests.unit.campaign.test_agent_campaign import T0, W0, dials, load, machine, spec


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _now(t: float) -> datetime:
    return T0 + timedelta(seconds=t - W0)


def _call(kind: str, call_ref: str, seen: float, **kw: Any) -> AgentCall:
    return AgentCall(
        id=f"{kind}-{call_ref}-{kw.get('leg_ref', '')}",
        occurred_at=_at(seen),
        kind=kind,
        campaign="sales",
        call_ref=call_ref,
        **kw,
    )


def _restored(m: CampaignMachine) -> CampaignMachine:
    meta = orjson.loads(orjson.dumps(m.meta_json()))
    tracks = [ContactTrack.from_json(orjson.loads(orjson.dumps(t.to_json()))) for t in m.tracks()]
    return CampaignMachine.restore(m.spec, meta, tracks, cps_limit=100.0)


@st.composite
def calls(draw: st.DrawFn) -> list[dict[str, float]]:
    """Per call: agent answered (after the human answer), callee's end (after that: bridged),
    the agent leg's end (with the callee's, either first), and the delays before each record is
    read (by the desk; by the campaign for the callee's outcome and the desk's notice)."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        answer = draw(st.floats(0.5, 1.5))
        talk = draw(st.floats(0.01, 3.0))
        out.append(
            {
                "answer": answer,
                "end": answer + talk,
                "agent_end": answer + max(0.0, talk + draw(st.floats(-0.01, 0.01))),
                "read_answer": draw(st.floats(0.0, 1.0)),
                "read_agent_end": draw(st.floats(0.0, 1.0)),
                "read_end": draw(st.floats(0.0, 1.0)),
                "outcome": draw(st.floats(0.0, 2.0)),  # the worker's settle window and more
                "notice": draw(st.floats(0.0, 2.0)),
            }
        )
    return out


@settings(max_examples=200, deadline=None)
@given(calls(), st.data())
def test_every_bridged_callee_is_counted_connected_once_in_any_order(
    plan: list[dict[str, float]], data: st.DataObject
) -> None:
    n = len(plan)
    m = machine(spec(), n)
    m.on_agent_load(load(n), W0)
    ds = dials(m.tick(T0, W0))
    assert len(ds) == n
    desk = AgentDesk()
    desk.apply(
        AgentCall(
            id="demand",
            occurred_at=_at(W0 - 100),
            kind="demand",
            campaign="sales",
            active=True,
            connect_within=2.0,
        ),
        W0 - 100,
    )
    for i in range(n):
        desk.apply(login(agent(f"a{i}", wrap=0.5), W0 - 90), W0 - 90)

    # The dial results and human answers; each answer asks the desk for an agent.
    desk_in: list[tuple[float, int, Any]] = []  # (read at, order, record)
    for i, d in enumerate(ds):
        m.on_event(DialResult(d.call_ref, "succeeded", T0, uuid=f"u{i}"), T0, W0 + 0.1)
        human = W0 + 3 + 0.1 * i
        [r] = [
            o
            for o in m.on_event(Milestone(d.call_ref, "human", f"u{i}", human), T0, human)
            if isinstance(o, ReserveAgent)
        ]
        reserve = _call(
            "reserve", r.call_ref, human, detected_at=r.seen_at, uuid=r.uuid, connect_within=2.0
        )
        [place] = [o for o in desk.apply(reserve, human + 0.05) if isinstance(o, PlaceLeg)]
        desk.apply(LegCreated(r.call_ref, place.leg_ref, "succeeded", f"leg{i}"), human + 0.1)
        c = plan[i]
        leg = {"leg_ref": place.leg_ref, "uuid": f"leg{i}"}
        # The agent leg's flow keeps its order (answered, then ended); the callee's is its own.
        answered_at = human + c["answer"] + c["read_answer"]
        desk_in += [
            (answered_at, 0, _call("agent_answered", r.call_ref, human + c["answer"], **leg)),
            (
                max(answered_at, human + c["agent_end"] + c["read_agent_end"]),
                1,
                _call("agent_ended", r.call_ref, human + c["agent_end"], **leg),
            ),
            (
                human + c["end"] + c["read_end"],
                0,
                _call("callee_ended", r.call_ref, human + c["end"], uuid=f"u{i}"),
            ),
        ]

    # The desk reads agents.control; its notices go to the campaign, as do the callees' ends.
    campaign_in: list[tuple[float, Any]] = []
    for i, d in enumerate(ds):
        human = W0 + 3 + 0.1 * i
        end = human + plan[i]["end"]
        outcome = LegOutcome(
            d.call_ref, "answered", _at(end), uuid=f"u{i}", amd="human", duration_s=1
        )
        campaign_in.append((end + 1.0 + plan[i]["outcome"], outcome))
    notice_delay = {d.call_ref: plan[i]["notice"] for i, d in enumerate(ds)}
    clock = W0
    for at, _, rec in sorted(desk_in, key=lambda x: (x[0], x[1])):
        clock = max(clock, at)
        for o in desk.apply(rec, clock):
            if isinstance(o, AgentNotice) and o.kind != "load":
                assert o.call_ref is not None and o.wait_s is not None
                ev = AgentOutcome(o.call_ref, o.kind, o.wait_s, o.agent_id)
                campaign_in.append((clock + notice_delay[o.call_ref], ev))
    desk.tick(clock + 100)

    cut = data.draw(st.integers(0, len(campaign_in)), label="restored before event")
    results = []
    for k, (at, ev) in enumerate(sorted(campaign_in, key=lambda x: x[0])):
        if k == cut:
            m = _restored(m)
        results += [o.result for o in m.on_event(ev, _now(at), at) if isinstance(o, FinalResult)]

    assert m.status == CampaignStatus.COMPLETED
    assert sorted(r.disposition for r in results) == ["answered"] * n
    p = m.progress(_now(clock + 100), clock + 100).agents
    assert p is not None
    assert (p.live_answers, p.connected, p.abandoned) == (n, n, 0)
    assert p.mean_wait_s is not None
    assert desk.pool.occupancy(clock + 100).calls == n  # each agent had the call, and wrap-up
