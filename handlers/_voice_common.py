"""Shared pieces of the voice machines: the one exception type, timestamps, merge rules.

The voice machines keep their state as plain JSON-ready dicts (the worker writes them to the
``voice.state`` changelog as they are, and the control API serves them), and every update is a
*join*: merging the same fact twice, or two facts in either order, gives the same dict. The helpers
here are those joins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "EPOCH",
    "InvalidEvent",
    "canon_ts",
    "capped_put",
    "merge_field",
    "min_ts",
    "opt_str",
    "req_str",
    "sort_key",
]


class InvalidEvent(ValueError):
    """An event the voice machines cannot apply (missing leg id, wrong types, unknown kind).

    This is the only exception :func:`handlers.voice.transition` raises for bad input; the worker
    sends the record to ``voice.dlq`` with reason ``invalid_event`` and carries on.
    """


EPOCH = "1970-01-01T00:00:00.000Z"


def canon_ts(value: Any) -> str | None:
    """A timestamp as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC), so that strings compare like times.

    Vonage sends ISO 8601 with milliseconds and ``Z`` (kept as is, the fast path) or
    ``YYYY-MM-DD HH:MM:SS``; our envelopes carry pydantic's ISO form. Anything unparsable is None.
    """
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 24 and value[10] == "T" and value[19] == "." and value[23] == "Z":
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def min_ts(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def sort_key(value: Any) -> tuple[str, str]:
    """Total order over mixed field values (ties between different values of one priority)."""
    return (type(value).__name__, str(value))


def merge_field(fields: dict[str, list[Any]], name: str, prio: int, value: Any) -> bool:
    """Join ``value`` (from a source of priority ``prio``) into ``fields[name]`` in place.

    The winner is the highest ``(prio, value)``: commutative, associative and idempotent, so the
    result does not depend on the order the facts arrived in. Returns True when it changed.
    """
    if value is None:
        return False
    cur = fields.get(name)
    if cur is not None:
        cur_prio, cur_val = cur
        if prio < cur_prio or (prio == cur_prio and sort_key(value) <= sort_key(cur_val)):
            return False
    fields[name] = [prio, value]
    return True


def capped_put(mapping: dict[str, Any], key: str, value: Any, cap: int) -> dict[str, Any]:
    """Insert into a copy of ``mapping`` keeping at most ``cap`` entries: the ``cap`` smallest keys.

    Keeping the smallest keys (not the first arrivals) keeps the result order-insensitive.
    """
    if key in mapping:
        return mapping
    out = dict(mapping)
    out[key] = value
    if len(out) > cap:
        del out[max(out)]
    return out


def req_str(d: Any, name: str, what: str) -> str:
    value = d.get(name) if isinstance(d, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{what}: {name} is required (non-empty string)")
    return value


def opt_str(d: dict[str, Any], name: str) -> str | None:
    value = d.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidEvent(f"{name}: expected a string, got {type(value).__name__}")
