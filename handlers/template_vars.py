"""Which ``{{variables}}`` a campaign's flow uses, and which of them a contact leaves blank.

The renderer (:func:`handlers.campaign_dial.render_template`) speaks an unknown name as nothing,
so a typo (``{{firstname}}`` for the column ``first_name``) only shows on a live call. Validation
asks this module instead. A reference is satisfied by the contact's own non-empty value or by a
declared default: ``flow.variables``, a ``defaults:`` map, or an inline ``{{name|default}}``.
:func:`unsatisfied` is the single place that decides, so a new way to declare a default is
added there and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.campaign import CampaignSpec, Contact

__all__ = ["ALWAYS_KNOWN", "TemplateRef", "template_refs", "unsatisfied"]

#: ``{{name}}``, and ``{{name|default}}`` (a default, possibly empty, counts as satisfied).
_REF = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\|[^{}]*)?\}\}")
#: Filled for every contact by the renderer (``template_values``).
ALWAYS_KNOWN = frozenset({"number", "contact_id"})

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class TemplateRef:
    name: str
    path: Path  # where in the campaign file: ("flow", "ncco", 0, "text")
    has_default: bool


def _walk(value: Any, path: Path) -> Iterator[TemplateRef]:
    if isinstance(value, str):
        for m in _REF.finditer(value):
            yield TemplateRef(m.group(1), path, m.group(2) is not None)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, str(k)))


def template_refs(spec: CampaignSpec) -> list[TemplateRef]:
    """Every reference in what is rendered per contact: the inline NCCO and the machine message.

    A named flow declares its variables with defaults itself (``contracts.flow``), and an
    answer URL is someone else's, so neither has references to check here.
    """
    refs = list(_walk(spec.flow.ncco or [], ("flow", "ncco")))
    refs += _walk(spec.machine_detection.message or "", ("machine_detection", "message"))
    return refs


def _declared_defaults(spec: CampaignSpec) -> Mapping[str, Any]:
    defaults: dict[str, Any] = dict(spec.flow.variables)
    # A ``defaults:`` map beside ``variables:`` (proposed in issue 14) is honoured once it exists.
    defaults.update(getattr(spec.flow, "defaults", None) or {})
    return defaults


def unsatisfied(spec: CampaignSpec, contact: Contact, refs: list[TemplateRef]) -> list[TemplateRef]:
    """The references of ``refs`` that would render blank for ``contact``."""
    defaults = _declared_defaults(spec)
    out = []
    for ref in refs:
        if ref.has_default or ref.name in ALWAYS_KNOWN or ref.name in defaults:
            continue
        value = contact.name if ref.name == "name" else contact.variables.get(ref.name)
        if value is None or not str(value).strip():
            out.append(ref)
    return out
