"""Our own Kafka envelopes: the wire contract between the roles and with other services.

Every record on a product topic is one of these, serialised as JSON. Ids are deterministic wherever
a record may be produced again (a retried webhook, a replayed input after a crash), so consumers
deduplicate on ``id`` instead of trusting delivery counts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import orjson
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from contracts.topics import REPLY_TOPICS

SCHEMA_VERSION = 1


def stable_id(prefix: str, *parts: str | bytes) -> str:
    """A deterministic id: the same inputs always give the same id (for consumer dedup)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\x1f")
    return f"{prefix}-{h.hexdigest()[:32]}"


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    id: str = Field(description="Deterministic where a record may be re-produced; dedup on it.")
    schema_version: int = SCHEMA_VERSION
    occurred_at: datetime = Field(description="When the fact happened (UTC).")
    flow_key: str = Field(description="call_ref for calls we originate, else conversation_uuid.")

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True, by_alias=True))


class WebhookKind(StrEnum):
    """Which webhook endpoint received the payload."""

    ANSWER = "answer"
    EVENT = "event"
    INPUT = "input"
    NOTIFY = "notify"
    FALLBACK = "fallback"
    RECORDING = "recording"


class FlowMark(BaseModel):
    """Where in a declarative flow a webhook landed, and where the flow went from there.

    Only the ingress knows this (the step is in the webhook's URL, the branch is what it
    rendered), and the worker, which builds the leg's outcome, reads no flows: so the ingress
    stores it beside the payload, and the outcome's ``captures`` can name the answer by step.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    flow: str
    step: str
    capture: str = Field(
        description="The name the input is captured under: the step's 'capture' variable, "
        "else the step's name."
    )
    goto: str | None = Field(None, description="The step the flow went to (the branch taken).")


class EventEnvelope(_Envelope):
    """A verified, validated Vonage webhook, as the ingress stored it on ``voice.events``."""

    type: Literal["vonage.webhook"] = "vonage.webhook"
    webhook: WebhookKind
    call_ref: str | None = None
    event_type: str = Field(description="Classifier result, e.g. 'started', 'input', 'record'.")
    received_at: datetime
    payload: dict[str, Any] = Field(description="The Vonage body, all fields kept.")
    flow: FlowMark | None = Field(
        None, description="Input webhooks of a declarative flow: the step and the branch taken."
    )

    @staticmethod
    def make_id(webhook: str, flow_key: str, raw_body: bytes) -> str:
        # A Vonage retry carries the same body, so it maps to the same id.
        return stable_id("evt", webhook, flow_key, raw_body)


class CommandKind(StrEnum):
    CREATE_CALL = "create_call"
    TRANSFER = "transfer"
    HANGUP = "hangup"
    MUTE = "mute"
    UNMUTE = "unmute"
    EARMUFF = "earmuff"
    UNEARMUFF = "unearmuff"
    TALK_START = "talk_start"
    TALK_STOP = "talk_stop"
    STREAM_START = "stream_start"
    STREAM_STOP = "stream_stop"
    DTMF = "dtmf"
    DTMF_SUBSCRIBE = "dtmf_subscribe"
    DTMF_UNSUBSCRIBE = "dtmf_unsubscribe"
    GET_CALL = "get_call"
    LIST_CALLS = "list_calls"
    APPLICATION_CREATE = "application_create"
    APPLICATION_GET = "application_get"
    APPLICATION_LIST = "application_list"
    APPLICATION_UPDATE = "application_update"
    APPLICATION_DELETE = "application_delete"


#: Commands that create a call count against the CPS budget; all others against the RPS budget.
CALL_CREATING_KINDS = frozenset({CommandKind.CREATE_CALL})

#: Commands that change one live leg (``PUT``/``DELETE`` on ``/v1/calls/{uuid}...``): they need the
#: leg's uuid, and Vonage answers them 400 "too early" right after the call was created.
CALL_UPDATE_KINDS = frozenset(
    {
        CommandKind.TRANSFER,
        CommandKind.HANGUP,
        CommandKind.MUTE,
        CommandKind.UNMUTE,
        CommandKind.EARMUFF,
        CommandKind.UNEARMUFF,
        CommandKind.TALK_START,
        CommandKind.TALK_STOP,
        CommandKind.STREAM_START,
        CommandKind.STREAM_STOP,
        CommandKind.DTMF,
        CommandKind.DTMF_SUBSCRIBE,
        CommandKind.DTMF_UNSUBSCRIBE,
    }
)


class ReplyTo(BaseModel):
    """Where a command's result goes besides the call's own flow: a product topic and its key.

    The dispatcher writes every result to ``voice.events`` (the call's state machine needs it);
    a command that also wants its result back names its requester's topic here, and the result
    goes there too, straight home instead of through a relay. Only the topics of
    :data:`contracts.topics.REPLY_TOPICS` are accepted: a command cannot make the dispatcher
    write to any other topic.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(
        description="Logical topic name (without TOPIC_PREFIX).",
        json_schema_extra={"enum": list[JsonValue](sorted(REPLY_TOPICS))},
    )
    key: str = Field(
        min_length=1, max_length=249, description="The record key there (e.g. the campaign)."
    )

    @field_validator("topic")
    @classmethod
    def _known_topic(cls, v: str) -> str:
        if v not in REPLY_TOPICS:
            raise ValueError(f"must be one of {', '.join(sorted(REPLY_TOPICS))}")
        return v


class CommandEnvelope(_Envelope):
    """A Voice/Application API operation to perform, consumed by the dispatcher."""

    type: Literal["voice.command"] = "voice.command"
    kind: CommandKind
    call_ref: str | None = None
    call_uuid: str | None = Field(None, description="Target leg for control commands.")
    region_url: str | None = Field(None, description="Route control requests to the call's region.")
    account: str = Field("default", description="Rate-limit scope (the Vonage account).")
    body: dict[str, Any] = Field(default_factory=dict, description="The API request body.")
    not_before: datetime | None = Field(None, description="Do not send before this time.")
    origin: str | None = Field(None, description="Who asked (worker, campaign, control-api).")
    hints: dict[str, Any] | None = Field(
        None,
        description="Policy for the call's state machine, echoed on the result "
        "(e.g. on_machine: hangup, role: moderator); opaque to the dispatcher.",
    )
    reply_to: ReplyTo | None = Field(
        None, description="Where the result goes too, besides the call's flow on voice.events."
    )

    @property
    def command_id(self) -> str:
        return self.id


def command_key(cmd: CommandEnvelope) -> bytes:
    """The Kafka key of a command on ``voice.commands``.

    Call-creating commands are keyed by account, so one partition (one dispatcher replica at a time)
    owns the account's whole CPS budget: the total can never exceed it, and the owner can use all of
    it. Everything else is keyed by flow key, which keeps one call's commands in order.
    """
    if cmd.kind in CALL_CREATING_KINDS:
        return f"acct:{cmd.account}".encode()
    return cmd.flow_key.encode()


class CommandStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Sent, but whether Vonage acted is unknown (timeout or dropped connection after sending).
    UNKNOWN = "unknown"


class CommandResult(_Envelope):
    """What happened to a command; produced by the dispatcher onto ``voice.events`` (keyed by the
    call's flow key) and, for a command with ``reply_to``, onto that topic too."""

    type: Literal["dispatcher.result"] = "dispatcher.result"
    command_id: str
    kind: CommandKind
    status: CommandStatus
    call_ref: str | None = None
    http_status: int | None = None
    call_uuid: str | None = None
    conversation_uuid: str | None = None
    error: dict[str, Any] | None = Field(None, description="Vonage's error body, or our reason.")
    response: dict[str, Any] | None = None
    attempts: int = 1
    latency_ms: float | None = None
    hints: dict[str, Any] | None = Field(None, description="The command's hints, echoed.")

    @staticmethod
    def make_id(command_id: str) -> str:
        return stable_id("res", command_id)


class OutcomeScope(StrEnum):
    LEG = "leg"
    CONVERSATION = "conversation"


class Outcome(_Envelope):
    """A final record (CDR-like) for one leg or one conversation, on ``voice.outcomes``."""

    type: Literal["voice.outcome"] = "voice.outcome"
    scope: OutcomeScope
    call_ref: str | None = None
    campaign: str | None = Field(
        None, description="The campaign that placed the call (from its call_ref), if any."
    )
    contact_index: int | None = Field(
        None,
        description="The contact's row in that campaign's list (its result's `index`); the "
        "result on campaign.results carries the contact_id too.",
    )
    uuid: str | None = Field(None, description="Leg uuid (scope=leg).")
    conversation_uuid: str | None = None
    disposition: str = Field(description="answered, busy, unanswered, rejected, failed, ...")
    detail: str | None = None
    direction: str | None = None
    to: str | None = None
    from_: str | None = Field(None, alias="from")
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration_s: int | None = None
    rate: str | None = None
    price: str | None = None
    network: str | None = None
    amd: str | None = Field(None, description="human | machine, when detection ran.")
    recording_urls: list[str] = Field(default_factory=list)
    legs: list[str] = Field(default_factory=list, description="Leg uuids (scope=conversation).")
    captures: dict[str, str] = Field(
        default_factory=dict,
        description="What the flow collected on this leg (scope=leg): '{name}' the digits or "
        "speech text of the last answered input named so (a flow step's capture variable or "
        "step name; 'input', 'input_2' ... for inline NCCOs), '{name}.branch' the step it led "
        "to, 'recording_url', 'recording_url_2' ... the recordings.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @staticmethod
    def make_id(scope: str, flow_key: str, subject: str) -> str:
        return stable_id("out", scope, flow_key, subject)


# The worker builds outcomes and commands as plain JSON dicts on its hot path (validating each with
# pydantic would double its cost); these TypedDicts give those dicts the models' shape, so mypy
# checks every key, and tests/unit/contracts/test_record_models.py checks that each declares
# exactly its model's fields.

#: The JSON form of :class:`Outcome` (``from`` is a keyword, hence the functional syntax).
OutcomeRecord = TypedDict(
    "OutcomeRecord",
    {
        "id": str,
        "schema_version": int,
        "type": Literal["voice.outcome"],
        "occurred_at": str,
        "flow_key": str,
        "scope": Literal["leg", "conversation"],
        "call_ref": NotRequired[str],
        "campaign": NotRequired[str],
        "contact_index": NotRequired[int],
        "uuid": NotRequired[str],
        "conversation_uuid": NotRequired[str],
        "disposition": str,
        "detail": NotRequired[str],
        "direction": NotRequired[str],
        "to": NotRequired[str],
        "from": NotRequired[str],
        "start_time": NotRequired[str],
        "end_time": NotRequired[str],
        "duration_s": NotRequired[int],
        "rate": NotRequired[str],
        "price": NotRequired[str],
        "network": NotRequired[str],
        "amd": NotRequired[str],
        "recording_urls": list[str],
        "legs": list[str],
        "captures": dict[str, str],
    },
)


class CommandRecord(TypedDict):
    """The JSON form of :class:`CommandEnvelope`, as the worker builds one."""

    id: str
    schema_version: int
    type: Literal["voice.command"]
    occurred_at: str
    flow_key: str
    kind: str
    call_ref: NotRequired[str]
    call_uuid: NotRequired[str]
    region_url: NotRequired[str]
    account: str
    body: dict[str, Any]
    not_before: NotRequired[str]
    origin: NotRequired[str]
    hints: NotRequired[dict[str, Any]]
    reply_to: NotRequired[dict[str, str]]


class DeadLetter(BaseModel):
    """A record that could not be processed, kept with its origin and the reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["dead.letter"] = "dead.letter"
    schema_version: int = SCHEMA_VERSION
    id: str
    occurred_at: datetime
    reason: str
    error: str | None = None
    source_topic: str
    partition: int
    offset: int
    key_b64: str | None = None
    value_b64: str | None = None
    role: str | None = None

    @staticmethod
    def make_id(topic: str, partition: int, offset: int) -> str:
        return stable_id("dlq", topic, str(partition), str(offset))

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True, by_alias=True))


#: Anything the worker may find on ``voice.events``.
VoiceEvent = Annotated[EventEnvelope | CommandResult, Field(discriminator="type")]

ENVELOPES: tuple[type[BaseModel], ...] = (
    EventEnvelope,
    CommandEnvelope,
    CommandResult,
    Outcome,
    DeadLetter,
)
