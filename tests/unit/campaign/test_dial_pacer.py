"""The campaign's pacer: its share of the CPS on average, and the time a slow round trip lost lent
back (the 20 CPS bench lost a tenth of the account to a sliding log of the same rate)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.dial_pacer import DialPacer


def _admit_all(p: DialPacer, times: list[float]) -> list[float]:
    got = []
    for t in sorted(times):
        if p.try_acquire(t):
            got.append(t)
    return got


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([0.5, 3.0, 20.0, 100.0]),
    burst_s=st.sampled_from([1.0, 2.0]),
    times=st.lists(st.floats(0, 30, allow_nan=False), max_size=400),
)
def test_never_more_than_rate_times_span_plus_burst(
    rate: float, burst_s: float, times: list[float]
) -> None:
    burst = max(1.0, rate * burst_s)
    got = _admit_all(DialPacer(rate, burst), times)
    for i, a in enumerate(got):
        for b in got[i:]:
            assert sum(1 for t in got if a <= t <= b) <= rate * (b - a) + burst + 1e-9


def test_time_lost_waiting_is_lent_back_up_to_the_burst() -> None:
    p = DialPacer(20.0, burst=40.0)
    assert len(_admit_all(p, [0.0] * 100)) == 40  # a full burst at start, no more
    assert abs((p.next_free(0.0) or 0) - 0.05) < 1e-9
    # Nothing asked for 3 s (the dispatcher was slow to report): 2 s of dials are ready at once,
    # where a sliding log would have freed them spread over the next two seconds.
    assert len(_admit_all(p, [5.0] * 100)) == 40


def test_steady_demand_gets_exactly_the_rate() -> None:
    p = DialPacer(3.0, burst=6.0)
    ticks = [i * 0.01 for i in range(100 * 60)]  # asks every 10 ms for a minute
    got = _admit_all(p, ticks)
    assert 6 + 3 * 59 <= len(got) <= 6 + 3 * 60


def test_restore_keeps_the_debt_and_an_old_state_starts_with_a_burst() -> None:
    p = DialPacer(10.0, burst=20.0)
    _admit_all(p, [0.0] * 20)
    q = DialPacer(10.0, burst=20.0)
    q.restore(p.to_json())
    assert q.next_free(0.0) == p.next_free(0.0) is not None
    old = DialPacer(10.0, burst=20.0)
    old.restore(None)
    assert old.next_free(0.0) is None
