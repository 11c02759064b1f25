"""Calling hours in the recipient's local time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.campaign import CallingHours
from handlers.calling_hours import is_open, next_open, zones_for

HOURS = CallingHours(days=["mon", "tue", "wed", "thu", "fri"], start=time(9), end=time(20))


def test_zone_from_contact_then_number_then_fallback() -> None:
    assert "Europe/London" in [z.key for z in zones_for("+447700900123", None)]
    assert [z.key for z in zones_for("+447700900123", "Asia/Tokyo")] == ["Asia/Tokyo"]
    # A San Francisco number: Pacific time from its area code.
    assert [z.key for z in zones_for("+14155550100", None)] == ["America/Los_Angeles"]
    # Unknown/invalid number: the fallback, else UTC.
    assert [z.key for z in zones_for("+999", None, "Europe/Paris")] == ["Europe/Paris"]
    assert [z.key for z in zones_for("+999", None)] == ["UTC"]


def test_london_window_in_local_time() -> None:
    zones = zones_for("+447700900123", None)
    # Monday 2026-07-06: BST = UTC+1, so 09:00 local = 08:00 UTC.
    assert not is_open(HOURS, zones, datetime(2026, 7, 6, 7, 59, tzinfo=UTC))
    assert is_open(HOURS, zones, datetime(2026, 7, 6, 8, 0, tzinfo=UTC))
    assert not is_open(HOURS, zones, datetime(2026, 7, 6, 19, 0, tzinfo=UTC))
    # Saturday is closed; the next opening is Monday 08:00 UTC.
    sat = datetime(2026, 7, 11, 12, tzinfo=UTC)
    assert not is_open(HOURS, zones, sat)
    assert next_open(HOURS, zones, sat) == datetime(2026, 7, 13, 8, 0, tzinfo=UTC)


def test_several_zones_need_the_window_open_in_all() -> None:
    # A number whose country spans zones (Russia) only gets the intersection of the windows.
    zones = zones_for("+79161234567", None)  # Moscow mobile: maps to several zones
    if len(zones) < 2:
        zones = (*zones_for("+14155550100", None), *zones_for("+12125550100", None))
    t = datetime(2026, 7, 7, 0, tzinfo=UTC)
    nxt = next_open(HOURS, zones, t)
    assert nxt is not None and is_open(HOURS, zones, nxt)
    for z in zones:
        local = nxt.astimezone(z)
        assert time(9) <= local.time() < time(20)


def test_no_hours_means_always_open() -> None:
    assert is_open(None, (), datetime(2026, 1, 1, 3, tzinfo=UTC))


ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]


@settings(max_examples=150, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
    names=st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True),
    start_h=st.integers(0, 12),
    length_h=st.integers(1, 11),
    days=st.lists(
        st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1, unique=True
    ),
)
def test_next_open_is_open_and_nothing_earlier_is(
    when: datetime, names: list[str], start_h: int, length_h: int, days: list[str]
) -> None:
    hours = CallingHours(days=days, start=time(start_h), end=time(start_h + length_h))  # type: ignore[arg-type]
    zones = tuple(zones_for("+0", n) for n in names)
    zones = tuple(z for zs in zones for z in zs)
    at = when.replace(tzinfo=UTC)
    nxt = next_open(hours, zones, at)
    if nxt is None:
        return  # windows never overlap within the horizon (e.g. opposite sides of the world)
    assert nxt >= at and is_open(hours, zones, nxt)
    # Sampled every 10 minutes before it, the window is closed.
    t = at
    while t + timedelta(minutes=10) < nxt:
        t += timedelta(minutes=10)
        assert not is_open(hours, zones, t)
