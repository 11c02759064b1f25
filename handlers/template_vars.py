"""Which template variables a campaign uses, and which of them a contact leaves without a value.

A ``{{variable}}`` nobody fills is spoken as silence in the middle of a sentence ("Hi , this is
..."), so it is either a declared default or an error: ``campaign validate`` lists the missing
ones per contact (with where in the file each is used) before anything is dialled, and the
campaign machine refuses to dial a contact that still has one (it is final as ``failed``, detail
``missing_variables: ...``). Both ask :func:`contact_values`, the renderer's own values, so what
validation accepts is exactly what will be spoken.

Defaults are declared in maps, not inline: ``flow.variables`` in the campaign file, and the
``variables:`` of a named flow (a ``null`` there declares the variable without a default). One
place per flow to read every default, and the ``{{name}}`` syntax stays the same everywhere
(templates, branches, the simulator, other services' documents).

An empty cell counts as missing: a contact list with a blank column is the common way to be
missing a value, and it falls back to the default like an absent column does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.campaign import CampaignSpec, Contact
from contracts.flow import TEMPLATE, Flow, template_names

__all__ = [
    "ALWAYS_KNOWN",
    "TemplateRef",
    "contact_values",
    "missing_variables",
    "spec_variables",
    "template_refs",
    "unsatisfied",
]

#: Filled from the contact itself whatever its columns.
ALWAYS_KNOWN = frozenset({"number", "contact_id"})

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class TemplateRef:
    """One ``{{name}}`` and where in the campaign file it is: ``("flow", "ncco", 0, "text")``."""

    name: str
    path: Path


def spec_variables(spec: CampaignSpec, flow: Flow | None = None) -> set[str]:
    """Every variable the campaign's templates use.

    An inline NCCO, the voicemail message and an agent campaign's abandon message are the
    campaign's own templates. A named flow's
    are in the flow (``flow``, when the caller has the flows loaded; without it only the
    voicemail message is known): its declared variables that its steps use.
    """
    used = set(template_names(spec.machine_detection.message or ""))
    if spec.agents is not None and spec.agents.abandon_message:
        used.update(template_names(spec.agents.abandon_message))
    if spec.flow.ncco is not None:
        used.update(template_names(spec.flow.ncco))
    if flow is not None:
        for step in flow.steps.values():
            used.update(v for v in template_names(step.model_dump()) if v in flow.variables)
    return used


def contact_values(spec: CampaignSpec, contact: Contact) -> dict[str, str]:
    """A contact's template values: the campaign's defaults, then the contact's non-empty columns,
    then its name, number and id."""
    values = {k: str(v) for k, v in spec.flow.variables.items() if str(v) != ""}
    values.update({k: v for k, v in contact.variables.items() if v != ""})
    if contact.name:
        values["name"] = contact.name
    values["number"] = contact.number
    values["contact_id"] = contact.contact_id
    return values


def missing_variables(
    spec: CampaignSpec,
    contact: Contact,
    flow: Flow | None = None,
    used: set[str] | None = None,
) -> list[str]:
    """The variables ``spec`` uses that neither ``contact`` nor a declared default fills (sorted).

    ``used`` is :func:`spec_variables` computed once for a whole list (it does not depend on
    the contact).
    """
    names = spec_variables(spec, flow) if used is None else used
    have: Mapping[str, str] = contact_values(spec, contact)
    defaults = (
        {k for k, v in flow.variables.items() if v is not None and str(v) != ""}
        if flow is not None
        else set()
    )
    return sorted(n for n in names if n not in have and n not in defaults | ALWAYS_KNOWN)


def _walk(value: Any, path: Path) -> Iterator[TemplateRef]:
    if isinstance(value, str):
        for m in TEMPLATE.finditer(value):
            yield TemplateRef(m.group(1), path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, str(k)))


def template_refs(spec: CampaignSpec) -> list[TemplateRef]:
    """Every reference in what is rendered per contact, with its place in the file: the inline
    NCCO and the machine message (a named flow's variables are checked by
    :func:`missing_variables` with the flow loaded)."""
    refs = list(_walk(spec.flow.ncco or [], ("flow", "ncco")))
    refs += _walk(spec.machine_detection.message or "", ("machine_detection", "message"))
    return refs


def unsatisfied(spec: CampaignSpec, contact: Contact, refs: list[TemplateRef]) -> list[TemplateRef]:
    """The references of ``refs`` that would render blank for ``contact``."""
    have = contact_values(spec, contact)
    return [ref for ref in refs if ref.name not in have]
