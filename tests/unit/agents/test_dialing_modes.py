"""Dialing modes: the agents' side of how many dials may start now."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.agents import PoolCounts
from handlers.dial_stats import DialStats, Ewma
from handlers.dialing_modes import (
    AgentLoad,
    PredictiveConfig,
    PredictivePacer,
    abandon_tail,
    agentless,
    expected_abandons,
    progressive,
)


def trained(
    answers: int = 40, abandons: int = 0, answer_rate: float = 0.25, now: float = 1000.0
) -> DialStats:
    """Stats after ``answers`` live answers at ``answer_rate``, ``abandons`` of them abandoned."""
    stats = DialStats(abandon_window=3600.0)
    misses = round(answers / answer_rate) - answers
    missed = 0
    for i in range(answers):  # interleaved, as they come: the running estimate forgets
        stats.on_live_answer(now - 100 + i, 8.0)
        stats.on_handled(60.0)
        while missed < round((i + 1) * misses / answers):
            stats.on_no_live_answer()
            missed += 1
    for i in range(abandons):
        stats.on_abandoned(now - 100 + i)
    return stats


def test_agentless_sets_no_agent_limit() -> None:
    assert agentless().dials is None


def test_progressive_is_ratio_per_free_agent_minus_ringing() -> None:
    assert progressive(AgentLoad(available=4, busy=6, ringing=1)).dials == 3
    assert progressive(AgentLoad(available=4, busy=6, ringing=1), ratio=1.5).dials == 5
    assert progressive(AgentLoad(available=2, busy=0, ringing=5)).dials == 0
    # A caller already waiting has a claim on the next free agent.
    assert progressive(AgentLoad(available=3, busy=0, ringing=0, waiting=2)).dials == 1
    with pytest.raises(ValueError):
        progressive(AgentLoad(1, 0, 0), ratio=0)


def test_load_of_pool_counts() -> None:
    counts = PoolCounts(available=2, reserved=1, on_call=3, wrap_up=1, offline=4)
    assert AgentLoad.of(counts, ringing=5, waiting=1) == AgentLoad(2, 4, 5, 1)


def test_predictive_dials_progressively_until_enough_answers() -> None:
    pacer = PredictivePacer(PredictiveConfig(ratio=1.5), trained(answers=19))
    load = AgentLoad(available=4, busy=10, ringing=1)
    allowed = pacer.allowance(1000.0, load)
    assert allowed.phase == "warmup" and allowed.dials == progressive(load, 1.5).dials == 5


def test_predictive_dials_ahead_for_busy_agents_as_far_as_the_abandon_risk_allows() -> None:
    pacer = PredictivePacer(PredictiveConfig(), trained(answers=150, answer_rate=0.25))
    load = AgentLoad(available=2, busy=10, ringing=3)
    allowed = pacer.allowance(1000.0, load)
    plan = pacer.plan
    assert plan is not None and plan.phase == "adaptive" and plan.share == 1.0
    # Planned with the pessimistic side of each estimate (one standard error).
    assert plan.answer_rate is not None and 0.25 < plan.answer_rate < 0.35
    assert plan.handle_time == pytest.approx(60.0 * (1 + 1 / math.sqrt(150)))
    assert plan.level == pytest.approx(1 / plan.answer_rate)
    assert plan.horizon == pytest.approx(8.0 + 2.0)
    assert plan.free_chance == pytest.approx(1 - math.exp(-10.0 / plan.handle_time))
    assert plan.target == pytest.approx(0.6 * 0.03)  # past the ramp's 100 answers
    assert allowed.dials is not None and allowed.dials > progressive(load).dials  # type: ignore[operator]
    # The edge: these dials' expected abandons are within the target, one more is not (or the
    # lines-per-expected-agent ceiling binds).
    p, q = round(plan.answer_rate, 4), round(plan.free_chance, 4)

    def risk(n: int) -> float:
        return expected_abandons(3 + n, p, 2, 10, q) / ((3 + n) * p)

    ceiling = math.floor(plan.level * (2 + 10 * plan.free_chance)) - 3
    assert risk(allowed.dials) <= plan.target
    assert allowed.dials == ceiling or risk(allowed.dials + 1) > plan.target


def test_the_risk_taken_grows_with_the_answers_the_rate_is_counted_over() -> None:
    load = AgentLoad(available=4, busy=16, ringing=0)
    early, later = (
        PredictivePacer(PredictiveConfig(), trained(answers=n, answer_rate=0.3)) for n in (25, 150)
    )
    a, b = early.allowance(1000.0, load), later.allowance(1000.0, load)
    assert early.plan is not None and later.plan is not None
    assert early.plan.target == pytest.approx(0.25 * later.plan.target)
    assert a.dials is not None and b.dials is not None and a.dials < b.dials


def test_a_bigger_team_dials_further_ahead_per_agent_at_the_same_risk() -> None:
    small, large = (
        PredictivePacer(PredictiveConfig(), trained(answers=400, answer_rate=0.3)).allowance(
            1000.0, AgentLoad(available=n // 4, busy=n - n // 4, ringing=0)
        )
        for n in (8, 80)
    )
    assert small.dials is not None and large.dials is not None
    assert large.dials / 80 > small.dials / 8


def test_lines_already_ringing_block_new_dials_when_they_carry_the_risk() -> None:
    pacer = PredictivePacer(PredictiveConfig(), trained(answers=400, answer_rate=0.3))
    quiet = pacer.allowance(1000.0, AgentLoad(available=6, busy=14, ringing=4))
    crowded = pacer.allowance(1000.0, AgentLoad(available=6, busy=14, ringing=40))
    assert quiet.dials is not None and quiet.dials > 2
    assert crowded.dials == 0  # 40 lines at 30 % are 12 people for 6 free agents


#: People answering the lines in flight (H) and busy agents freeing in time (K), small enough to
#: enumerate every outcome.
_COUNTS = {
    "lines": st.integers(0, 12),
    "p": st.floats(0.0, 1.0),
    "free": st.integers(-3, 6),
    "busy": st.integers(0, 8),
    "q": st.floats(0.0, 1.0),
}


def _outcomes(lines: int, p: float, busy: int, q: float) -> list[tuple[float, int, int]]:
    """Every (probability, H, K), enumerated."""

    def pmf(n: int, x: float, k: int) -> float:
        return math.comb(n, k) * x**k * (1 - x) ** (n - k)

    return [
        (pmf(lines, p, h) * pmf(busy, q, k), h, k)
        for h in range(lines + 1)
        for k in range(busy + 1)
    ]


@settings(max_examples=300, deadline=None)
@given(**_COUNTS)
def test_expected_abandons_is_the_exact_expectation(
    lines: int, p: float, free: int, busy: int, q: float
) -> None:
    exact = sum(w * max(0, h - free - k) for w, h, k in _outcomes(lines, p, busy, q))
    assert expected_abandons(lines, p, free, busy, q) == pytest.approx(exact, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(**_COUNTS, budget=st.integers(-1, 4))
def test_abandon_tail_is_the_exact_probability(
    lines: int, p: float, free: int, busy: int, q: float, budget: int
) -> None:
    exact = sum(w for w, h, k in _outcomes(lines, p, busy, q) if max(0, h - free - k) > budget)
    assert abandon_tail(lines, p, free, busy, q, budget) == pytest.approx(exact, abs=1e-9)


def test_no_dial_risks_an_abandon_the_window_cannot_take_yet() -> None:
    """26 live answers, none abandoned: one abandon would be 3.8 %, over the 3 % cap (and the
    hard limit until the rate is back under it). The mean allows a bet that the tail does not."""
    load = AgentLoad(available=6, busy=60, ringing=0)
    guarded, unguarded = (
        PredictivePacer(PredictiveConfig(tail_risk=risk), trained(answers=26, answer_rate=0.3))
        for risk in (0.01, 1.0)
    )
    a, b = guarded.allowance(1000.0, load), unguarded.allowance(1000.0, load)
    plan = guarded.plan
    assert plan is not None and plan.phase == "adaptive"
    assert (plan.window_answers, plan.window_abandons) == (26, 0)
    assert a.dials is not None and b.dials is not None and a.dials < b.dials
    p, q = round(plan.answer_rate or 0, 4), round(plan.free_chance, 4)
    assert abandon_tail(a.dials, p, 6, 60, q, 0) <= 0.01  # the budget is 0 abandons here
    assert abandon_tail(b.dials, p, 6, 60, q, 0) > 0.01


def test_the_tail_guard_lets_go_once_the_window_has_budget_to_spare() -> None:
    load = AgentLoad(available=6, busy=60, ringing=0)
    guarded, unguarded = (
        PredictivePacer(PredictiveConfig(tail_risk=risk), trained(answers=300, answer_rate=0.3))
        for risk in (0.01, 1.0)
    )
    assert guarded.allowance(1000.0, load).dials == unguarded.allowance(1000.0, load).dials


def test_predictive_tapers_as_the_abandon_rate_nears_the_cap_and_is_1to1_at_it() -> None:
    load = AgentLoad(available=3, busy=12, ringing=0)
    dials = []
    for abandons in (0, 1, 2, 3):  # of 60 answers: 0 %, 1.7 %, 3.3 %, 5 % against a 4 % cap
        pacer = PredictivePacer(PredictiveConfig(abandon_cap=0.04), trained(60, abandons))
        allowed = pacer.allowance(1000.0, load)
        dials.append(allowed.dials)
        assert pacer.plan is not None
        if abandons <= 1:
            assert pacer.plan.share == 1.0  # under half the cap: full speed
            assert pacer.plan.target == pytest.approx(0.6 * 0.04 * 60 / 100)
        elif abandons == 2:
            assert 0 < pacer.plan.share < 1 and 1 < pacer.plan.level < 4
            assert 0 < pacer.plan.target < 0.6 * 0.04 * 60 / 100
    assert dials[0] == dials[1] > dials[2] >= dials[3] == progressive(load).dials == 3
    capped = PredictivePacer(PredictiveConfig(abandon_cap=0.0), trained(60, 0))
    assert capped.allowance(1000.0, load).phase == "hard_limit"  # a zero cap never predicts


def test_the_plan_holds_for_its_cadence_but_an_abandon_or_the_end_of_warmup_replans() -> None:
    stats = trained(answers=40)
    pacer = PredictivePacer(PredictiveConfig(cadence=15.0), stats)
    load = AgentLoad(available=3, busy=10, ringing=0)
    first = pacer.allowance(1000.0, load)
    stats.on_live_answer(1001.0, 8.0)
    assert pacer.allowance(1014.9, load) == first  # an answer alone waits for the cadence
    assert pacer.plan is not None and pacer.plan.at == 1000.0
    for i in range(5):  # now every answer is abandoned: the rate is over the cap...
        stats.on_abandoned(1000.0 + i)
    assert pacer.allowance(1005.0, load).phase == "hard_limit"  # ...and that replans at once
    warming = PredictivePacer(PredictiveConfig(cadence=15.0), trained(answers=19))
    assert warming.allowance(1000.0, load).phase == "warmup"
    warming.stats.on_live_answer(1001.0, 8.0)
    assert warming.allowance(1002.0, load).phase == "adaptive"


def test_the_handle_time_counts_the_calls_still_with_an_agent_until_its_sample_is_full() -> None:
    stats = DialStats(alpha=0.1)
    for i in range(4):
        stats.on_bridged(f"c{i}", 0.0)
    stats.on_handled(20.0, "c0")  # the short call ends first
    assert stats.handle_estimate(100.0) == pytest.approx((20 + 3 * 100) / 1)
    for i in range(1, 4):
        stats.on_handled(100.0, f"c{i}")
    assert stats.handle_estimate(200.0) == pytest.approx((20 + 300) / 4)
    for _ in range(10):
        stats.on_handled(50.0)
    assert stats.handle_time.samples >= 10  # the full sample: the running mean from now on
    assert stats.handle_estimate(300.0) == stats.handle_time.value
    back = DialStats.from_json(stats.to_json())
    assert back.to_json() == stats.to_json()


def test_stats_and_plans_written_before_the_censored_handle_time_still_load() -> None:
    stats = trained()
    old = stats.to_json()
    for key in ("handling", "handled_seconds", "handled"):
        del old[key]
    back = DialStats.from_json(old)
    assert back.handled == stats.handle_time.samples and back.handling == {}
    pacer = PredictivePacer(PredictiveConfig(), stats)
    pacer.allowance(1000.0, AgentLoad(2, 10, 3))
    d = pacer.to_json()
    assert d["plan"] is not None
    del d["plan"]["target"], d["plan"]["abandoned"]
    assert PredictivePacer.from_json(PredictiveConfig(), d).plan is not None


def test_pacer_state_round_trips_through_json() -> None:
    pacer = PredictivePacer(PredictiveConfig(), trained())
    load = AgentLoad(available=1, busy=9, ringing=2)
    pacer.allowance(1000.0, load)
    back = PredictivePacer.from_json(PredictiveConfig(), pacer.to_json())
    assert back.to_json() == pacer.to_json()
    assert back.allowance(1010.0, load) == pacer.allowance(1010.0, load)


def test_ewma_starts_as_the_plain_mean_then_forgets() -> None:
    e = Ewma(alpha=0.5)
    for x in (1.0, 3.0):
        e.add(x)
    assert e.value == 2.0  # plain mean of the first 1/alpha samples
    e.add(10.0)
    assert e.value == 6.0
    with pytest.raises(ValueError):
        Ewma(alpha=0.0)


def test_abandon_rate_counts_only_the_window() -> None:
    stats = DialStats(abandon_window=60.0)
    assert stats.abandon_rate(0.0) is None
    for t in range(10):
        stats.on_live_answer(float(t), 5.0)
    stats.on_abandoned(1.0)
    assert stats.abandon_rate(10.0) == pytest.approx(0.1)
    assert stats.abandon_rate(61.5) == 0.0  # the abandoned answer left the window
    assert stats.abandon_rate(200.0) is None


loads = st.builds(
    AgentLoad,
    available=st.integers(0, 30),
    busy=st.integers(0, 30),
    ringing=st.integers(0, 60),
    waiting=st.integers(0, 5),
)


@settings(max_examples=200, deadline=None)
@given(
    load=loads,
    answers=st.integers(0, 200),
    abandon_share=st.floats(0.0, 0.2),
    answer_rate=st.floats(0.05, 1.0),
    cap=st.sampled_from([0.0, 0.01, 0.03, 0.1]),
)
def test_predictive_stays_between_1to1_and_its_level_times_the_staffed_agents(
    load: AgentLoad, answers: int, abandon_share: float, answer_rate: float, cap: float
) -> None:
    stats = trained(answers, round(answers * abandon_share), answer_rate)
    config = PredictiveConfig(abandon_cap=cap)
    pacer = PredictivePacer(config, stats)
    allowed = pacer.allowance(1000.0, load)
    plan = pacer.plan
    assert plan is not None and allowed.dials is not None
    one_to_one = progressive(load, 1.0).dials
    assert one_to_one is not None
    if plan.phase == "warmup":
        assert allowed.dials == progressive(load, config.ratio).dials
        return
    assert 1.0 <= plan.level <= config.max_level
    assert allowed.dials >= one_to_one
    ceiling = math.floor(plan.level * (load.available + load.busy) + 1e-9) - load.ringing
    assert allowed.dials <= max(0, ceiling)
    rate = stats.abandon_rate(1000.0)
    if rate is not None and rate >= cap:
        assert plan.phase == "hard_limit" and allowed.dials == one_to_one
