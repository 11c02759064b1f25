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
    agentless,
    progressive,
)


def trained(
    answers: int = 40, abandons: int = 0, answer_rate: float = 0.25, now: float = 1000.0
) -> DialStats:
    """Stats after ``answers`` live answers at ``answer_rate``, ``abandons`` of them abandoned."""
    stats = DialStats(abandon_window=3600.0)
    misses = round(answers / answer_rate) - answers
    for i in range(answers):
        stats.on_live_answer(now - 100 + i, 8.0)
        stats.on_handled(60.0)
    for _ in range(misses):
        stats.on_no_live_answer()
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


def test_predictive_dials_ahead_for_busy_agents_at_one_over_the_answer_rate() -> None:
    pacer = PredictivePacer(PredictiveConfig(), trained(answer_rate=0.25))
    load = AgentLoad(available=2, busy=10, ringing=3)
    allowed = pacer.allowance(1000.0, load)
    plan = pacer.plan
    assert plan is not None and plan.phase == "adaptive" and plan.share == 1.0
    assert plan.answer_rate is not None and 0.2 < plan.answer_rate < 0.3
    assert plan.level == pytest.approx(1 / plan.answer_rate)
    assert plan.horizon == pytest.approx(8.0 + 2.0)
    assert plan.free_chance == pytest.approx(1 - math.exp(-10.0 / 60.0))
    expected_free = 2 + 10 * plan.free_chance
    assert allowed.dials == math.floor(plan.level * expected_free) - 3
    assert allowed.dials > progressive(load).dials  # type: ignore[operator]


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
        elif abandons == 2:
            assert 0 < pacer.plan.share < 1 and 1 < pacer.plan.level < 4
    assert dials[0] == dials[1] > dials[2] > dials[3] == progressive(load).dials == 3
    capped = PredictivePacer(PredictiveConfig(abandon_cap=0.0), trained(60, 0))
    assert capped.allowance(1000.0, load).phase == "hard_limit"  # a zero cap never predicts


def test_the_plan_is_recomputed_on_a_cadence_not_per_dial() -> None:
    stats = trained(answers=40)
    pacer = PredictivePacer(PredictiveConfig(cadence=15.0), stats)
    load = AgentLoad(available=3, busy=10, ringing=0)
    first = pacer.allowance(1000.0, load)
    for i in range(5):  # now every answer is abandoned: the rate is over the cap...
        stats.on_abandoned(1000.0 + i)
    assert pacer.allowance(1014.9, load) == first  # ...but the plan holds for its cadence
    assert pacer.allowance(1015.0, load).phase == "hard_limit"


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
