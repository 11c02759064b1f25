"""``campaign validate``'s checks: every mistake an operator can make, found before a dial.

Pure: the campaign document, its contacts (one at a time, so a list of any size costs the same),
the DNC numbers, the known flow names and ``now`` come in; :class:`Problem` records go out, each
naming the campaign file's line and field, or the contact row and column. Reading files and
printing is ``orchestrator.campaign.validate``'s job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Container
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from contracts._base import error_text
from contracts.campaign import CampaignDocument, CampaignSpec, Contact
from contracts.ncco import ACTION_MODELS
from contracts.suggest import did_you_mean
from contracts.voice_api import CreateCallRequest
from handlers.calling_hours import next_open, zones_for
from handlers.campaign_dial import create_call_body
from handlers.template_vars import ALWAYS_KNOWN, TemplateRef, template_refs, unsatisfied

__all__ = [
    "ContactCheck",
    "Problem",
    "estimate_seconds",
    "field_name",
    "flow_problems",
    "ncco_problems",
    "retry_rules",
]

#: Rows named per kind of mistake; the rest are counted.
EXAMPLES = 5
_ACTION_FIELDS = {m.model_fields["action"].default: list(m.model_fields) for m in ACTION_MODELS}


@dataclass(frozen=True)
class Problem:
    """One mistake: where (file line and field, or contact row and column) and what."""

    field: str
    message: str
    line: int | None = None
    row: int | None = None  # 1-based data row of the contact list
    column: str | None = None
    severity: Literal["error", "warning"] = "error"

    def text(self, source: str, contacts: str) -> str:
        if self.row is not None:
            where = f"{contacts}: row {self.row}" + (
                f", column {self.column}" if self.column else ""
            )
            if self.field == self.column:
                return f"{where}: {self.message}"
        else:
            where = f"{source}:{self.line or '?'}"
        return f"{where}: {self.field}: {self.message}"


def field_name(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


# --- The flow --------------------------------------------------------------------------------


def flow_problems(doc: CampaignDocument, known_flows: Collection[str] | None) -> list[Problem]:
    """A named flow the ingress does not have (``None``: the flows are unknown here)."""
    name = doc.spec.flow.name
    if name is None or known_flows is None or name in known_flows:
        return []
    hint = did_you_mean(name, known_flows) or (
        f"; known: {', '.join(sorted(known_flows))}" if known_flows else "; no flows are loaded"
    )
    return [
        Problem(
            "flow.name",
            f"no flow named {name!r}{hint}",
            line=doc.line_of(("flow", "name")),
        )
    ]


def _ncco_path(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], str | None]:
    """The campaign-file path of a CreateCallRequest error in ``ncco``, and the action kind."""
    # The discriminator's tag (``talk`` in ``ncco.0.talk.text``) is not in the file.
    if len(loc) >= 3 and isinstance(loc[1], int) and loc[2] in _ACTION_FIELDS:
        return ("flow", "ncco", loc[1], *loc[3:]), loc[2]
    return ("flow", *loc), None


def ncco_problems(doc: CampaignDocument, sample: Contact, public_base: str) -> list[Problem]:
    """The create-call request rendered for ``sample``, checked as Vonage would check it.

    Errors are mapped back to the NCCO in the file (``flow.ncco.1.dtmf.maxDigits``, its line),
    instead of ``flow: 2 validation errors for CreateCallRequest``.
    """
    spec = doc.spec
    body = create_call_body(spec, sample, "validate-0000", public_base)
    try:
        CreateCallRequest.model_validate(body)
    except ValidationError as err:
        out = []
        for e in err.errors(include_url=False, include_input=False):
            loc = tuple(e["loc"])
            if loc[:1] != ("ncco",):
                out.append(Problem(field_name(("flow", *loc)), error_text(e)))
                continue
            path, kind = _ncco_path(loc)
            msg = error_text(e)
            if e.get("type") == "extra_forbidden" and kind is not None:
                msg = "unknown field" + did_you_mean(str(path[-1]), _ACTION_FIELDS[kind])
            elif e.get("type") == "union_tag_invalid":
                given = str((e.get("ctx") or {}).get("tag", ""))
                msg = f"unknown action {given!r}" + did_you_mean(given, _ACTION_FIELDS)
                path = (*path, "action")
            out.append(Problem(field_name(path), msg, line=doc.line_of(path)))
        return out
    return []


# --- The contacts ----------------------------------------------------------------------------


@dataclass
class _Examples:
    count: int = 0
    rows: list[tuple[int, str]] = field(default_factory=list)  # (row, detail)

    def add(self, row: int, detail: str) -> None:
        self.count += 1
        if len(self.rows) < EXAMPLES:
            self.rows.append((row, detail))


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass
class ContactCheck:
    """Feed it every contact (:meth:`add`); then :meth:`problems` and the counts.

    Memory holds a few example rows per kind of mistake, the column names and three samples,
    never the list.
    """

    doc: CampaignDocument
    now: datetime
    dnc: Container[str] = frozenset()
    rows: int = 0
    invalid: int = 0
    in_dnc: int = 0
    samples: list[Contact] = field(default_factory=list)
    columns: set[str] = field(default_factory=set)
    _refs: list[TemplateRef] = field(default_factory=list)
    _missing: dict[str, _Examples] = field(default_factory=lambda: defaultdict(_Examples))
    _bad_zone: _Examples = field(default_factory=_Examples)
    _no_hours: _Examples = field(default_factory=_Examples)
    _hours_cache: dict[tuple[ZoneInfo, ...], datetime | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._refs = template_refs(self.doc.spec)

    @property
    def spec(self) -> CampaignSpec:
        return self.doc.spec

    @property
    def dialable(self) -> int:
        return self.rows - self.invalid - self.in_dnc

    def add(self, contact: Contact) -> None:
        self.rows += 1
        row = contact.index + 1
        self.columns.update(contact.variables)
        if contact.name is not None:
            self.columns.add("name")
        if not contact.valid:
            self.invalid += 1
            return
        if contact.number in self.dnc:
            self.in_dnc += 1
            return
        # Only contacts that will be dialled can go wrong on a call.
        for ref in unsatisfied(self.spec, contact, self._refs):
            self._missing[ref.name].add(row, field_name(ref.path))
        if contact.timezone is not None and not _zone_ok(contact.timezone):
            self._bad_zone.add(row, contact.timezone)
        if not self._hours_can_be_met(contact):
            self._no_hours.add(row, contact.number)
        if len(self.samples) < 3:
            self.samples.append(contact)

    def _hours_can_be_met(self, contact: Contact) -> bool:
        hours = self.spec.calling_hours
        if hours is None:
            return True
        zones = zones_for(
            contact.number,
            contact.timezone if contact.timezone and _zone_ok(contact.timezone) else None,
            hours.fallback_timezone,
        )
        if zones not in self._hours_cache:
            begin = max(self.now, self.spec.start_at or self.now)
            self._hours_cache[zones] = next_open(hours, zones, begin)
        opens = self._hours_cache[zones]
        stop = self.spec.stop_at
        return opens is not None and (stop is None or opens < stop)

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        known = self.columns | ALWAYS_KNOWN
        for name, ex in sorted(self._missing.items()):
            out.extend(self._missing_problems(name, ex, known))
        for row, zone in self._bad_zone.rows:
            hint = did_you_mean(zone, _COMMON_ZONES)
            out.append(
                Problem("timezone", f"unknown time zone {zone!r}{hint}", row=row, column="timezone")
            )
        out += self._more(self._bad_zone, "timezone", "unknown time zones")
        hours = self.spec.calling_hours
        for row, number in self._no_hours.rows:
            out.append(
                Problem(
                    "calling_hours",
                    f"{number}: calling hours ({_hours_text(hours)}, recipient's local time) "
                    + (
                        "never open before stop_at"
                        if self.spec.stop_at is not None
                        else "never open in any zone of this number at once"
                    ),
                    line=self.doc.line_of(("calling_hours",)),
                    row=row,
                )
            )
        out += self._more(self._no_hours, "calling_hours", "contacts that cannot be called")
        return out

    def _missing_problems(self, name: str, ex: _Examples, known: set[str]) -> list[Problem]:
        where = ex.rows[0][1]
        path = tuple(int(p) if p.isdigit() else p for p in where.split("."))
        line = self.doc.line_of(path)
        if ex.count == self.dialable and name not in known:
            cols = ", ".join(sorted(known))
            return [
                Problem(
                    where,
                    f"{{{{{name}}}}} is not a contact column{did_you_mean(name, known)} "
                    f"(columns: {cols}); it would be spoken as a blank in all {ex.count} rows",
                    line=line,
                )
            ]
        out = [
            Problem(
                where,
                f"{{{{{name}}}}} is empty in this row (give a value, or a default in "
                "flow.variables)",
                row=row,
                column=name,
            )
            for row, _ in ex.rows
        ]
        return out + self._more(ex, where, f"rows without {name}")

    @staticmethod
    def _more(ex: _Examples, where: str, what: str) -> list[Problem]:
        extra = ex.count - len(ex.rows)
        return [Problem(where, f"... and {extra} more {what}")] if extra > 0 else []


def _hours_text(hours: Any) -> str:
    return f"{','.join(hours.days)} {hours.start:%H:%M}-{hours.end:%H:%M}"


#: Suggestions for a misspelt zone (the whole tz database is too noisy to suggest from).
_COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Australia/Sydney",
)


# --- Pacing and retries ---------------------------------------------------------------------

#: The US abandonment safe harbour (FTC TSR, FCC TCPA rules) also asks a dialer to let an
#: unanswered call ring at least 15 s or four rings before it hangs up.
SAFE_HARBOUR_RING_S = 15


def ringing_warnings(spec: CampaignSpec) -> list[str]:
    """A ringing timer under the safe harbour's minimum in a campaign that may abandon callers.
    A warning, not a problem: the rule is one country's, and outside telemarketing it is moot."""
    if spec.mode == "agentless" or spec.ringing_timer >= SAFE_HARBOUR_RING_S:
        return []
    return [
        f"ringing_timer: {spec.ringing_timer} s hangs up unanswered calls before "
        f"{SAFE_HARBOUR_RING_S} s; the US abandonment safe harbour asks for at least "
        f"{SAFE_HARBOUR_RING_S} s or four rings"
    ]


def retry_rules(spec: CampaignSpec) -> list[tuple[str, float, int]]:
    """(disposition class, delay in seconds, attempts in total) as the campaign will apply them,
    defaults included: the operator sees what a timeout costs before the first dial."""
    policy = spec.retry
    return [
        (name, rule.delay, rule.max_attempts)
        for name in type(policy).model_fields
        if (rule := policy.rule(name)) is not None
        and (name != "abandoned" or spec.mode != "agentless")  # only agent campaigns abandon
    ]


def estimate_seconds(
    dials: int, cps: float, max_concurrent: int, mean_call_s: float = 60.0
) -> float:
    """The time ``dials`` first attempts take at ``cps``, or at ``max_concurrent`` calls of
    ``mean_call_s`` each when that binds first (retries and calling hours come on top)."""
    rate = min(cps, max_concurrent / mean_call_s) if mean_call_s > 0 else cps
    return dials / rate if rate > 0 else float("inf")
