"""Agent campaigns in the campaign machine and the create-call command: pacing by the agents'
load, a reserve per human answer, connected and abandoned results, the bridge NCCO, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.agent_calls import AgentLoadFigures
from contracts.campaign import CampaignFileError, CampaignSpec, Contact, parse_campaign_document
from handlers.campaign import (
    AgentOutcome,
    CampaignMachine,
    DialRequest,
    DialResult,
    FinalResult,
    LegOutcome,
    Milestone,
    Output,
    ReserveAgent,
)
from handlers.campaign_dial import abandon_values, build_create_call

T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
W0 = T0.timestamp()

SPEC = """\
name: sales
contacts: {{jsonl: x}}
from: {{numbers: ["442079460000"]}}
flow: {{ncco: [{{action: talk, text: "Hello {{{{name}}}}, one moment."}}]}}
mode: {mode}
agents: {{ratio: {ratio}, abandon_message: "This was Acme for {{{{name}}}}, call 0800 000 000."}}
machine_detection: {{mode: standard, on_machine: hangup}}
pacing: {{max_concurrent: 50}}
calling_hours: null
"""


def spec(mode: str = "progressive", ratio: float = 1.0) -> CampaignSpec:
    return parse_campaign_document(SPEC.format(mode=mode, ratio=ratio), "c.yaml").spec


def contacts(n: int) -> list[Contact]:
    return [
        Contact(index=i, contact_id=f"c{i}", number=f"+4477009{i:05d}", name=f"P{i}")
        for i in range(n)
    ]


def load(available: int, *, busy: int = 0, waiting: int = 0, calls: int = 0) -> AgentLoadFigures:
    return AgentLoadFigures(
        available=available,
        on_call=busy,
        waiting=waiting,
        logged_in=available + busy,
        calls=calls,
        talk_seconds=100.0 * calls,
        logged_in_seconds=1000.0,
    )


def machine(s: CampaignSpec, n: int = 20) -> CampaignMachine:
    m = CampaignMachine(s, run="0123abcd", cps_limit=100.0)
    m.add_contacts(contacts(n), True, T0)
    return m


def dials(out: list[Output]) -> list[DialRequest]:
    return [o for o in out if isinstance(o, DialRequest)]


def test_progressive_dials_one_per_free_agent_and_waits_for_the_load() -> None:
    m = machine(spec())
    assert dials(m.tick(T0, W0)) == []  # the pool has not reported: nobody to dial for
    m.on_agent_load(load(3), W0)
    first = dials(m.tick(T0, W0))
    assert len(first) == 3
    assert dials(m.tick(T0 + timedelta(seconds=1), W0 + 1)) == []  # three ringing for three
    m.on_agent_load(load(5), W0 + 1)
    assert len(dials(m.tick(T0 + timedelta(seconds=2), W0 + 2))) == 2


def test_a_line_that_ended_without_a_person_frees_its_place_before_its_outcome() -> None:
    m = machine(spec())
    m.on_agent_load(load(3), W0)
    first = dials(m.tick(T0, W0))
    assert len(first) == 3
    for d in first:
        m.on_event(DialResult(d.call_ref, "succeeded", T0, uuid=f"u-{d.call_ref}"), T0, W0 + 0.1)
    assert dials(m.tick(T0 + timedelta(seconds=1), W0 + 1)) == []  # three ringing for three
    # One rang out (the worker's "ended" milestone, a settle window before the outcome).
    gone = first[0].call_ref
    assert m.on_event(Milestone(gone, "ended", f"u-{gone}", W0 + 1.5), T0, W0 + 1.6) == []
    [again] = dials(m.tick(T0 + timedelta(seconds=2), W0 + 2))
    assert again.call_ref != gone
    assert gone in m.in_flight  # still in flight until its outcome
    # Redelivered, or a late AMD result: nothing more, nothing less.
    m.on_event(Milestone(gone, "ended", f"u-{gone}", W0 + 1.5), T0, W0 + 2.1)
    m.on_event(Milestone(gone, "machine", f"u-{gone}", W0 + 1.4), T0, W0 + 2.2)
    assert dials(m.tick(T0 + timedelta(seconds=3), W0 + 3)) == []


def test_ratio_and_waiting_callers_count() -> None:
    m = machine(spec(ratio=2.0))
    m.on_agent_load(load(3, waiting=1), W0)
    assert len(dials(m.tick(T0, W0))) == 4  # 2 x (3 free - 1 claimed by a waiting caller)


def _dial_one(m: CampaignMachine) -> DialRequest:
    m.on_agent_load(load(1), W0)
    [d] = dials(m.tick(T0, W0))
    m.on_event(DialResult(d.call_ref, "succeeded", T0, uuid="u1"), T0, W0 + 0.1)
    return d


def test_a_human_answer_asks_for_an_agent_once_and_a_machine_never() -> None:
    m = machine(spec(), 2)
    d = _dial_one(m)
    human = Milestone(d.call_ref, "human", "u1", W0 + 3.0, "https://api-eu-1.vonage.com")
    [r] = [o for o in m.on_event(human, T0, W0 + 3.1) if isinstance(o, ReserveAgent)]
    assert (r.call_ref, r.uuid, r.seen_at, r.region_url) == (
        d.call_ref,
        "u1",
        W0 + 3.0,
        "https://api-eu-1.vonage.com",
    )
    assert m.on_event(human, T0, W0 + 3.2) == []  # redelivered
    m2 = machine(spec(), 2)
    d2 = _dial_one(m2)
    assert m2.on_event(Milestone(d2.call_ref, "machine", "u1", W0 + 3.0), T0, W0 + 3.1) == []


def test_connected_call_keeps_answered_with_the_agent_and_the_wait() -> None:
    m = machine(spec(), 1)
    d = _dial_one(m)
    m.on_event(Milestone(d.call_ref, "human", "u1", W0 + 3.0), T0, W0 + 3.1)
    m.on_event(AgentOutcome(d.call_ref, "connected", 0.8, "ann"), T0, W0 + 4)
    out = m.on_event(
        LegOutcome(d.call_ref, "answered", T0, uuid="u1", amd="human", duration_s=42), T0, W0 + 50
    )
    [res] = [o.result for o in out if isinstance(o, FinalResult)]
    assert (res.disposition, res.agent_id, res.agent_wait_s, res.amd) == (
        "answered",
        "ann",
        0.8,
        "human",
    )
    p = m.progress(T0, W0 + 50).agents
    assert p is not None and (p.live_answers, p.connected, p.abandoned) == (1, 1, 0)
    assert p.mean_wait_s == 0.8 and p.abandon_rate == 0.0


def test_the_handle_time_is_measured_on_the_pacings_clock_not_from_the_calls_duration() -> None:
    # The call's duration comes from the carrier (here 420 s: a simulator at x10), the pacing's
    # clock is the controller's: from the pool's "connected" to the outcome, 46 s.
    m = machine(spec("predictive"), 1)
    d = _dial_one(m)
    m.on_event(Milestone(d.call_ref, "human", "u1", W0 + 3.0), T0, W0 + 3.1)
    m.on_event(AgentOutcome(d.call_ref, "connected", 0.8, "ann"), T0, W0 + 4)
    assert m.agents is not None and d.call_ref in m.agents.stats.handling
    m.on_event(
        LegOutcome(d.call_ref, "answered", T0, uuid="u1", amd="human", duration_s=420), T0, W0 + 50
    )
    stats = m.agents.stats
    assert stats.handled == 1 and stats.handled_seconds == pytest.approx(46.0)
    assert stats.handling == {}


def test_an_abandoned_call_is_retried_once_after_an_hour_then_final() -> None:
    m = machine(spec(), 1)
    d = _dial_one(m)
    m.on_event(Milestone(d.call_ref, "human", "u1", W0 + 3.0), T0, W0 + 3.1)
    m.on_event(AgentOutcome(d.call_ref, "abandoned", 2.0), T0, W0 + 5)
    out = m.on_event(LegOutcome(d.call_ref, "answered", T0, uuid="u1", amd="human"), T0, W0 + 9)
    assert not [o for o in out if isinstance(o, FinalResult)]  # waiting for its retry
    p = m.progress(T0, W0 + 9)
    assert p.retries_pending_by_disposition == {"abandoned": 1}
    assert p.agents is not None and p.agents.abandon_rate == 1.0
    later = T0 + timedelta(hours=1)
    m.on_agent_load(load(1), W0 + 3600)
    [d2] = dials(m.tick(later, W0 + 3600))
    m.on_event(Milestone(d2.call_ref, "human", "u2", W0 + 3603), later, W0 + 3603)
    m.on_event(AgentOutcome(d2.call_ref, "abandoned", 2.0), later, W0 + 3605)
    out = m.on_event(LegOutcome(d2.call_ref, "answered", later, uuid="u2", amd="human"), later)
    [res] = [o.result for o in out if isinstance(o, FinalResult)]
    assert (res.disposition, res.attempts, res.agent_id) == ("abandoned", 2, None)


@pytest.mark.parametrize("kind", ["connected", "abandoned"])
def test_the_pools_notice_after_the_callees_outcome_counts_once(kind: str) -> None:
    """A short bridged call: the callee's outcome reaches the controller before the pool's
    notice (seen in demo --agents: 73 connected in status, 77 in the simulator's ledger)."""
    m = machine(spec("predictive"), 1)
    d = _dial_one(m)
    m.on_event(Milestone(d.call_ref, "human", "u1", W0 + 3.0), T0, W0 + 3.1)
    leg = LegOutcome(d.call_ref, "answered", T0, uuid="u1", amd="human", duration_s=2)
    m.on_event(leg, T0, W0 + 6)
    # Restored in between (the awaited notice survives a takeover), then told twice.
    m = CampaignMachine.restore(m.spec, m.meta_json(), m.tracks(), cps_limit=100.0)
    notice = AgentOutcome(d.call_ref, kind, 1.5, "ann" if kind == "connected" else None)
    assert m.on_event(notice, T0, W0 + 6.5) == []
    assert m.on_event(notice, T0, W0 + 6.6) == []
    p = m.progress(T0, W0 + 7).agents
    assert p is not None
    if kind == "connected":
        assert (p.connected, p.abandoned, p.mean_wait_s) == (1, 0, 1.5)
    else:
        assert (p.connected, p.abandoned) == (0, 1)
    # A notice nobody awaits (another run's, or long after) changes nothing.
    m.on_event(AgentOutcome("other.r1.0.1", "connected", 1.0, "bob"), T0, W0 + 8)
    assert m.progress(T0, W0 + 8).agents == p


def test_the_machine_restores_its_agent_side() -> None:
    s = spec("predictive")
    m = machine(s, 3)
    d = _dial_one(m)
    m.on_event(Milestone(d.call_ref, "human", "u1", W0 + 3.0), T0, W0 + 3.1)
    restored = CampaignMachine.restore(s, m.meta_json(), m.tracks(), cps_limit=100.0)
    assert restored.progress(T0, W0 + 4).agents == m.progress(T0, W0 + 4).agents
    assert restored.agents is not None and restored.agents.stats.live_answers == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 8), st.integers(0, 8), st.integers(0, 3), st.sampled_from([1.0, 1.5, 3.0]))
def test_progressive_never_dials_more_than_ratio_times_free_agents(
    free: int, busy: int, waiting: int, ratio: float
) -> None:
    m = machine(spec(ratio=ratio), 60)
    m.on_agent_load(load(free, busy=busy, waiting=min(waiting, free)), W0)
    n = len(dials(m.tick(T0, W0)))
    assert n <= int(ratio * max(0, free - min(waiting, free)) + 1e-9)


def test_the_create_call_bridges_the_callee_after_the_prelude() -> None:
    s = spec()
    c = contacts(1)[0]
    cmd = build_create_call(
        s, c, "sales.0123abcd.0.1", public_base="https://h.example", account="default", at=T0
    )
    assert cmd.body["ncco"] == [
        {"action": "talk", "text": "Hello P0, one moment."},
        {
            "action": "conversation",
            "name": "bridge-sales.0123abcd.0.1",
            "startOnEnter": True,
            "endOnExit": True,
        },
    ]
    assert cmd.body["machine_detection"] == "hangup"
    assert cmd.hints == {"on_machine": "hangup", "agents": "bridge"}
    assert abandon_values(s, c) == {"name": "P0"}


def test_an_agentless_create_call_is_unchanged() -> None:
    s = parse_campaign_document(
        SPEC.replace("mode: {mode}\n", "")
        .replace(
            'agents: {{ratio: {ratio}, abandon_message: "This was Acme for {{{{name}}}}, call 0800 000 000."}}\n',
            "",
        )
        .format(),
        "c.yaml",
    ).spec
    cmd = build_create_call(
        s, contacts(1)[0], "sales.0123abcd.0.1", public_base="https://h.example", account="a", at=T0
    )
    assert [a["action"] for a in cmd.body["ncco"]] == ["talk"] and "agents" not in (cmd.hints or {})


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("machine_detection: {mode: standard, on_machine: hangup}", None),
        ('machine_detection: {mode: "off"}', "machine answers must never reach an agent"),
        ("flow: {name: welcome}", "needs an inline ncco"),
        (
            "flow: {ncco: [{action: input, type: [dtmf]}]}",
            "only talk and stream may play before the callee is connected",
        ),
    ],
)
def test_validation_of_agent_campaigns(change: str, error: str | None) -> None:
    key = change.split(":")[0]
    lines = [
        ln
        for ln in SPEC.format(mode="progressive", ratio=1).splitlines()
        if not ln.startswith(key + ":")
    ]
    text = "\n".join([*lines, change]) + "\n"
    if error is None:
        parse_campaign_document(text, "c.yaml")
        return
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_document(text, "c.yaml")
    assert error in str(err.value)
