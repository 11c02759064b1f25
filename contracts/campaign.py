"""Campaign contracts: the campaign file, a contact, control messages and the final per-contact result.

The campaign file is YAML written by people, so every error names the line and the field
(``demo.yaml:12: pacing.max_concurrent: must be >= 1``) instead of a pydantic dump. The records on
``campaign.control``, ``campaign.state`` and ``campaign.results`` are defined here so other services
can code against their JSON Schemas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from contracts._base import AwareTime, error_text
from contracts.agents import AgentNeed, check_labels
from contracts.bounded import BoundedSafeLoader
from contracts.envelopes import stable_id
from contracts.suggest import did_you_mean, model_fields_at

__all__ = [
    "AGENT_PRELUDE_ACTIONS",
    "CAMPAIGN_NAME_PATTERN",
    "AgentProgress",
    "AgentsSpec",
    "CallerIds",
    "CallingHours",
    "CampaignControl",
    "CampaignDocument",
    "CampaignFileError",
    "CampaignProgress",
    "CampaignSpec",
    "CampaignStatus",
    "CampaignTick",
    "Contact",
    "ContactResult",
    "ContactRow",
    "ContactsSource",
    "ControlAction",
    "DialingMode",
    "Disposition",
    "FlowSpec",
    "MachineDetection",
    "Pacing",
    "RetryPolicy",
    "RetryRule",
    "TopicSlice",
    "campaign_lines",
    "contact_columns",
    "load_campaign_document",
    "load_campaign_file",
    "parse_campaign_document",
    "parse_campaign_yaml",
    "parse_duration",
]

#: Campaign names appear in call_refs and URL paths, so they are kept URL-path-safe and short.
CAMPAIGN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$"

#: Kafka's own rule for topic names (a client asked for another waits on metadata in vain).
TOPIC_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"`` or ``"250ms"``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 5m or 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError("must be a duration like 30s, 5m or 2h")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


#: In JSON Schema a duration is a number of seconds or a string like ``90s`` (what people write in
#: the file), so an editor validating the YAML against the exported schema accepts both.
_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ],
    "description": "Seconds, or a duration such as 250ms, 90s, 5m, 2h or 1d.",
}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- The campaign file -----------------------------------------------------------------------


class TopicSlice(_Model):
    """The records one upload wrote: offsets ``[begin, end)`` of one partition, under one key.

    An upload writes all its records to one partition, so they keep the file's order. Another
    upload may interleave in the same range; a reader keeps only the records with this key.
    """

    topic: str = Field(pattern=TOPIC_NAME_PATTERN)
    partition: int = Field(ge=0)
    begin: int = Field(ge=0)
    end: int = Field(ge=0)
    key: str = Field(min_length=1, max_length=200)
    rows: int = Field(0, ge=0, description="Records written under the key.")

    @model_validator(mode="after")
    def _order(self) -> TopicSlice:
        if self.end < self.begin:
            raise ValueError("end must not be before begin")
        return self


class ContactsSource(_Model):
    """Where contacts come from: exactly one of a CSV file, a JSONL file, a topic or an upload.

    ``upload`` is filled in by the control API when the contacts come with the request
    (``multipart/form-data``): the rows were written to ``campaign.uploads`` first.
    """

    csv: str | None = None
    jsonl: str | None = None
    topic: str | None = Field(None, pattern=TOPIC_NAME_PATTERN)
    upload: TopicSlice | None = None
    default_region: str = Field(
        "US", description="Region for numbers written without +country code (ISO 3166 alpha-2)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ContactsSource:
        given = [k for k in ("csv", "jsonl", "topic", "upload") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of csv, jsonl or topic (or upload the file)")
        return self

    @property
    def kind(self) -> Literal["csv", "jsonl", "topic", "upload"]:
        if self.csv:
            return "csv"
        if self.jsonl:
            return "jsonl"
        return "upload" if self.upload is not None else "topic"

    @property
    def location(self) -> str:
        if self.upload is not None:
            return self.upload.topic
        return self.csv or self.jsonl or self.topic or ""


class CallerIds(_Model):
    """Caller ids: a list of our numbers (used round-robin per contact), or Vonage's random pick."""

    numbers: list[str] = Field(default_factory=list)
    random_from_number: bool = False

    @model_validator(mode="after")
    def _one(self) -> CallerIds:
        if bool(self.numbers) == self.random_from_number:
            raise ValueError("give either numbers or random_from_number: true (not both)")
        for n in self.numbers:
            if not re.fullmatch(r"\+?\d{7,15}", n):
                raise ValueError(f"caller id {n!r} is not a phone number (7-15 digits)")
        return self


class FlowSpec(_Model):
    """What the callee hears: an NCCO template, a named declarative flow, or an answer URL.

    Strings in an NCCO template may use ``{{name}}``, ``{{number}}`` and ``{{var}}`` for any
    contact variable (the same syntax as declarative flows). Actions that send webhooks (input,
    notify, record, connect) get our per-call ``eventUrl``, so every webhook of the call carries
    its call_ref in the path. A named flow is rendered by the ingress from the answer webhook.
    """

    ncco: list[dict[str, Any]] | None = None
    name: str | None = Field(None, description="A declarative flow known to the ingress.")
    variables: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Defaults for template/flow variables."
    )
    answer_url: str | None = None

    @model_validator(mode="after")
    def _one(self) -> FlowSpec:
        given = [k for k in ("ncco", "name", "answer_url") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of ncco, name or answer_url")
        if self.ncco is not None and not self.ncco:
            raise ValueError("ncco must have at least one action")
        for i, action in enumerate(self.ncco or []):
            if "action" not in action:
                raise ValueError(f"ncco[{i}] has no 'action'")
        if self.answer_url is not None and "://" not in self.answer_url:
            raise ValueError("answer_url must be an absolute URL")
        return self


class Pacing(_Model):
    cps_share: float = Field(1.0, gt=0, le=1, description="Share of the account CPS to use.")
    max_concurrent: int = Field(10, ge=1, le=100_000, description="Calls in flight at most.")


class MachineDetection(_Model):
    mode: Literal["off", "standard", "advanced"] = "off"
    on_machine: Literal["hangup", "leave_message"] = "hangup"
    message: str | None = Field(None, description="Spoken after the beep (leave_message).")
    beep_timeout: int = Field(45, ge=45, le=120)

    @model_validator(mode="after")
    def _message(self) -> MachineDetection:
        if self.on_machine == "leave_message" and not self.message:
            raise ValueError("on_machine: leave_message needs a message")
        return self


class RetryRule(_Model):
    delay: Seconds = Field(300.0, description="Wait after the failed attempt (30s, 5m, 2h).")
    max_attempts: int = Field(1, ge=1, le=20, description="Attempts in total, the first included.")


def _no_retry() -> RetryRule:
    return RetryRule(delay=0.0, max_attempts=1)


class RetryPolicy(_Model):
    """Per disposition class; a contact's attempts are counted across all classes."""

    busy: RetryRule = Field(default_factory=lambda: RetryRule(delay=600.0, max_attempts=3))
    unanswered: RetryRule = Field(default_factory=lambda: RetryRule(delay=1800.0, max_attempts=3))
    timeout: RetryRule = Field(default_factory=lambda: RetryRule(delay=1800.0, max_attempts=3))
    failed: RetryRule = Field(default_factory=_no_retry)
    machine: RetryRule = Field(default_factory=_no_retry)
    abandoned: RetryRule = Field(
        default_factory=lambda: RetryRule(delay=3600.0, max_attempts=2),
        description="Agent campaigns: a person answered and no agent was free in time.",
    )

    def rule(self, retry_class: str) -> RetryRule | None:
        return getattr(self, retry_class, None) if retry_class in _RETRY_CLASSES else None


class AgentsSpec(_Model):
    """Who takes the answered calls of a progressive or predictive campaign, and the abandon rules.

    A call answered by a person who finds no agent within ``connect_within`` is abandoned: the
    callee hears ``abandon_message``. Telemarketing rules (FCC/TSR, Ofcom) cap abandoned calls at
    3 % of live answers and want that message to say who called and give a number to call back,
    so predictive campaigns must have one; predictive pacing keeps the rate under
    ``abandon_cap`` over the last ``abandon_window``.
    """

    group: str | None = Field(None, description="Only agents in this group take the calls.")
    skills: list[str] = Field(default_factory=list, description="Agents need all of these.")
    ratio: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Progressive: dials per free agent (and before predictive has learned enough).",
    )
    connect_within: Seconds = Field(
        2.0, description="A live answer with no agent by then is abandoned (rules: 2 s)."
    )
    abandon_cap: float = Field(
        0.03,
        ge=0,
        le=0.1,
        description="Predictive: abandoned / live answers, at most (0.03 = 3 %).",
    )
    abandon_window: Seconds = Field(
        3600.0, description="The rolling window the abandon rate is measured over (1m to 24h)."
    )
    abandon_message: str | None = Field(
        None,
        description="Spoken to an abandoned callee: caller identity and a call-back number "
        "(required for predictive).",
    )

    @field_validator("group")
    @classmethod
    def _group(cls, v: str | None) -> str | None:
        if v is not None:
            check_labels([v], "groups")
        return v

    @field_validator("skills")
    @classmethod
    def _skills(cls, v: list[str]) -> list[str]:
        return check_labels(v, "skills")

    @field_validator("connect_within")
    @classmethod
    def _connect_within(cls, v: float) -> float:
        if not 0.5 <= v <= 60:
            raise ValueError("must be between 0.5s and 60s")
        return v

    @field_validator("abandon_window")
    @classmethod
    def _window(cls, v: float) -> float:
        if not 60 <= v <= 86400:
            raise ValueError("must be between 1m and 24h")
        return v

    @field_validator("abandon_message")
    @classmethod
    def _message(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be blank: say who called and a number to call back")
        if v is not None and len(v) > 1500:
            raise ValueError("must have at most 1500 characters (spoken with talk)")
        return v

    @property
    def need(self) -> AgentNeed:
        return AgentNeed(group=self.group, skills=self.skills)


DialingMode = Literal["agentless", "progressive", "predictive"]


_RETRY_CLASSES = frozenset({"busy", "unanswered", "timeout", "failed", "machine", "abandoned"})
#: What an agent campaign's flow may play before the callee joins their agent's conversation.
AGENT_PRELUDE_ACTIONS = frozenset({"talk", "stream"})
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 09:00 as sexagesimal 540; undo that.
        return time(value // 60, value % 60) if 0 <= value < 24 * 60 else value
    if isinstance(value, str) and value.strip() in {"24:00", "24:00:00"}:
        return time(23, 59, 59, 999999)
    return value


class CallingHours(_Model):
    """When calls may be placed, in the recipient's local time.

    The zone is the contact's ``timezone``, else the zones of the number's country/area (via
    phonenumbers). A number that maps to several zones may only be called when the window is
    open in every one of them: the conservative reading of calling-hours rules.
    """

    days: list[Day] = Field(default_factory=lambda: list(_DAYS))
    start: Annotated[time, BeforeValidator(_clock)] = time(9, 0)
    end: Annotated[time, BeforeValidator(_clock)] = time(20, 0)
    fallback_timezone: str | None = Field(
        None, description="Used when neither the contact nor the number gives a zone."
    )

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one day")
        return v

    @field_validator("fallback_timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            _check_zone(v)
        return v

    @model_validator(mode="after")
    def _order(self) -> CallingHours:
        if self.end <= self.start:
            raise ValueError(
                "end must be after start (windows crossing midnight are not supported)"
            )
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(_DAYS.index(d) for d in self.days)


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


class CampaignSpec(_Model):
    """A campaign file, validated."""

    name: str = Field(pattern=CAMPAIGN_NAME_PATTERN)
    account: str | None = Field(None, description="Vonage account (rate-limit scope).")
    contacts: ContactsSource
    from_: CallerIds = Field(alias="from")
    flow: FlowSpec
    pacing: Pacing = Field(default_factory=Pacing)
    mode: DialingMode = Field(
        "agentless",
        description="agentless: the flow alone talks to the callee. progressive: one dial per "
        "free agent (times agents.ratio). predictive: dials ahead of agents becoming free, "
        "under agents.abandon_cap.",
    )
    agents: AgentsSpec | None = Field(
        None,
        validate_default=True,
        description="The agents and abandon rules (progressive and predictive modes).",
    )
    machine_detection: MachineDetection = Field(default_factory=MachineDetection)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    calling_hours: CallingHours | None = Field(
        default_factory=CallingHours, description="null disables the check (not advised)."
    )
    dnc: list[str] = Field(default_factory=list, description="Do-not-call list files.")
    dnc_uploads: list[TopicSlice] = Field(
        default_factory=list,
        description="Do-not-call lists uploaded with the campaign (E.164 numbers on "
        "campaign.uploads); filled in by the control API.",
    )
    start_at: AwareTime | None = None
    stop_at: AwareTime | None = None
    ringing_timer: int = Field(45, ge=1, le=120)
    length_timer: int | None = Field(None, ge=1, le=86400)
    attempt_timeout: Seconds | None = Field(
        None,
        description="An attempt with no outcome by then is final as failed/no_outcome (never "
        "redialed). Default: ringing_timer + length_timer (Vonage's 7200 s if unset) + 15 min, "
        "so a long call is never cut short in the results.",
    )

    @property
    def effective_attempt_timeout(self) -> float:
        if self.attempt_timeout is not None:
            return self.attempt_timeout
        return float(self.ringing_timer + (self.length_timer or 7200) + 900)

    @model_validator(mode="after")
    def _window(self) -> CampaignSpec:
        if self.start_at and self.stop_at and self.stop_at <= self.start_at:
            raise ValueError("stop_at must be after start_at")
        return self

    @field_validator("agents")
    @classmethod
    def _agents(cls, v: AgentsSpec | None, info: ValidationInfo) -> AgentsSpec | None:
        # A field validator (``mode`` is validated first) so the error names the agents line.
        mode = info.data.get("mode", "agentless")
        if mode == "agentless" and v is not None:
            raise ValueError("only with mode progressive or predictive")
        if mode == "predictive" and (v is None or not v.abandon_message):
            raise ValueError(
                "abandon_message: is required with mode predictive (who called and a number "
                "to call back)"
            )
        return v

    @field_validator("machine_detection")
    @classmethod
    def _agents_need_amd(cls, v: MachineDetection, info: ValidationInfo) -> MachineDetection:
        # Only a human answer may reach an agent, and only AMD tells a human from a machine.
        if info.data.get("mode", "agentless") != "agentless" and v.mode == "off":
            raise ValueError(
                "mode: standard or advanced is required with an agent campaign (mode "
                f"{info.data.get('mode')}): machine answers must never reach an agent"
            )
        return v

    @model_validator(mode="after")
    def _agent_flow(self) -> CampaignSpec:
        if self.mode == "agentless":
            return self
        # The callee is bridged to the agent by joining a named conversation at the end of the
        # answer NCCO; what comes before it must end by itself (talk, stream), or the callee
        # would never reach the conversation.
        if self.flow.ncco is None:
            raise ValueError(
                f"flow: mode {self.mode} needs an inline ncco (its talk or stream actions play "
                "before the callee is connected to an agent); a named flow or answer_url "
                "cannot be followed by the bridge"
            )
        for i, action in enumerate(self.flow.ncco):
            if action.get("action") not in AGENT_PRELUDE_ACTIONS:
                raise ValueError(
                    f"flow.ncco[{i}]: {action.get('action')!r} in mode {self.mode}: only talk "
                    "and stream may play before the callee is connected to an agent"
                )
        return self

    @property
    def agent_rules(self) -> AgentsSpec:
        """The agents block, or its defaults (a progressive campaign may leave it out)."""
        return self.agents if self.agents is not None else AgentsSpec()

    def resolve_paths(self, base: Path) -> CampaignSpec:
        """Make file paths absolute relative to the campaign file's directory."""

        def fix(p: str | None) -> str | None:
            if p is None:
                return None
            path = Path(p).expanduser()
            return str(path if path.is_absolute() else (base / path).resolve())

        contacts = self.contacts.model_copy(
            update={"csv": fix(self.contacts.csv), "jsonl": fix(self.contacts.jsonl)}
        )
        return self.model_copy(
            update={"contacts": contacts, "dnc": [fix(p) or p for p in self.dnc]}
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class CampaignFileError(ValueError):
    """A campaign file that cannot be used; the message names the file, line and field."""


class _LineLoader(BoundedSafeLoader):
    """The bounded safe loader (no aliases, depth capped); lines are kept by the walk below."""


def _construct_with_lines(node: yaml.Node, path: tuple[Any, ...], lines: dict[Any, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _LINE_LOADER_PROTO.construct_object(key_node, deep=True)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _construct_with_lines(value_node, (*path, key), lines)
            # The key's own line is the useful one for "field X: ..." messages.
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct_with_lines(n, (*path, i), lines) for i, n in enumerate(node.value)]
    return _LINE_LOADER_PROTO.construct_object(node, deep=True)


_LINE_LOADER_PROTO = _LineLoader("")


def _line_of(loc: tuple[Any, ...], lines: Mapping[Any, int]) -> int | None:
    loc = tuple("from" if p == "from_" else p for p in loc)
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


@dataclass(frozen=True)
class CampaignDocument:
    """A validated campaign file with the line of each of its nodes.

    ``lines`` maps a field path (``("flow", "ncco", 0, "text")``) to its line in ``source``, so
    checks made after parsing (a rendered NCCO, a template variable) can still name the line.
    """

    spec: CampaignSpec
    source: str
    lines: Mapping[tuple[Any, ...], int]

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        return _line_of(loc, self.lines)


def parse_campaign_yaml(text: str, source: str = "<campaign>") -> CampaignSpec:
    """Validate campaign YAML; raise :class:`CampaignFileError` naming line and field."""
    return parse_campaign_document(text, source).spec


def _read_with_lines(text: str, source: str) -> tuple[dict[Any, Any], dict[Any, int]]:
    try:
        node = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(err, "problem", None) or str(err)
        raise CampaignFileError(f"{where}: not valid YAML: {problem}") from None
    if node is None:
        raise CampaignFileError(f"{source}: the file is empty")
    lines: dict[Any, int] = {}
    data = _construct_with_lines(node, (), lines)
    if not isinstance(data, dict):
        raise CampaignFileError(f"{source}:1: a campaign file is a mapping (name:, contacts:, ...)")
    return data, lines


def campaign_lines(text: str, source: str = "<campaign>") -> dict[tuple[Any, ...], int]:
    """The line of each node of campaign YAML, without validating it.

    For a spec validated already in another shape: an uploaded spec's ``contacts`` may name no
    source (the file comes as another part), which :func:`parse_campaign_document` refuses.
    """
    return _read_with_lines(text, source)[1]


def parse_campaign_document(text: str, source: str = "<campaign>") -> CampaignDocument:
    """Like :func:`parse_campaign_yaml`, keeping the node -> line map for later checks."""
    data, lines = _read_with_lines(text, source)
    try:
        return CampaignDocument(CampaignSpec.model_validate(data), source, lines)
    except ValidationError as err:
        msgs = []
        for e in err.errors():
            loc = tuple(p for p in e["loc"] if p != "__root__")
            line = _line_of(loc, lines)
            field = ".".join(str(p) for p in loc).replace("from_", "from") or "(top level)"
            kind = e.get("type", "")
            text_ = _unknown_field(loc) if kind == "extra_forbidden" else error_text(e)
            msgs.append(f"{source}:{line or '?'}: {field}: {text_}")
        raise CampaignFileError("\n".join(msgs)) from None


def _unknown_field(loc: tuple[Any, ...]) -> str:
    wire = tuple("from" if p == "from_" else p for p in loc)
    choices = model_fields_at(CampaignSpec, wire[:-1])
    return "unknown field" + did_you_mean(str(wire[-1]), choices)


def load_campaign_file(path: str | Path) -> CampaignSpec:
    """Read, validate and resolve file paths relative to the campaign file."""
    return load_campaign_document(path).spec


def load_campaign_document(path: str | Path) -> CampaignDocument:
    """:func:`load_campaign_file`, keeping the line map (``orchestrator campaign validate``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise CampaignFileError(f"{p}: cannot read: {err.strerror}") from None
    doc = parse_campaign_document(text, str(p))
    return replace(doc, spec=doc.spec.resolve_paths(p.resolve().parent))


# --- Contacts and results --------------------------------------------------------------------


class Contact(_Model):
    """One row of the contact list, with its number normalised to E.164 (``+`` and digits).

    ``index`` is the row's position in the source (0-based); it is the reader's cursor, so a
    restarted controller continues at the right row.
    """

    index: int = Field(ge=0)
    contact_id: str
    number: str = Field(description="E.164, or the raw text when it could not be parsed.")
    valid: bool = True
    name: str | None = None
    timezone: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)


def contact_columns(contact: Contact) -> dict[str, str]:
    """The contact's own columns for its result: what the row said beyond number, name and id."""
    columns = dict(contact.variables)
    if contact.timezone is not None:
        columns.setdefault("timezone", contact.timezone)
    return columns


ContactValue = str | int | float | bool | None


class ContactRow(BaseModel):
    """One contact as other services write it: a record's value on a contacts topic, or a JSONL line.

    Read by ``orchestrator.campaign.contacts.contact_from_row``, which turns it into a
    :class:`Contact`. The number is the first non-empty of ``number``, ``phone``, ``to`` or
    ``msisdn`` (E.164, or national in the campaign's ``default_region``); a row without one, or
    with one that does not parse, becomes a contact with disposition ``invalid_number`` rather than
    an error. Every other column is a template variable (``{{column}}`` in the flow).
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, ContactValue]

    number: str | int | None = Field(None, description="The number to dial.")
    phone: str | int | None = Field(None, description="Alias of number.")
    to: str | int | None = Field(None, description="Alias of number.")
    msisdn: str | int | None = Field(None, description="Alias of number.")
    id: str | int | None = Field(None, description="Contact id in the results; default: the row.")
    name: str | None = None
    timezone: str | None = Field(
        None, description="IANA zone for calling hours, e.g. Europe/Paris."
    )
    variables: dict[str, ContactValue] | None = Field(
        None, description="Template variables, merged over the extra columns."
    )


class Disposition(StrEnum):
    """The final disposition of a contact (one per contact)."""

    ANSWERED = "answered"  # a human (or no AMD) answered
    MACHINE = "machine"
    BUSY = "busy"
    UNANSWERED = "unanswered"
    TIMEOUT = "timeout"
    FAILED = "failed"
    REJECTED = "rejected"
    DNC = "dnc"
    INVALID_NUMBER = "invalid_number"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # the campaign's stop_at came before the contact could be (re)dialed
    ABANDONED = "abandoned"  # agent campaigns: a person answered, no agent was free in time


class ContactResult(_Model):
    """Exactly one per contact, on ``campaign.results`` (key ``{campaign}/{contact_id}``)."""

    type: Literal["campaign.result"] = "campaign.result"
    schema_version: int = 1
    id: str
    campaign: str
    contact_id: str
    index: int
    number: str
    name: str | None = None
    disposition: Disposition
    detail: str | None = None
    attempts: int = Field(ge=0)
    call_refs: list[str] = Field(default_factory=list)
    call_uuids: list[str] = Field(default_factory=list)
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    finished_at: datetime
    amd: str | None = None
    duration_s: int | None = None
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="The contact's own columns (timezone and every other column of its row), "
        "passed through as they were read.",
    )
    captures: dict[str, str] = Field(
        default_factory=dict,
        description="What the flow collected on the last attempt: the leg outcome's captures "
        "(digits or speech per input, the branch taken, recording URLs).",
    )
    agent_id: str | None = Field(
        None, description="Agent campaigns: the agent who talked to the contact (last attempt)."
    )
    agent_wait_s: float | None = Field(
        None,
        description="Agent campaigns: seconds from the human answer to the agent's answer, or "
        "to the abandon.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    @staticmethod
    def make_id(campaign: str, contact_id: str) -> str:
        return stable_id("cres", campaign, contact_id)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


class ControlAction(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


class CampaignControl(_Model):
    """An operator's request, on ``campaign.control`` (key = campaign name)."""

    type: Literal["campaign.control"] = "campaign.control"
    schema_version: int = 1
    id: str
    occurred_at: datetime
    campaign: str = Field(pattern=CAMPAIGN_NAME_PATTERN)
    action: ControlAction
    spec: CampaignSpec | None = Field(None, description="The validated file (start only).")
    requested_by: str | None = None
    contacts_total: int | None = Field(None, ge=0, description="Rows in the list, if counted.")
    source_ranges: list[tuple[int, int, int]] | None = Field(
        None,
        description="Topic source: (partition, begin, end) offsets fixed at start; the list is "
        "read partition by partition, so row numbers stay the same across restarts.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    @model_validator(mode="after")
    def _spec(self) -> CampaignControl:
        if self.action == ControlAction.START and self.spec is None:
            raise ValueError("start needs the campaign spec")
        if self.spec is not None and self.spec.name != self.campaign:
            raise ValueError("spec.name differs from campaign")
        return self

    def to_bytes(self) -> bytes:
        # Nones are kept: in a spec, null can mean something (``calling_hours: null`` disables
        # the check), and dropping it would bring the default back on decode.
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


class CampaignTick(_Model):
    """The controller's clock reading, written to its own input topic and acted on when read back.

    The controller decides by time (attempt timeouts, stop_at, calling hours, pacing). Deciding on
    the wall clock directly would make a replay after a crash decide differently from the first
    run (an attempt that got its outcome in time the first run times out on replay, and the
    contact's one final result comes out twice, with two dispositions). Time only moves when a
    tick is read from the log, so a replay meets the same times in the same order as the first
    run, and emits the same commands and results.
    """

    type: Literal["campaign.tick"] = "campaign.tick"
    campaign: str = Field(pattern=CAMPAIGN_NAME_PATTERN)
    at: datetime = Field(description="The campaign clock (calling hours, retries, stop_at).")
    wall: float = Field(description="Real seconds since the epoch (pacing is in real time).")

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"  # started, before start_at
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"  # cancelled; waiting for calls in flight
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class AgentProgress(_Model):
    """An agent campaign's agents and abandons (``CampaignProgress.agents``)."""

    mode: DialingMode
    agents_free: int = Field(0, description="Available agents who fit the campaign.")
    agents_busy: int = Field(0, description="Reserved, talking or in wrap-up.")
    agents_logged_in: int = 0
    callers_waiting: int = Field(0, description="Live answers waiting for an agent now.")
    live_answers: int = Field(0, description="Human answers so far.")
    connected: int = Field(0, description="Live answers bridged to an agent.")
    abandoned: int = 0
    abandon_rate: float | None = Field(
        None, description="Abandoned over live answers, over the campaign's abandon window."
    )
    mean_wait_s: float | None = Field(None, description="Mean wait for an agent (connected).")
    occupancy: float | None = Field(
        None, description="The agents' talk time over their logged-in time since the start."
    )
    calls_per_agent_hour: float | None = None
    dial_level: float | None = Field(None, description="Lines dialled per (expected) free agent.")
    phase: str | None = Field(None, description="Pacing phase (predictive: warmup, adaptive...).")


class CampaignProgress(_Model):
    """Progress counters: ``state.progress`` of the campaign's record on ``campaign.state``."""

    type: Literal["campaign.progress"] = "campaign.progress"
    campaign: str
    status: CampaignStatus
    at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    contacts_read: int = 0
    contacts_total: int | None = None
    dialed: int = 0
    in_flight: int = 0
    retries_pending: int = 0
    retries_pending_by_disposition: dict[str, int] = Field(
        default_factory=dict,
        description="Retries waiting, by the disposition class of the attempt that failed.",
    )
    next_retry_at: datetime | None = Field(
        None, description="When the earliest waiting retry is due (campaign clock)."
    )
    waiting_for_hours: int = 0
    finished: int = 0
    dispositions: dict[str, int] = Field(default_factory=dict)
    dials_per_min: float = 0.0
    max_concurrent: int = 0
    cps_limit: float = 0.0
    agents: AgentProgress | None = Field(None, description="Agent campaigns only.")

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @property
    def eta_s(self) -> float | None:
        """Seconds to finish at the current dial rate, when the list size is known."""
        if self.contacts_total is None or self.dials_per_min <= 0:
            return None
        remaining = max(0, self.contacts_total - self.finished)
        return remaining / self.dials_per_min * 60.0
