"""Fault decisions: injected 429s drawn per operation, and no extra draws when unset."""

from __future__ import annotations

import random

import pytest

from orchestrator.sandbox.simulator.faults import decide, throttled
from orchestrator.sandbox.simulator.profile import ProfileError, describe_profile, load_profile


def test_throttle_rate_is_drawn_per_operation() -> None:
    prof = load_profile({"faults": {"endpoints": {"create_call": {"throttle_rate": 0.25}}}})
    rng = random.Random(3)
    hits = sum(throttled(prof, "create_call", rng) for _ in range(4000))
    assert 800 < hits < 1200  # 25 % of 4,000, seeded
    assert not any(throttled(prof, "get_call", rng) for _ in range(100))
    always = load_profile({"faults": {"endpoints": {"*": {"throttle_rate": 1.0}}}})
    assert throttled(always, "update_call", rng)


def test_unset_throttle_draws_nothing() -> None:
    """Profiles without throttle_rate keep their seeded fault sequence (no extra draws)."""
    prof = load_profile({"faults": {"endpoints": {"create_call": {"error_rate": 0.5}}}})
    a, b = random.Random(9), random.Random(9)
    seq_a = []
    for _ in range(50):
        assert not throttled(prof, "create_call", a)
        seq_a.append(decide(prof, "create_call", a).error_status)
    seq_b = [decide(prof, "create_call", b).error_status for _ in range(50)]
    assert seq_a == seq_b


def test_throttle_rate_is_validated_and_documented() -> None:
    with pytest.raises(ProfileError, match="throttle_rate"):
        load_profile({"faults": {"endpoints": {"create_call": {"throttle_rate": 1.5}}}})
    assert any("throttle_rate" in line for line in describe_profile())
