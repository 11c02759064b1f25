"""The worker's records for agent campaigns (``handlers.voice``): milestones and leg facts.

Vonage reorders and repeats webhooks; whatever the order, the same records come out, each once,
and they are valid contract records. An agentless campaign call gets none of them.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.agent_calls import AgentCall, LegMilestone
from contracts.call_refs import make_agent_leg_ref
from contracts.envelopes import stable_id
from handlers import voice
from orchestrator.sandbox.synthetic import BASE_TIME, _Builder

CALL = "sales.0123abcd.7.1"


def callee_flow(amd: str, *, hints: dict[str, Any] | None, hangup_at: float = 30.0) -> list[dict]:
    b = _Builder(random.Random(1), CALL, CALL, BASE_TIME)
    leg, conv, to = "leg-callee", "CON-1", "447700900123"
    b.result(
        0.0, stable_id("cmd", "create_call", CALL), "succeeded", uuid=leg, conv=conv, hints=hints
    )
    b.status(0.1, leg, conv, "started", to)
    b.status(0.2, leg, conv, "ringing", to)
    b.status(3.0, leg, conv, "answered", to)
    b.amd(4.0, leg, conv, amd, to, None)
    b.completed(hangup_at, leg, conv, to, 3.0)
    return [e for _, e in b.events]


def unanswered_flow(outcome: str) -> list[dict]:
    b = _Builder(random.Random(3), CALL, CALL, BASE_TIME)
    leg, conv, to = "leg-callee", "CON-1", "447700900123"
    hints = {"agents": "bridge", "on_machine": "hangup"}
    b.result(
        0.0, stable_id("cmd", "create_call", CALL), "succeeded", uuid=leg, conv=conv, hints=hints
    )
    b.status(0.1, leg, conv, "started", to)
    b.status(0.2, leg, conv, "ringing", to)
    b.status(9.0, leg, conv, outcome, to)
    b.completed(9.05, leg, conv, to, None)
    return [e for _, e in b.events]


def agent_flow(outcome: str) -> tuple[str, list[dict]]:
    ref = make_agent_leg_ref(CALL, 2)
    b = _Builder(random.Random(2), ref, ref, BASE_TIME)
    leg, conv, to = "leg-agent", "CON-2", "447700900001"
    b.result(0.0, stable_id("cmd", "create_call", ref), "succeeded", uuid=leg, conv=conv)
    b.status(0.1, leg, conv, "started", to)
    b.status(0.2, leg, conv, "ringing", to)
    if outcome == "answered":
        b.status(2.0, leg, conv, "answered", to)
        b.completed(40.0, leg, conv, to, 2.0)
    elif outcome == "rejected":
        b.status(0.3, leg, conv, "rejected", to)
    elif outcome == "completed_only":
        b.completed(5.0, leg, conv, to, None)
    else:
        b.status(5.0, leg, conv, outcome, to)
        b.completed(5.05, leg, conv, to, None)
    return ref, [e for _, e in b.events]


def run(envs: list[dict], idle: float = 1.0) -> list[voice.Emit]:
    flow = None
    emits: list[voice.Emit] = []
    for env in envs:
        flow, out = voice.transition(flow, env)
        emits += out
    assert flow is not None
    res = voice.settle(flow, idle)
    return emits + res.emits


def agent_records(emits: list[voice.Emit]) -> list[voice.Emit]:
    return [
        e
        for e in emits
        if e.topic in (voice.AGENTS_TOPIC,) or e.value.get("type") == "voice.milestone"
    ]


def test_a_human_answer_sends_a_milestone_then_the_callees_end_to_the_pool() -> None:
    emits = agent_records(run(callee_flow("human", hints={"agents": "bridge"})))
    assert [(e.topic, e.key, e.value.get("status") or e.value.get("kind")) for e in emits] == [
        (voice.CAMPAIGN_TOPIC, "sales", "human"),
        (voice.AGENTS_TOPIC, CALL, "callee_ended"),
    ]
    ms = LegMilestone.model_validate(emits[0].value)
    assert (ms.uuid, ms.campaign, ms.call_ref) == ("leg-callee", "sales", CALL)
    # Our clock: the ingress received the AMD webhook 5 ms after Vonage stamped it.
    assert ms.amd_at is not None and (ms.occurred_at - ms.amd_at).total_seconds() == pytest.approx(
        0.005
    )
    AgentCall.model_validate(emits[1].value)


def test_a_machine_answer_never_reaches_the_pool() -> None:
    emits = agent_records(
        run(callee_flow("machine", hints={"agents": "bridge", "on_machine": "hangup"}))
    )
    assert [(e.topic, e.value.get("status")) for e in emits] == [(voice.CAMPAIGN_TOPIC, "machine")]


@pytest.mark.parametrize("outcome", ["unanswered", "busy", "failed", "timeout", "rejected"])
def test_a_leg_that_ends_without_a_person_or_machine_sends_an_ended_milestone(
    outcome: str,
) -> None:
    envs = unanswered_flow(outcome)
    live: list[voice.Emit] = []
    flow = None
    for env in envs:
        flow, out = voice.transition(flow, env)
        live += out
    [ms] = agent_records(live)  # live: before the settle window, not at it
    assert (ms.topic, ms.key, ms.value["status"]) == (voice.CAMPAIGN_TOPIC, "sales", "ended")
    assert LegMilestone.model_validate(ms.value).uuid == "leg-callee"
    assert [e.value["id"] for e in agent_records(run(envs))] == [ms.value["id"]]  # once


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_ended_milestone_does_not_depend_on_order_or_duplicates(data: st.DataObject) -> None:
    envs = unanswered_flow("busy")
    want = {e.value["id"] for e in agent_records(run(envs))}
    got = agent_records(run(data.draw(shuffled(envs))))
    assert {e.value["id"] for e in got} == want and len(got) == len(want) == 1


def test_an_agentless_campaign_call_sends_nothing_of_it() -> None:
    assert agent_records(run(callee_flow("human", hints=None))) == []


def test_the_hint_arriving_after_the_amd_result_still_sends_the_milestone() -> None:
    envs = callee_flow("human", hints={"agents": "bridge"})
    envs = [*envs[1:5], envs[0], *envs[5:]]  # the dispatcher's result after the AMD webhook
    emits = agent_records(run(envs))
    assert [e.value.get("status") or e.value.get("kind") for e in emits] == [
        "human",
        "callee_ended",
    ]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("answered", [("agent_answered", None), ("agent_ended", None)]),
        ("busy", [("agent_failed", "busy")]),
        ("unanswered", [("agent_failed", "unanswered")]),
        ("timeout", [("agent_failed", "timeout")]),
        ("failed", [("agent_failed", "failed")]),
        ("rejected", [("agent_failed", "rejected")]),
        ("completed_only", [("agent_failed", "completed")]),  # forced after the grace period
    ],
)
def test_an_agent_legs_facts(outcome: str, expected: list[tuple[str, str | None]]) -> None:
    ref, envs = agent_flow(outcome)
    emits = run(envs, idle=60.0)
    facts = [e for e in emits if e.topic == voice.AGENTS_TOPIC]
    assert [(e.value["kind"], e.value.get("status")) for e in facts] == expected
    for e in facts:
        rec = AgentCall.model_validate(e.value)
        assert (e.key, rec.call_ref, rec.leg_ref, rec.campaign) == (CALL, CALL, ref, "sales")
    # The agent leg is not a contact's attempt: its outcome does not go to the campaign.
    assert not [e for e in emits if e.topic == voice.CAMPAIGN_TOPIC]


@st.composite
def shuffled(draw: st.DrawFn, envs: list[dict]) -> list[dict]:
    out = list(draw(st.permutations(envs)))
    for env in draw(st.lists(st.sampled_from(envs), max_size=len(envs))):
        out.insert(draw(st.integers(0, len(out))), env)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["answered", "busy", "rejected", "failed"]), st.data())
def test_agent_leg_facts_do_not_depend_on_order_or_duplicates(
    outcome: str, data: st.DataObject
) -> None:
    _, envs = agent_flow(outcome)
    want = {e.value["id"]: e.value["kind"] for e in run(envs) if e.topic == voice.AGENTS_TOPIC}
    got = [e for e in run(data.draw(shuffled(envs))) if e.topic == voice.AGENTS_TOPIC]
    assert {e.value["id"]: e.value["kind"] for e in got} == want
    assert len(got) == len(want), "each fact once"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_callee_records_do_not_depend_on_order_or_duplicates(data: st.DataObject) -> None:
    envs = callee_flow("human", hints={"agents": "bridge"})
    want = {e.value["id"] for e in agent_records(run(envs))}
    got = agent_records(run(data.draw(shuffled(envs))))
    assert {e.value["id"] for e in got} == want and len(got) == len(want)
