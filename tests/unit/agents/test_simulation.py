"""Predictive against progressive on the same simulated agents and callees (seeded, pure).

20 agents, 30 % of dials answered by a person, a 60 s mean handle time (50 s of talk on
average, 10 s of wrap-up), two simulated hours. Predictive must keep the abandon rate within the
3 % cap over the whole run and keep the agents busier than progressive does.
"""

from __future__ import annotations

import pytest

from handlers.dialing_modes import PredictiveConfig
from tests.unit.agents._sim import SimConfig, simulate


@pytest.mark.parametrize("seed", [1, 2])
def test_predictive_keeps_abandons_under_the_cap_and_agents_busier(seed: int) -> None:
    prog = simulate("progressive", seed)
    pred = simulate("predictive", seed)
    assert pred.live_answers > 500 and prog.live_answers > 500
    assert pred.abandon_rate <= 0.03, pred
    assert pred.occupancy > prog.occupancy, (pred, prog)
    assert pred.occupancy >= 1.3 * prog.occupancy, (pred, prog)  # the bench target
    assert prog.abandoned == 0  # one line per free agent: a person never finds nobody
    assert pred.max_concurrent_reserved <= 20


def test_the_simulation_is_deterministic() -> None:
    assert simulate("predictive", 7).__dict__ == simulate("predictive", 7).__dict__


#: The bench's world (`python -m bench.agents`, in simulated seconds): a call's end reaches the
#: pool 6 s late and the pacing sees the pool's counts 8 s late (the hops through Kafka at x10
#: time), a person reaches the pool 5 s after answering, and may wait 10 s for an agent. With
#: these lags the pure simulation lands where the bench does: abandons come in clusters, and
#: runs that met one early spend much of their time in the hard limit.
LAGGED = SimConfig(
    talk_mean=60.0,
    wrap_up=5.0,
    human_ring=(5.0, 15.5),
    other_ring=(2.0, 30.0),
    agent_answers_after=2.0,
    connect_within=10.0,
    latency=5.0,
    end_latency=6.0,
    view_lag=8.0,
    contacts=1200,
    cps=30.0,
)


def test_with_the_pipelines_lags_the_tail_guard_keeps_runs_out_of_the_hard_limit() -> None:
    seeds = range(1, 11)
    base = {seed: simulate("progressive", seed, LAGGED) for seed in seeds}
    figures = {}
    for risk in (1.0, PredictiveConfig().tail_risk):  # the guard off, then the default
        pacing = PredictiveConfig(connect_within=LAGGED.connect_within, tail_risk=risk)
        runs = [simulate("predictive", seed, LAGGED, pacing) for seed in seeds]
        figures[risk] = (
            sum("hard_limit" in r.phases for r in runs),
            sum(r.occupancy / base[s].occupancy for s, r in zip(seeds, runs, strict=True)) / 10,
            max(r.abandon_rate for r in runs),
        )
    (hard_off, ratio_off, _), (hard_on, ratio_on, worst) = figures.values()
    assert hard_on < hard_off, figures
    assert ratio_on > ratio_off and ratio_on >= 1.3, figures
    assert worst <= 0.031, figures
