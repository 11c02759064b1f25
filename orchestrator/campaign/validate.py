"""``orchestrator campaign validate``: read what a campaign names and run every check, no dial.

The checks are pure (:mod:`handlers.campaign_check`); this module does their I/O: it reads the
contact list row by row (never whole), the DNC files and the flow names, and collects one
:class:`Report` that the CLI prints (:mod:`orchestrator.campaign.validate_print`) and the control
API returns for ``POST /v1/campaigns?dry_run=true``. Paths are the spec's own: the CLI reads what
its operator names, the control API confines the spec to ``CONTACTS_DIR`` before it gets here.
Files uploaded with a dry run come as :class:`RequestFiles`, rows the same loop checks in place
of a file's, so an upload and a file are checked alike.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from contracts.call_refs import make_call_ref
from contracts.campaign import CampaignDocument, Contact
from handlers.campaign_check import (
    ContactCheck,
    Problem,
    estimate_seconds,
    flow_problems,
    ncco_problems,
    retry_rules,
    ringing_warnings,
)
from handlers.campaign_dial import create_call_body
from handlers.template_vars import template_refs
from orchestrator.campaign.contacts import ContactFileError, iter_contacts
from orchestrator.campaign.dnc import DncList, load_dnc

__all__ = ["CampaignValidation", "Report", "RequestFiles", "validate_campaign"]

#: The call length the estimate assumes when the concurrency cap binds (stated in the output).
MEAN_CALL_S = 60.0


@dataclass
class Report:
    """Everything ``validate`` found; ``ok`` when no error (warnings do not fail it)."""

    source: str
    campaign: str
    contacts_source: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: int | None = None
    invalid: int = 0
    dnc: int = 0
    dialable: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    cps: float = 0.0
    max_concurrent: int = 0
    estimate_s: float | None = None
    retry: list[tuple[str, float, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def lines(self) -> list[str]:
        return [p.text(self.source, self.contacts_source) for p in self.problems]

    def to_json(self) -> dict[str, Any]:
        return self.model().model_dump(mode="json")

    def model(self) -> CampaignValidation:
        return CampaignValidation(
            campaign=self.campaign,
            ok=self.ok,
            errors=[
                ValidationProblem(
                    field=p.field,
                    message=p.message,
                    line=p.line,
                    row=p.row,
                    column=p.column,
                    text=p.text(self.source, self.contacts_source),
                )
                for p in self.problems
            ],
            warnings=self.warnings,
            contacts=ContactCounts(
                rows=self.rows, invalid=self.invalid, dnc=self.dnc, to_dial=self.dialable
            ),
            samples=self.samples,
            pacing=PacingEstimate(
                cps=self.cps,
                max_concurrent=self.max_concurrent,
                estimated_s=self.estimate_s,
                assumed_call_s=MEAN_CALL_S,
            ),
            retry=[
                RetryShown(disposition=d, delay_s=delay, max_attempts=n)
                for d, delay, n in self.retry
            ],
        )


class ValidationProblem(BaseModel):
    field: str
    message: str
    line: int | None = Field(None, description="Line in the campaign file.")
    row: int | None = Field(None, description="Data row of the contact list (1-based).")
    column: str | None = None
    text: str = Field(description="The error as the CLI prints it.")


class ContactCounts(BaseModel):
    rows: int | None = Field(None, description="None when the contacts come from a topic.")
    invalid: int
    dnc: int
    to_dial: int | None


class PacingEstimate(BaseModel):
    cps: float
    max_concurrent: int
    estimated_s: float | None = Field(
        None, description="First attempts only, at the CPS or the concurrency cap."
    )
    assumed_call_s: float


class RetryShown(BaseModel):
    disposition: str
    delay_s: float
    max_attempts: int = Field(description="Attempts in total, the first included.")


class CampaignValidation(BaseModel):
    """``POST /v1/campaigns?dry_run=true`` and ``campaign validate --json``: nothing dialled."""

    campaign: str
    ok: bool
    errors: list[ValidationProblem]
    warnings: list[str]
    contacts: ContactCounts
    samples: list[dict[str, Any]] = Field(
        description="Up to three rendered NCCOs (or answer URLs)."
    )
    pacing: PacingEstimate
    retry: list[RetryShown]


@dataclass(frozen=True)
class RequestFiles:
    """Contacts and DNC numbers that came with the request instead of from files the spec names.

    ``contacts`` is None when no contacts part came (the spec names its source); ``name`` is how
    a contact row's problem names its list (``contacts.csv: row 2``), the upload's file name.
    """

    contacts: Iterable[Contact] | None
    dnc: DncList
    name: str = "contacts"


def _sample(doc: CampaignDocument, contact: Contact, public_base: str) -> dict[str, Any]:
    ref = make_call_ref(doc.spec.name, "00000000", contact.index, 1)
    body = create_call_body(doc.spec, contact, ref, public_base)
    shown: dict[str, Any] = {k: body[k] for k in ("ncco", "answer_url") if k in body}
    return {"row": contact.index + 1, "number": contact.number, **shown}


def _placeholder(doc: CampaignDocument) -> Contact:
    """A contact with every variable filled, for the NCCO check when no row can be read."""
    names = {r.name: "sample" for r in template_refs(doc.spec)}
    return Contact(index=0, contact_id="0", number="+14155550100", name="sample", variables=names)


def _dnc(doc: CampaignDocument, report: Report, uploaded: DncList | None) -> DncList:
    spec = doc.spec
    for i, p in enumerate(spec.dnc):
        if not Path(p).is_file():
            report.problems.append(
                Problem(f"dnc.{i}", f"no such file: {p}", line=doc.line_of(("dnc", i)))
            )
    dnc = load_dnc([p for p in spec.dnc if Path(p).is_file()], spec.contacts.default_region)
    for file, line in dnc.rejected[:5]:
        report.warnings.append(f"{file}:{line}: not a phone number, ignored")
    if len(dnc.rejected) > 5:
        report.warnings.append(f"... and {len(dnc.rejected) - 5} more DNC lines ignored")
    if uploaded is not None:
        dnc.numbers |= uploaded.numbers
    return dnc


def validate_campaign(
    doc: CampaignDocument,
    *,
    now: datetime,
    public_base: str,
    account_cps: float,
    flow_names: Collection[str] | None,
    files: RequestFiles | None = None,
) -> Report:
    """Run every check on ``doc`` and the files it names, or on ``files`` that came with it
    (blocking I/O: call it in a thread)."""
    spec = doc.spec
    contacts = None if files is None else files.contacts
    report = Report(
        source=doc.source,
        campaign=spec.name,
        contacts_source=spec.contacts.location if files is None or contacts is None else files.name,
        cps=account_cps * spec.pacing.cps_share,
        max_concurrent=spec.pacing.max_concurrent,
        retry=retry_rules(spec),
    )
    report.problems += flow_problems(doc, flow_names)
    report.warnings += ringing_warnings(spec)
    if spec.flow.name is not None and flow_names is None:
        report.warnings.append(
            "flow names not checked: give --flows DIR (the ingress's flows, ORCHESTRATOR_FLOWS)"
        )
    dnc = _dnc(doc, report, None if files is None else files.dnc)
    if contacts is None and spec.contacts.kind not in ("csv", "jsonl"):
        report.warnings.append(
            f"contacts come from {spec.contacts.kind} {spec.contacts.location!r}: rows are "
            "checked as the controller reads them"
        )
        report.problems += ncco_problems(doc, _placeholder(doc), public_base)
        return report
    check = ContactCheck(doc, now, dnc)
    try:
        for contact in iter_contacts(spec.contacts) if contacts is None else contacts:
            check.add(contact)
    except FileNotFoundError:
        report.problems.append(
            Problem(
                f"contacts.{spec.contacts.kind}",
                f"no such file: {spec.contacts.location}",
                line=doc.line_of(("contacts", spec.contacts.kind)),
            )
        )
        return report
    except ContactFileError as err:
        report.problems.append(
            Problem(
                f"contacts.{spec.contacts.kind}",
                str(err),
                line=doc.line_of(("contacts", spec.contacts.kind)),
            )
        )
        return report
    if check.samples:
        report.problems += ncco_problems(doc, check.samples[0], public_base)
    report.problems += check.problems()
    report.rows, report.invalid, report.dnc = check.rows, check.invalid, check.in_dnc
    report.dialable = check.dialable
    report.samples = [_sample(doc, c, public_base) for c in check.samples]
    report.estimate_s = estimate_seconds(
        check.dialable, report.cps, spec.pacing.max_concurrent, MEAN_CALL_S
    )
    return report
