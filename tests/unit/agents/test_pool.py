"""The agent pool by example: each transition, the longest-idle choice, and what it reports."""

from __future__ import annotations

import pytest

from contracts.agents import AgentAction, AgentNeed, AgentRecord, AgentState
from handlers.agents import (
    AgentLegFailed,
    AgentPool,
    CallEnded,
    Connected,
    NoAgentFree,
    Release,
    Reserve,
    Reserved,
)
from tests.unit.agents._make import agent, command, login


def pool_of(*ids: str, start: float = 0.0) -> AgentPool:
    pool = AgentPool()
    for i, agent_id in enumerate(ids):
        pool.apply(login(agent(agent_id), start + i), start + i)
    return pool


def test_login_makes_an_agent_available_and_logout_offline() -> None:
    pool = pool_of("a1")
    assert pool.state_of("a1") == AgentState.AVAILABLE
    pool.apply(command("out", "a1", AgentAction.LOGOUT, 50.0), 50.0)
    assert pool.state_of("a1") == AgentState.OFFLINE
    record = pool.record("a1")
    assert record is not None and record.logged_in_since is None
    assert record.logged_in_seconds == 50.0 and record.offline_reason == "logout"


def test_commands_for_an_unknown_agent_change_nothing() -> None:
    pool = AgentPool()
    pool.apply(command("x", "ghost", AgentAction.AVAILABLE, 1.0), 1.0)
    assert pool.agent_ids() == [] and pool.drain_changes() == []


def test_reserve_takes_the_longest_idle_agent_and_release_gives_its_place_back() -> None:
    pool = pool_of("a1", "a2", "a3")  # idle since 0, 1, 2
    first = pool.apply(Reserve("r1", "call-1"), 10.0)
    assert [d.agent_id for d in first if isinstance(d, Reserved)] == ["a1"]
    second = pool.apply(Reserve("r2", "call-2"), 10.0)
    assert [d.agent_id for d in second if isinstance(d, Reserved)] == ["a2"]
    pool.apply(Release("rel1", "call-1", "machine"), 11.0)
    assert pool.state_of("a1") == AgentState.AVAILABLE
    # a1 was released, not used: it is still the longest idle, ahead of a3.
    third = pool.apply(Reserve("r3", "call-3"), 12.0)
    assert [d.agent_id for d in third if isinstance(d, Reserved)] == ["a1"]


def test_ties_in_idle_time_go_by_agent_id() -> None:
    pool = AgentPool()
    for agent_id in ("b", "a", "c"):
        pool.apply(login(agent(agent_id), 5.0), 5.0)
    assert pool.apply(Reserve("r", "call"), 6.0) == [Reserved("call", "a", agent("a").endpoint)]


def test_reserve_matches_group_and_every_skill() -> None:
    pool = AgentPool()
    pool.apply(login(agent("a1", groups=("sales",), skills=("fr",)), 0.0), 0.0)
    pool.apply(login(agent("a2", groups=("sales",), skills=("fr", "de")), 1.0), 1.0)
    pool.apply(login(agent("a3", groups=("support",), skills=("fr", "de")), 2.0), 2.0)
    need = AgentNeed(group="sales", skills=["de", "fr"])
    assert [
        d.agent_id for d in pool.apply(Reserve("r1", "c1", need), 3.0) if isinstance(d, Reserved)
    ] == ["a2"]
    assert pool.apply(Reserve("r2", "c2", need), 3.0) == [NoAgentFree("c2")]
    assert pool.counts(3.0, AgentNeed(group="sales")).available == 1


def test_the_same_call_asking_again_gets_the_same_agent_never_a_second() -> None:
    pool = pool_of("a1", "a2")
    first = pool.apply(Reserve("r1", "call"), 5.0)
    again = pool.apply(Reserve("r1-retry", "call"), 6.0)
    assert first == again
    assert pool.counts(6.0).reserved == 1 and pool.counts(6.0).available == 1


def test_a_call_goes_reserved_on_call_wrap_up_then_available_at_its_own_time() -> None:
    pool = pool_of("a1")
    pool.apply(Reserve("r", "call"), 10.0)
    pool.apply(Connected("c", "call"), 11.0)
    assert pool.state_of("a1") == AgentState.ON_CALL
    pool.apply(CallEnded("e", "call"), 71.0)
    assert pool.state_of("a1") == AgentState.WRAP_UP
    assert pool.counts(80.9).wrap_up == 1
    # Ticked late: the agent was free (and idle) from 81.0, not from when the pool looked.
    assert pool.tick(95.0) == ["a1"]
    record = pool.record("a1")
    assert record is not None and record.idle_since == 81.0 and record.since == 81.0
    assert (
        record.talk_seconds == 60.0 and record.wrap_up_seconds_total == 10.0 and record.calls == 1
    )


def test_a_wrap_up_ends_before_a_reserve_at_a_later_time_without_a_tick() -> None:
    pool = pool_of("a1")
    pool.apply(Reserve("r", "call"), 0.0)
    pool.apply(Connected("c", "call"), 1.0)
    pool.apply(CallEnded("e", "call"), 2.0)
    assert isinstance(pool.apply(Reserve("r2", "call-2"), 12.0)[0], Reserved)


def test_a_zero_wrap_up_frees_the_agent_at_once() -> None:
    pool = AgentPool()
    pool.apply(login(agent("a1", wrap=0.0), 0.0), 0.0)
    pool.apply(Reserve("r", "call"), 1.0)
    pool.apply(Connected("c", "call"), 1.0)
    pool.apply(CallEnded("e", "call"), 5.0)
    assert pool.state_of("a1") == AgentState.AVAILABLE


def test_the_callee_leaving_before_the_agent_answers_frees_the_agent() -> None:
    pool = pool_of("a1")
    pool.apply(Reserve("r", "call"), 1.0)
    pool.apply(CallEnded("e", "call"), 2.0)
    assert pool.state_of("a1") == AgentState.AVAILABLE
    assert pool.agent_for("call") is None


def test_a_failed_agent_leg_puts_the_agent_offline_and_the_call_goes_to_the_next() -> None:
    pool = pool_of("a1", "a2")
    pool.apply(Reserve("r", "call"), 5.0)
    decisions = pool.apply(AgentLegFailed("f", "call", "a1", "busy"), 6.0)
    assert decisions == [Reserved("call", "a2", agent("a2").endpoint, replaces="a1")]
    record = pool.record("a1")
    assert record is not None and record.state == AgentState.OFFLINE
    assert record.offline_reason == "leg_busy" and record.logged_in_since is not None
    # Nobody left: the caller is told, with the agent that failed.
    assert pool.apply(AgentLegFailed("f2", "call", "a2", "failed"), 7.0) == [
        NoAgentFree("call", after_failure_of="a2")
    ]
    # Back from the failure when the agent says so.
    pool.apply(command("back", "a1", AgentAction.AVAILABLE, 30.0), 30.0)
    assert pool.state_of("a1") == AgentState.AVAILABLE


def test_stale_call_events_are_ignored() -> None:
    pool = pool_of("a1", "a2")
    pool.apply(Reserve("r", "call"), 5.0)
    assert pool.apply(AgentLegFailed("f", "call", "a2", "busy"), 6.0) == []  # not a2's call
    pool.apply(Connected("c", "call"), 6.0)
    assert pool.apply(AgentLegFailed("f2", "call", "a1", "busy"), 7.0) == []  # already talking
    pool.apply(Release("rel", "call"), 7.0)  # a release cannot cut a live call
    assert pool.state_of("a1") == AgentState.ON_CALL
    pool.apply(Connected("c-other", "nobody's call"), 8.0)
    assert pool.counts(8.0).on_call == 1 and pool.counts(8.0).available == 1


def test_a_duplicate_event_id_is_applied_once() -> None:
    pool = pool_of("a1", "a2")
    pool.apply(Reserve("r", "call"), 5.0)
    pool.apply(Release("rel", "call"), 6.0)
    # The same reserve redelivered: a1 is free again, but the event was applied already.
    assert pool.apply(Reserve("r", "call"), 7.0) == []
    assert pool.agent_for("call") is None and pool.counts(7.0).available == 2
    pool.apply(command("off", "a2", AgentAction.OFFLINE, 8.0), 8.0)
    pool.apply(command("on", "a2", AgentAction.AVAILABLE, 9.0), 9.0)
    pool.apply(command("off", "a2", AgentAction.OFFLINE, 10.0), 10.0)  # redelivered
    assert pool.state_of("a2") == AgentState.AVAILABLE


def test_dedup_memory_is_bounded_per_agent() -> None:
    pool = AgentPool(dedup_depth=4)
    pool.apply(login(agent("a1"), 0.0, "login"), 0.0)
    for i in range(10):
        pool.apply(command(f"off{i}", "a1", AgentAction.OFFLINE, 1.0 + i), 1.0 + i)
    record = pool.record("a1")
    assert record is not None and record.recent_events == ["off6", "off7", "off8", "off9"]
    assert len(pool._seen) == 4  # the index forgets with the records


@pytest.mark.parametrize("action", [AgentAction.OFFLINE, AgentAction.LOGOUT])
def test_going_offline_during_a_call_waits_for_its_end(action: AgentAction) -> None:
    pool = pool_of("a1")
    pool.apply(Reserve("r", "call"), 1.0)
    pool.apply(command("leave", "a1", action, 2.0), 2.0)
    assert pool.state_of("a1") == AgentState.RESERVED
    pool.apply(Connected("c", "call"), 3.0)
    pool.apply(CallEnded("e", "call"), 33.0)
    record = pool.record("a1")
    assert record is not None and record.state == AgentState.OFFLINE
    assert record.offline_reason == action.value and record.talk_seconds == 30.0
    assert (record.logged_in_since is None) == (action == AgentAction.LOGOUT)


def test_available_during_a_call_cancels_a_pending_offline_and_ends_wrap_up_early() -> None:
    pool = pool_of("a1")
    pool.apply(Reserve("r", "call"), 1.0)
    pool.apply(command("leave", "a1", AgentAction.OFFLINE, 2.0), 2.0)
    pool.apply(command("stay", "a1", AgentAction.AVAILABLE, 3.0), 3.0)
    pool.apply(Release("rel", "call"), 4.0)
    assert pool.state_of("a1") == AgentState.AVAILABLE
    pool.apply(Reserve("r2", "call-2"), 5.0)
    pool.apply(Connected("c2", "call-2"), 5.0)
    pool.apply(CallEnded("e2", "call-2"), 8.0)
    pool.apply(command("ready", "a1", AgentAction.AVAILABLE, 9.0), 9.0)
    record = pool.record("a1")
    assert record is not None and record.state == AgentState.AVAILABLE and record.idle_since == 9.0
    assert pool.tick(100.0) == []  # the wrap-up's own end no longer applies


def test_occupancy_is_talk_over_logged_in_time_with_live_intervals() -> None:
    pool = pool_of("a1", "a2", start=0.0)  # a2 logs in at 1.0
    pool.apply(Reserve("r", "call"), 10.0)
    pool.apply(Connected("c", "call"), 10.0)
    occ = pool.occupancy(40.0)
    assert occ.logged_in == 2 and occ.talk_seconds == 30.0
    assert occ.logged_in_seconds == 40.0 + 39.0
    assert occ.occupancy == pytest.approx(30.0 / 79.0)
    counts = pool.counts(40.0)
    assert (counts.available, counts.on_call, counts.busy, counts.staffed) == (1, 1, 1, 2)
    assert AgentPool().occupancy(1.0).occupancy is None


def test_records_restore_an_identical_pool_through_json() -> None:
    pool = pool_of("a1", "a2", "a3")
    pool.apply(Reserve("r1", "call-1", AgentNeed()), 5.0)
    pool.apply(Connected("c1", "call-1"), 6.0)
    pool.apply(Reserve("r2", "call-2"), 7.0)
    pool.apply(command("off", "a3", AgentAction.OFFLINE, 8.0), 8.0)
    wire = [r.to_bytes() for r in pool.records()]
    restored = AgentPool.restore(AgentRecord.model_validate_json(b) for b in wire)
    assert restored.records() == pool.records()
    # The restored pool remembers the calls, the wrap-up timers and the applied event ids.
    assert restored.apply(Reserve("r2", "call-2"), 9.0) == []
    for p in (pool, restored):
        p.apply(CallEnded("e1", "call-1"), 20.0)
    assert restored.tick(30.0) == pool.tick(30.0) == ["a1"]
    assert restored.records() == pool.records()


def test_drain_changes_names_the_agents_to_write() -> None:
    pool = pool_of("a1", "a2")
    assert pool.drain_changes() == ["a1", "a2"]
    pool.apply(Reserve("r", "call"), 5.0)
    assert pool.drain_changes() == ["a1"]
    assert pool.drain_changes() == []
