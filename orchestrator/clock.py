"""The product's one clock helper: the time now, in UTC, as an aware datetime.

Records carry aware UTC datetimes (``occurred_at``, ``received_at``); every role that stamps one
reads the time here. The pure layers never read a clock at all (``handlers`` and ``contracts``
are given the time as an argument), and intervals are measured on the event loop's monotonic
clock, never on this one.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)
