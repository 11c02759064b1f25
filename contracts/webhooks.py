"""Every webhook Vonage sends to the ingress, and the one classifier the ingress calls.

Vonage's payloads are not uniform (DIGEST §4.2): AMD events carry ``call_uuid`` instead of ``uuid``,
``input``/``record``/``transfer``/``error`` events usually have no ``status``, the 2021 transfer event
uses ``type``, money and durations come as strings or numbers. The models normalise all of that
once, here, so the state machines see one shape.

``classify_webhook`` runs on the ingress hot path: it looks at ``status``/``type``/key presence,
picks exactly one model and validates once. It never raises anything but
:class:`WebhookValidationError` for any JSON input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, ValidationError, field_validator, model_validator

from contracts._base import (
    NonEmptyStr,
    OptDuration,
    OptMoney,
    OptTime,
    VonageModel,
    format_validation_error,
)

__all__ = [
    "WEBHOOK_MODELS",
    "AmdEvent",
    "AnswerWebhook",
    "AnsweredEvent",
    "BusyEvent",
    "CallStatusEvent",
    "CancelledEvent",
    "CompletedEvent",
    "DisconnectedEvent",
    "DtmfResult",
    "ErrorEvent",
    "FailedEvent",
    "FallbackWebhook",
    "InputEvent",
    "NotifyWebhook",
    "OriginalRequest",
    "PaymentEvent",
    "RecordEvent",
    "RejectedEvent",
    "RingingEvent",
    "SpeechResult",
    "SpeechResults",
    "StartedEvent",
    "TimeoutEvent",
    "TranscriptionEvent",
    "TransferEvent",
    "UnansweredEvent",
    "Webhook",
    "WebhookValidationError",
    "classify_webhook",
]


class WebhookValidationError(ValueError):
    """A webhook body we cannot accept; ``str(err)`` is a short reason naming the field."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class Webhook(VonageModel):
    """Base of every webhook model.

    ``event_type`` is the classifier's verdict (a status such as ``"started"``, or ``"input"``,
    ``"record"``, ...); ``leg_uuid`` is the leg the event is about (``uuid`` or ``call_uuid``).
    """

    EVENT_TYPE: ClassVar[str] = ""

    conversation_uuid: str | None = None
    timestamp: OptTime = None

    @property
    def event_type(self) -> str:
        return self.EVENT_TYPE

    @property
    def leg_uuid(self) -> str | None:
        value = getattr(self, "uuid", None)
        return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------------------------
# answer


def _maybe_json_object(value: Any) -> Any:
    # custom_data arrives as an object in a POST body and as a JSON string in a GET query.
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return decoded
    return value


class AnswerWebhook(Webhook):
    """The answer_url request (GET query or POST body). SIP ``X-`` headers arrive as ``SipHeader_*``."""

    EVENT_TYPE: ClassVar[str] = "answer"

    uuid: NonEmptyStr
    conversation_uuid: NonEmptyStr
    to: str | None = None
    from_: str | None = Field(None, alias="from")
    from_user: str | None = None
    region_url: str | None = None
    endpoint_type: str | None = None
    custom_data: dict[str, Any] | str | None = None

    @field_validator("custom_data", mode="before")
    @classmethod
    def _json_custom_data(cls, value: Any) -> Any:
        return _maybe_json_object(value)

    @property
    def sip_headers(self) -> dict[str, Any]:
        """``SipHeader_X-UserId`` -> ``{"X-UserId": ...}``."""
        extra = self.__pydantic_extra__ or {}
        return {k[10:]: v for k, v in extra.items() if k.startswith("SipHeader_")}


# --------------------------------------------------------------------------------------------
# call status events


class CallStatusEvent(Webhook):
    """Common shape of the leg status events (DIGEST §4.2 table)."""

    uuid: NonEmptyStr
    conversation_uuid: NonEmptyStr
    status: str
    direction: Literal["inbound", "outbound"] | None = None
    to: str | None = None
    from_: str | None = Field(None, alias="from")
    detail: str | None = None
    sip_code: int | None = None
    headers: dict[str, Any] | None = Field(None, description="Websocket endpoint headers.")

    @property
    def event_type(self) -> str:
        return self.status


class StartedEvent(CallStatusEvent):
    status: Literal["started"]
    client_ref: str | None = Field(None, description="Voice API v2 'call placed' callback.")


class RingingEvent(CallStatusEvent):
    status: Literal["ringing"]


class AnsweredEvent(CallStatusEvent):
    status: Literal["answered"]
    start_time: OptTime = None
    rate: OptMoney = None
    network: str | None = None


class BusyEvent(CallStatusEvent):
    status: Literal["busy"]


class CancelledEvent(CallStatusEvent):
    status: Literal["cancelled"]


class UnansweredEvent(CallStatusEvent):
    status: Literal["unanswered"]


class RejectedEvent(CallStatusEvent):
    status: Literal["rejected"]


class FailedEvent(CallStatusEvent):
    status: Literal["failed"]


class TimeoutEvent(CallStatusEvent):
    status: Literal["timeout"]


class DisconnectedEvent(CallStatusEvent):
    status: Literal["disconnected"]


class CompletedEvent(CallStatusEvent):
    status: Literal["completed"]
    start_time: OptTime = None
    end_time: OptTime = None
    duration: OptDuration = None
    rate: OptMoney = None
    price: OptMoney = None
    network: str | None = None
    disconnected_by: str | None = None


class AmdEvent(Webhook):
    """Answering-machine detection result. Vonage sends ``call_uuid`` (JAVA also accepts ``uuid``)."""

    status: Literal["human", "machine"]
    call_uuid: NonEmptyStr | None = None
    uuid: NonEmptyStr | None = None
    conversation_uuid: NonEmptyStr
    sub_state: str | None = Field(None, description="beep_start | beep_timeout (advanced AMD).")
    direction: Literal["inbound", "outbound"] | None = None
    to: str | None = None
    from_: str | None = Field(None, alias="from")

    @model_validator(mode="after")
    def _needs_a_leg(self) -> AmdEvent:
        if not self.call_uuid and not self.uuid:
            raise ValueError("call_uuid (or uuid) is required")
        return self

    @property
    def event_type(self) -> str:
        return self.status

    @property
    def leg_uuid(self) -> str | None:
        return self.call_uuid or self.uuid


# --------------------------------------------------------------------------------------------
# input


def _confidence(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class SpeechResult(VonageModel):
    text: str
    confidence: float | None = None

    @field_validator("confidence", mode="before")
    @classmethod
    def _conf(cls, value: Any) -> Any:
        return _confidence(value)


class SpeechResults(VonageModel):
    timeout_reason: str | None = None
    results: list[SpeechResult] | None = None
    error: str | None = None
    recording_url: str | None = None


class DtmfResult(VonageModel):
    digits: str | None = None
    timed_out: bool | None = None


class InputEvent(Webhook):
    """Result of an ``input`` action (DTMF and/or speech); usually carries no ``status``."""

    EVENT_TYPE: ClassVar[str] = "input"

    uuid: NonEmptyStr
    conversation_uuid: NonEmptyStr
    status: Literal["input"] | None = None
    dtmf: DtmfResult | None = None
    speech: SpeechResults | None = None
    to: str | None = None
    from_: str | None = Field(None, alias="from")
    direction: Literal["inbound", "outbound"] | None = None

    @property
    def digits(self) -> str | None:
        return self.dtmf.digits if self.dtmf else None


# --------------------------------------------------------------------------------------------
# record / transcription


class RecordEvent(Webhook):
    """A finished recording (record action or recorded conversation); no ``uuid`` in the docs."""

    EVENT_TYPE: ClassVar[str] = "record"

    recording_url: NonEmptyStr
    recording_uuid: NonEmptyStr
    conversation_uuid: NonEmptyStr
    start_time: OptTime = None
    end_time: OptTime = None
    size: int | None = Field(None, ge=0, description="Bytes.")
    uuid: str | None = None
    status: Literal["record", "recording"] | None = None


class TranscriptionEvent(Webhook):
    """Transcription ready (Developer Preview): ``type: record, status: transcribed``."""

    EVENT_TYPE: ClassVar[str] = "transcribed"

    status: Literal["transcribed"]
    type: Literal["record"] | None = None
    recording_uuid: NonEmptyStr
    conversation_uuid: NonEmptyStr
    transcription_url: NonEmptyStr
    uuid: str | None = None


# --------------------------------------------------------------------------------------------
# transfer / error / payment


class TransferEvent(Webhook):
    """A leg moved between conversations (``status: transfer`` or the 2021 ``type: transfer``).

    ``conversation_uuid`` is filled from ``conversation_uuid_to`` when absent (not marked as set,
    so ``model_dump(exclude_unset=True)`` still gives back the original body).
    """

    EVENT_TYPE: ClassVar[str] = "transfer"

    uuid: NonEmptyStr
    conversation_uuid_from: NonEmptyStr
    conversation_uuid_to: NonEmptyStr
    status: Literal["transfer"] | None = None
    type: Literal["transfer"] | None = None

    def model_post_init(self, context: Any, /) -> None:
        if self.conversation_uuid is None:
            # Direct __dict__ write: not recorded in model_fields_set.
            self.__dict__["conversation_uuid"] = self.conversation_uuid_to


class ErrorEvent(Webhook):
    """Vonage reports an error (invalid NCCO, failed outbound, CPS exceeded on connect)."""

    EVENT_TYPE: ClassVar[str] = "error"

    reason: str
    uuid: str | None = None
    status: Literal["error"] | None = None


class PaymentEvent(Webhook):
    """Result of a ``pay`` action."""

    EVENT_TYPE: ClassVar[str] = "payment"

    status: Literal["success", "failure"]
    uuid: NonEmptyStr
    conversation_uuid: NonEmptyStr
    to: str | None = None
    from_: str | None = Field(None, alias="from")


# --------------------------------------------------------------------------------------------
# notify / fallback


class NotifyWebhook(Webhook):
    """Callback of a ``notify`` action: the caller's own ``payload``; the envelope is undocumented."""

    EVENT_TYPE: ClassVar[str] = "notify"

    uuid: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """Everything Vonage sent, as a plain dict (the user payload is in here)."""
        return dict(self.__pydantic_extra__ or {})


class OriginalRequest(VonageModel):
    url: str | None = None
    type: str | None = Field(None, description="answer | event (which request fell back).")


class FallbackWebhook(Webhook):
    """fallback_answer_url request: the original payload plus ``reason`` and ``original_request``."""

    EVENT_TYPE: ClassVar[str] = "fallback"

    reason: str | None = None
    original_request: OriginalRequest | None = None
    uuid: str | None = None
    call_uuid: str | None = None
    status: str | None = None

    @property
    def leg_uuid(self) -> str | None:
        return self.uuid or self.call_uuid or None


# --------------------------------------------------------------------------------------------
# classification

WEBHOOK_MODELS: tuple[type[Webhook], ...] = (
    AnswerWebhook,
    StartedEvent,
    RingingEvent,
    AnsweredEvent,
    BusyEvent,
    CancelledEvent,
    UnansweredEvent,
    RejectedEvent,
    FailedEvent,
    TimeoutEvent,
    DisconnectedEvent,
    CompletedEvent,
    AmdEvent,
    InputEvent,
    RecordEvent,
    TranscriptionEvent,
    TransferEvent,
    ErrorEvent,
    PaymentEvent,
    NotifyWebhook,
    FallbackWebhook,
)

_BY_STATUS: dict[str, type[Webhook]] = {
    "started": StartedEvent,
    "ringing": RingingEvent,
    "answered": AnsweredEvent,
    "busy": BusyEvent,
    "cancelled": CancelledEvent,
    "unanswered": UnansweredEvent,
    "rejected": RejectedEvent,
    "failed": FailedEvent,
    "timeout": TimeoutEvent,
    "disconnected": DisconnectedEvent,
    "completed": CompletedEvent,
    "human": AmdEvent,
    "machine": AmdEvent,
    "input": InputEvent,
    "record": RecordEvent,
    "recording": RecordEvent,
    "transcribed": TranscriptionEvent,
    "transfer": TransferEvent,
    "error": ErrorEvent,
    "success": PaymentEvent,
    "failure": PaymentEvent,
}

_BY_TYPE: dict[str, type[Webhook]] = {
    "transfer": TransferEvent,
    "record": RecordEvent,
    "recording": RecordEvent,
    "error": ErrorEvent,
    "input": InputEvent,
}

_BY_KIND: dict[str, type[Webhook]] = {
    "answer": AnswerWebhook,
    "notify": NotifyWebhook,
    "fallback": FallbackWebhook,
}

_KNOWN_KINDS = frozenset({"answer", "event", "input", "notify", "fallback", "recording"})


def _infer(body: Mapping[str, Any], kind: str | None) -> type[Webhook]:
    by_kind = _BY_KIND.get(kind) if kind is not None else None
    if by_kind is not None:
        return by_kind
    if kind is None and "original_request" in body:
        return FallbackWebhook

    status = body.get("status")
    if status is not None:
        if not isinstance(status, str):
            raise WebhookValidationError("status: must be a string", field="status")
        model = _BY_STATUS.get(status)
        if model is None:
            raise WebhookValidationError(f"status: unknown value {status[:40]!r}", field="status")
        return model

    type_ = body.get("type")
    if type_ is not None:
        if not isinstance(type_, str):
            raise WebhookValidationError("type: must be a string", field="type")
        model = _BY_TYPE.get(type_)
        if model is None:
            raise WebhookValidationError(f"type: unknown value {type_[:40]!r}", field="type")
        return model

    # DIGEST §4.2 (inference): no status/type -> decide by which keys are present.
    if "dtmf" in body or "speech" in body:
        return InputEvent
    if "recording_url" in body or "recording_uuid" in body:
        return RecordEvent
    if "conversation_uuid_from" in body or "conversation_uuid_to" in body:
        return TransferEvent
    if "reason" in body:
        return ErrorEvent
    if kind is None and "uuid" in body and "conversation_uuid" in body and "timestamp" not in body:
        return AnswerWebhook
    raise WebhookValidationError(
        "status: missing, and the event type cannot be inferred from the fields", field="status"
    )


def classify_webhook(body: Mapping[str, Any], kind: str | None = None) -> Webhook:
    """Pick the model for ``body`` and validate it once.

    ``kind`` is the endpoint that received the body (answer, event, input, notify, fallback,
    recording); it decides for answer/notify/fallback, whose bodies cannot be told apart by
    content, and is otherwise a hint.
    """
    if not isinstance(body, Mapping):
        raise WebhookValidationError(
            f"body: must be a JSON object, not {type(body).__name__}", field=None
        )
    if kind is not None and kind not in _KNOWN_KINDS:
        raise WebhookValidationError(f"kind: unknown webhook endpoint {kind!r}")
    model = _infer(body, kind)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]["loc"] if errors else ()
        raise WebhookValidationError(
            f"{model.__name__}: {format_validation_error(errors)}",
            field=".".join(str(p) for p in first) or None,
        ) from None
    except (TypeError, ValueError, RecursionError) as exc:  # pragma: no cover - defensive
        raise WebhookValidationError(f"body: {type(exc).__name__}: {exc}"[:200]) from None
