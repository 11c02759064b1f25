"""Calling hours in the recipient's local time: may we dial now, and if not, when next?

The zone is the contact's own ``timezone`` when given; otherwise the zones phonenumbers maps the
number to (a country, or an area code in large countries). When a number maps to several zones
the window must be open in all of them, so a call is never placed outside hours in any zone the
recipient might be in. (A mobile of a country spanning many zones, such as Russia, whose windows
could never all be open, uses its prefix's geographic zones instead; put a ``timezone`` column in
the contact list to be exact.) Pure: the time is always passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from contracts.campaign import CallingHours

__all__ = ["is_open", "next_open", "zones_for"]

_UNKNOWN = "Etc/Unknown"
#: More zones than this for one number and their common window is usually empty.
_MAX_ZONES = 4


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=4096)
def _number_zones(number: str) -> tuple[str, ...]:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    names = tuple(n for n in pn_timezone.time_zones_for_number(parsed) if n != _UNKNOWN)
    if not names or len(names) > _MAX_ZONES:
        # Unallocated ranges (test numbers) and mobiles of countries spanning many zones: the
        # zones of the number's geographic prefix (e.g. Europe/Moscow for +7 916 ...).
        geo = pn_timezone.time_zones_for_geographical_number(parsed)
        geo_names = tuple(n for n in geo if n != _UNKNOWN)
        if geo_names and (not names or len(geo_names) < len(names)):
            names = geo_names
    return names


def zones_for(
    number: str, contact_tz: str | None, fallback_tz: str | None = None
) -> tuple[ZoneInfo, ...]:
    """The zones whose local time governs calling ``number`` (never empty: UTC at worst)."""
    if contact_tz and (z := _zone(contact_tz)) is not None:
        return (z,)
    zones = tuple(z for n in _number_zones(number) if (z := _zone(n)) is not None)
    if zones:
        return zones
    if fallback_tz and (z := _zone(fallback_tz)) is not None:
        return (z,)
    return (ZoneInfo("UTC"),)


def _open_in(hours: CallingHours, zone: ZoneInfo, at: datetime) -> bool:
    local = at.astimezone(zone)
    return local.weekday() in hours.weekdays and hours.start <= local.time() < hours.end


def is_open(hours: CallingHours | None, zones: tuple[ZoneInfo, ...], at: datetime) -> bool:
    """True when ``at`` is inside the window in every zone (``hours=None`` means always)."""
    if hours is None:
        return True
    return all(_open_in(hours, z, at) for z in zones)


def next_open(
    hours: CallingHours | None, zones: tuple[ZoneInfo, ...], at: datetime, horizon_days: int = 9
) -> datetime | None:
    """The earliest instant >= ``at`` when :func:`is_open` holds, or None within the horizon.

    The intersection of the zones' windows starts at ``at`` itself or at one window's opening
    time, so only those candidates need checking.
    """
    if is_open(hours, zones, at):
        return at
    assert hours is not None
    candidates: list[datetime] = []
    for zone in zones:
        local_day = at.astimezone(zone).date()
        for d in range(horizon_days):
            day = local_day + timedelta(days=d)
            if day.weekday() not in hours.weekdays:
                continue
            opening = datetime.combine(day, hours.start, tzinfo=zone).astimezone(UTC)
            if opening >= at:
                candidates.append(opening)
    for c in sorted(candidates):
        if is_open(hours, zones, c):
            return c
    return None
