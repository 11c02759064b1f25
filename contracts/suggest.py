""" "Did you mean" hints: one wording and one closeness rule for every misspelt name.

A typo in a setting, a campaign field, a flow name or a template variable should point at the
name that was meant, and they should all read alike, so they share this helper.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

__all__ = ["did_you_mean", "model_fields_at"]


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``"; did you mean X?"`` for the closest choice, or ``""`` when none is close.

    Case and ``-``/``_`` are ignored when comparing (``firstname`` finds ``first_name``), and the
    choice is named as it is spelt.
    """
    spelt = {_fold(c): c for c in sorted(set(choices))}
    if not spelt:
        return ""
    close = difflib.get_close_matches(_fold(word), list(spelt), n=1, cutoff=cutoff)
    return f"; did you mean {spelt[close[0]]}?" if close else ""


def _fold(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def model_fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names (wire aliases) a mapping at ``loc`` inside ``model`` may have.

    Follows nested models and ``X | None``; an empty list when ``loc`` leads anywhere else (a
    free-form dict, a list of raw NCCO actions), where no name is wrong.
    """
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            return []
        by_wire = {(f.alias or n): f for n, f in fields.items()}
        field = by_wire.get(part) or fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return [] if fields is None else [(f.alias or n) for n, f in fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
