"""The rolling-window limiter: never more than N admissions in any window, and no lost capacity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.sandbox.simulator.limits import RollingWindowLimiter


def test_burst_then_window_slides() -> None:
    lim = RollingWindowLimiter(3)
    assert [lim.try_acquire(0.0) for _ in range(5)] == [True, True, True, False, False]
    assert not lim.try_acquire(0.999)
    assert lim.retry_after(0.5) == pytest.approx(0.5)
    # all three admissions at t=0 leave the window together at t=1
    assert [lim.try_acquire(1.0) for _ in range(4)] == [True, True, True, False]


def test_fractional_rate_keeps_the_average() -> None:
    lim = RollingWindowLimiter(0.5)
    assert lim.limit == 1 and lim.window == pytest.approx(2.0)
    assert lim.try_acquire(0.0)
    assert not lim.try_acquire(1.9)
    assert lim.try_acquire(2.0)


def test_invalid_rate() -> None:
    with pytest.raises(ValueError):
        RollingWindowLimiter(0)


@given(
    rate=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200),
)
def test_no_window_exceeds_the_limit_and_refusals_are_justified(
    rate: int, gaps: list[float]
) -> None:
    lim = RollingWindowLimiter(rate)
    now = 0.0
    admitted: list[float] = []
    for gap in gaps:
        now += gap
        if lim.try_acquire(now):
            admitted.append(now)
        else:
            # refused only when the window really is full
            assert sum(1 for t in admitted if t > now - 1.0) >= rate
    for i in range(len(admitted) - rate):
        assert admitted[i + rate] - admitted[i] >= 1.0
