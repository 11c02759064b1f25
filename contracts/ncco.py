"""NCCO (Nexmo Call Control Object): the JSON list of actions we hand Vonage for a call.

Field names are Vonage's own camelCase, so a model dumps to exactly what Vonage expects and an NCCO
read from JSON dumps back unchanged (``Ncco.to_list`` excludes unset fields: defaults are never
added). Limits come from DIGEST §5; breaking one fails at construction with a message that names
the action index and the field, e.g. ``action[2] (input).dtmf.maxDigits: must be <= 20`` -- an NCCO
Vonage rejects only shows up mid-call as an ``error`` event, far too late.

One normalisation is deliberate: Vonage's own examples write numbers and booleans as strings
(``"timeout": "45"``, ``"bargeIn": "true"``). Those are accepted and dumped as real numbers and
booleans, the only case where a round trip changes the JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import (
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts._base import (
    NO_BOOL,
    ApiModel,
    HttpMethod,
    NonEmptyStr,
    NumericStr,
    Url,
    UrlList,
    error_text,
    number_range,
    number_schema,
)
from contracts.tts import TtsError, check_language_style

__all__ = [
    "ACTION_MODELS",
    "ENDPOINT_MODELS",
    "MAX_TALK_CHARS",
    "Action",
    "AdvancedMachineDetection",
    "AppEndpoint",
    "ConnectAction",
    "ConnectEndpoint",
    "ConversationAction",
    "DtmfSettings",
    "InputAction",
    "Ncco",
    "NccoError",
    "NotifyAction",
    "OnAnswer",
    "PayAction",
    "PayPrompt",
    "PhoneEndpoint",
    "RecordAction",
    "SipEndpoint",
    "SpeechSettings",
    "StreamAction",
    "TalkAction",
    "TranscriptionSettings",
    "TransferAction",
    "VbcEndpoint",
    "WaitAction",
    "WebsocketAuthorization",
    "WebsocketEndpoint",
    "parse_ncco",
    "talk_length",
]

MAX_TALK_CHARS = 1500
_SSML_TAG = re.compile(r"<[^>]*>")


class NccoError(ValueError):
    """An NCCO Vonage would reject. The message names the action index and field."""


# --------------------------------------------------------------------------------------------
# endpoints (shared with the Voice API ``to`` list)

PHONE_NUMBER_PATTERN = r"^\d{7,15}$"


class OnAnswer(ApiModel):
    """NCCO run on the callee before they are joined to the caller."""

    url: Url
    ringbackTone: Url | None = None
    ringback: Url | None = Field(None, description="Older spelling of ringbackTone.")


class PhoneEndpoint(ApiModel):
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("type",)
    type: Literal["phone"] = "phone"
    number: Annotated[str, Field(pattern=PHONE_NUMBER_PATTERN)]
    dtmfAnswer: Annotated[str, Field(pattern=r"^[0-9*#p]+$")] | None = None
    onAnswer: OnAnswer | None = None
    shaken: NonEmptyStr | None = Field(None, description="STIR/SHAKEN Identity header.")


class AppEndpoint(ApiModel):
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("type",)
    type: Literal["app"] = "app"
    user: NonEmptyStr


class WebsocketAuthorization(ApiModel):
    type: Literal["vonage", "custom"] = "vonage"
    value: Annotated[str, Field(max_length=8191, pattern=r"^[\x20-\x7e]*$")] | None = None

    @model_validator(mode="after")
    def _custom_needs_value(self) -> WebsocketAuthorization:
        if self.type == "custom" and not self.value:
            raise ValueError("value: is required when type is 'custom'")
        return self


def _headers_size(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(orjson.dumps(value)) > 512:
        raise ValueError("must be at most 512 bytes as JSON")
    return value


class WebsocketEndpoint(ApiModel):
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("type",)
    type: Literal["websocket"] = "websocket"
    uri: Annotated[str, Field(pattern=r"^wss?://.+")]
    content_type: Literal["audio/l16;rate=8000", "audio/l16;rate=16000", "audio/l16;rate=24000"] = (
        Field(alias="content-type")
    )
    headers: dict[str, Any] | None = None
    authorization: WebsocketAuthorization | None = None

    @field_validator("headers")
    @classmethod
    def _size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _headers_size(value)


class SipEndpoint(ApiModel):
    """A SIP URI (``;transport=tls`` / ``;media=srtp`` allowed), or a Java-style trunk domain+user."""

    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("type",)
    type: Literal["sip"] = "sip"
    uri: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^sips?:.+")] | None = None
    domain: NonEmptyStr | None = None
    user: NonEmptyStr | None = None
    headers: dict[str, Any] | None = Field(None, description="Sent as X-<key>: <value>.")
    standardHeaders: dict[str, str] | None = Field(None, description="e.g. User-to-User.")

    @model_validator(mode="after")
    def _uri_or_domain(self) -> SipEndpoint:
        if self.uri is None and self.domain is None:
            raise ValueError("uri: is required (or domain)")
        if self.uri is not None and self.domain is not None:
            raise ValueError("uri: not allowed together with domain")
        return self


class VbcEndpoint(ApiModel):
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("type",)
    type: Literal["vbc"] = "vbc"
    extension: Annotated[NumericStr, Field(min_length=1)]


ConnectEndpoint = Annotated[
    PhoneEndpoint | AppEndpoint | WebsocketEndpoint | SipEndpoint | VbcEndpoint,
    Field(discriminator="type"),
]

ENDPOINT_MODELS: tuple[type[ApiModel], ...] = (
    PhoneEndpoint,
    AppEndpoint,
    WebsocketEndpoint,
    SipEndpoint,
    VbcEndpoint,
)


class AdvancedMachineDetection(ApiModel):
    """Chargeable AMD; overrides ``machineDetection`` (DIGEST §2.1). Keys are snake_case on the wire."""

    behavior: Literal["continue", "hangup"] | None = None
    mode: Literal["default", "detect", "detect_beep"] | None = None
    beep_timeout: Annotated[int, Field(ge=30, le=120), NO_BOOL] | None = None


# --------------------------------------------------------------------------------------------
# actions


class _Action(ApiModel):
    # ``action`` is always part of the wire form, even when the model was built in Python.
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("action",)


_Level = Annotated[int | float, number_range(-1, 1), number_schema(-1, 1)]
_Loop = Annotated[int, Field(ge=0), NO_BOOL]


class TranscriptionSettings(ApiModel):
    """Recording transcription (Developer Preview); ``{}`` means defaults."""

    language: NonEmptyStr | None = None
    eventUrl: UrlList | None = None
    eventMethod: HttpMethod | None = None
    sentimentAnalysis: bool | None = None


class RecordAction(_Action):
    action: Literal["record"] = "record"
    format: Literal["mp3", "wav", "ogg"] | None = None
    split: Literal["conversation"] | None = None
    channels: Annotated[int, Field(ge=1, le=32), NO_BOOL] | None = None
    endOnSilence: Annotated[int, Field(ge=3, le=10), NO_BOOL] | None = None
    endOnKey: Annotated[str, Field(pattern=r"^[0-9*#]$")] | None = None
    timeOut: Annotated[int, Field(ge=3, le=7200), NO_BOOL] | None = None
    beepStart: bool | None = None
    eventUrl: UrlList | None = None
    eventMethod: HttpMethod | None = None
    transcription: TranscriptionSettings | None = None

    @model_validator(mode="after")
    def _channels_need_split(self) -> RecordAction:
        if self.channels is not None and self.channels > 1 and self.split is None:
            raise ValueError("channels: more than 1 needs split: 'conversation'")
        return self


class ConversationAction(_Action):
    action: Literal["conversation"] = "conversation"
    name: NonEmptyStr
    musicOnHoldUrl: UrlList | None = None
    startOnEnter: bool | None = None
    endOnExit: bool | None = None
    record: bool | None = None
    canSpeak: list[NonEmptyStr] | None = None
    canHear: list[NonEmptyStr] | None = None
    mute: bool | None = None
    eventUrl: UrlList | None = None
    eventMethod: HttpMethod | None = None
    transcription: TranscriptionSettings | None = None

    @model_validator(mode="after")
    def _mute_xor_can_speak(self) -> ConversationAction:
        if self.mute is not None and self.canSpeak is not None:
            raise ValueError("mute: cannot be combined with canSpeak")
        return self


class ConnectAction(_Action):
    action: Literal["connect"] = "connect"
    endpoint: Annotated[list[ConnectEndpoint], Field(min_length=1, max_length=1)]
    from_: Annotated[str, Field(pattern=PHONE_NUMBER_PATTERN)] | None = Field(
        None, alias="from", description="E.164 digits, one of your Vonage numbers."
    )
    randomFromNumber: bool | None = None
    eventType: Literal["synchronous"] | None = None
    timeout: Annotated[int, Field(ge=1), NO_BOOL] | None = None
    limit: Annotated[int, Field(ge=1, le=7200), NO_BOOL] | None = None
    machineDetection: Literal["continue", "hangup"] | None = None
    advancedMachineDetection: AdvancedMachineDetection | None = None
    eventUrl: UrlList | None = None
    eventMethod: HttpMethod | None = None
    ringbackTone: Url | None = None

    @model_validator(mode="after")
    def _from_xor_random(self) -> ConnectAction:
        if self.from_ is not None and self.randomFromNumber:
            raise ValueError("from: not allowed together with randomFromNumber")
        return self


def talk_length(text: str) -> int:
    """Characters Vonage counts against the 1500 limit: SSML tags are not counted."""
    if text.lstrip().startswith("<speak"):
        return len(_SSML_TAG.sub("", text))
    return len(text)


class TalkAction(_Action):
    action: Literal["talk"] = "talk"
    text: NonEmptyStr
    bargeIn: bool | None = None
    loop: _Loop | None = None
    level: _Level | None = None
    language: NonEmptyStr | None = None
    style: Annotated[int, Field(ge=0), NO_BOOL] | None = None
    premium: bool | None = None
    voiceName: NonEmptyStr | None = Field(None, description="Deprecated; use language+style.")

    @field_validator("text")
    @classmethod
    def _text_limit(cls, text: str) -> str:
        stripped = text.lstrip()
        if stripped.startswith("<speak") and not text.rstrip().endswith("</speak>"):
            raise ValueError("SSML must be wrapped in <speak>...</speak>")
        n = talk_length(text)
        if n > MAX_TALK_CHARS:
            raise ValueError(f"must be at most {MAX_TALK_CHARS} characters excluding SSML, got {n}")
        return text

    @model_validator(mode="after")
    def _tts(self) -> TalkAction:
        if self.language is not None or self.style is not None or self.premium:
            try:
                check_language_style(self.language, self.style, self.premium)
            except TtsError as exc:
                raise ValueError(f"{exc.field}: {exc}") from None
        return self


class StreamAction(_Action):
    action: Literal["stream"] = "stream"
    streamUrl: Annotated[list[Url], Field(min_length=1, max_length=1)]
    level: _Level | None = None
    bargeIn: bool | None = None
    loop: _Loop | None = None


class DtmfSettings(ApiModel):
    timeOut: Annotated[int, Field(ge=0, le=10), NO_BOOL] | None = None
    maxDigits: Annotated[int, Field(ge=1, le=20), NO_BOOL] | None = None
    submitOnHash: bool | None = None


class SpeechSettings(ApiModel):
    uuid: Annotated[list[NonEmptyStr], Field(min_length=1, max_length=1)] | None = None
    endOnSilence: Annotated[int | float, number_range(0.4, 10), number_schema(0.4, 10)] | None = (
        None
    )
    language: NonEmptyStr | None = None
    context: list[str] | None = None
    startTimeout: Annotated[int, Field(ge=1, le=60), NO_BOOL] | None = None
    maxDuration: Annotated[int, Field(ge=1, le=60), NO_BOOL] | None = None
    saveAudio: bool | None = None
    sensitivity: Annotated[int, Field(ge=0, le=100), NO_BOOL] | None = None


class InputAction(_Action):
    """Collect DTMF and/or speech.

    ``type`` is required by the current docs; older NCCOs (still in Vonage's examples) omit it and
    put ``submitOnHash``/``timeOut``/``maxDigits`` at the top level, meaning DTMF. Both are accepted.
    """

    action: Literal["input"] = "input"
    type: Annotated[list[Literal["dtmf", "speech"]], Field(min_length=1, max_length=2)] | None = (
        None
    )
    dtmf: DtmfSettings | None = None
    speech: SpeechSettings | None = None
    eventUrl: UrlList | None = None
    eventMethod: HttpMethod | None = None
    mode: Literal["synchronous", "asynchronous"] | None = None
    # legacy top-level DTMF settings (NCCO schema / old docs)
    timeOut: Annotated[int, Field(ge=0, le=10), NO_BOOL] | None = None
    maxDigits: Annotated[int, Field(ge=1, le=20), NO_BOOL] | None = None
    submitOnHash: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> InputAction:
        if self.type is not None:
            if len(set(self.type)) != len(self.type):
                raise ValueError("type: must not repeat a value")
            if self.speech is not None and "speech" not in self.type:
                raise ValueError("speech: given but type does not include 'speech'")
            if self.dtmf is not None and "dtmf" not in self.type:
                raise ValueError("dtmf: given but type does not include 'dtmf'")
        elif self.speech is not None:
            raise ValueError("type: is required when speech settings are given")
        return self


class NotifyAction(_Action):
    action: Literal["notify"] = "notify"
    payload: dict[str, Any]
    eventUrl: UrlList
    eventMethod: HttpMethod | None = None


class WaitAction(_Action):
    action: Literal["wait"] = "wait"
    timeout: Annotated[int | float, number_range(0.1, 7200), number_schema(0.1, 7200)] | None = None


class PayPrompt(ApiModel):
    type: Literal["CardNumber", "ExpirationDate", "SecurityCode"]
    text: NonEmptyStr
    errors: dict[str, dict[str, str]] | None = None


class PayVoice(ApiModel):
    language: NonEmptyStr | None = None
    style: Annotated[int, Field(ge=0), NO_BOOL] | None = None


class PayAction(_Action):
    action: Literal["pay"] = "pay"
    amount: Annotated[int | float, number_range(gt=0), number_schema(gt=0)]
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")] | None = None
    eventUrl: UrlList | None = None
    prompts: list[PayPrompt] | None = None
    voice: PayVoice | None = None


class TransferAction(_Action):
    action: Literal["transfer"] = "transfer"
    conversationId: NonEmptyStr
    mute: bool | None = None
    canSpeak: list[NonEmptyStr] | None = None
    canHear: list[NonEmptyStr] | None = None


Action = Annotated[
    RecordAction
    | ConversationAction
    | ConnectAction
    | TalkAction
    | StreamAction
    | InputAction
    | NotifyAction
    | WaitAction
    | PayAction
    | TransferAction,
    Field(discriminator="action"),
]

ACTION_MODELS: tuple[type[ApiModel], ...] = (
    RecordAction,
    ConversationAction,
    ConnectAction,
    TalkAction,
    StreamAction,
    InputAction,
    NotifyAction,
    WaitAction,
    PayAction,
    TransferAction,
)

_ACTION_NAMES = tuple(m.model_fields["action"].default for m in ACTION_MODELS)


class Ncco(RootModel[Annotated[list[Action], Field(min_length=1)]]):
    """A whole NCCO. Cross-action rules (``bargeIn`` needs a following ``input``) live here."""

    @model_validator(mode="after")
    def _barge_in_needs_input(self) -> Ncco:
        actions = self.root
        for i, act in enumerate(actions):
            if not isinstance(act, TalkAction | StreamAction) or act.bargeIn is not True:
                continue
            nxt = next(
                (
                    (j, a)
                    for j, a in enumerate(actions[i + 1 :], start=i + 1)
                    if not isinstance(a, TalkAction | StreamAction)
                ),
                None,
            )
            if nxt is None or not isinstance(nxt[1], InputAction):
                found = "nothing" if nxt is None else f"action[{nxt[0]}] ({nxt[1].action})"
                raise ValueError(
                    f"action[{i}] ({act.action}).bargeIn: true must be followed by an input "
                    f"action, found {found}"
                )
        return self

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __getitem__(self, index: int) -> Any:
        return self.root[index]

    def to_list(self) -> list[dict[str, Any]]:
        """JSON-ready dicts with Vonage's field names; unset fields (and defaults) left out."""
        return [a.model_dump(mode="json", by_alias=True, exclude_unset=True) for a in self.root]

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_list())

    @classmethod
    def of(cls, actions: Sequence[Any]) -> Ncco:
        """Build from action models and/or dicts, with the same checks and errors as parsing."""
        return parse_ncco(
            [
                a.model_dump(by_alias=True, exclude_unset=True) if isinstance(a, ApiModel) else a
                for a in actions
            ]
        )


_FIELD_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]*: ")
_ENDPOINT_TAGS = frozenset({"phone", "app", "websocket", "sip", "vbc"})


def _loc_text(loc: Sequence[Any]) -> str:
    """``("endpoint", 0, "phone", "number")`` -> ``endpoint[0].number`` (union tags dropped)."""
    out = ""
    prev_index = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            prev_index = True
            continue
        if prev_index and part in _ENDPOINT_TAGS:
            prev_index = False
            continue
        out += f".{part}" if out else str(part)
        prev_index = False
    return out


def _ncco_message(exc: ValidationError, data: Any) -> str:
    errors = exc.errors(include_url=False)
    parts: list[str] = []
    for err in errors[:3]:
        loc = list(err.get("loc", ()))
        if loc and isinstance(loc[0], int):
            index = int(loc.pop(0))
            name = loc.pop(0) if loc and loc[0] in _ACTION_NAMES else None
            if name is None and isinstance(data, list) and index < len(data):
                item = data[index]
                raw = item.get("action") if isinstance(item, dict) else None
                name = raw if isinstance(raw, str) else None
            head = f"action[{index}]" + (f" ({name})" if name else "")
            kind = err.get("type")
            field = _loc_text(loc)
            if kind in {"union_tag_invalid", "union_tag_not_found"}:
                ctx = err.get("ctx") or {}
                key = "action" if not loc else str(ctx.get("discriminator", "type")).strip("'")
                where = f"{head}{'.' + field if field else ''}.{key}"
                if kind == "union_tag_not_found":
                    parts.append(f"{where}: is required")
                else:
                    what = "action" if not loc else key
                    parts.append(
                        f"{where}: unknown {what} {ctx.get('tag')!r} "
                        f"(expected {ctx.get('expected_tags')})"
                    )
                continue
            text = error_text(err)
            if _FIELD_PREFIX.match(text):
                # model-level rule whose message starts with the field it is about
                field, _, text = f"{field}.{text}".lstrip(".").partition(": ")
            where = f"{head}{field}" if field.startswith("[") or not field else f"{head}.{field}"
            parts.append(f"{where}: {text}")
        else:
            text = error_text(err)
            # Whole-NCCO rules (bargeIn) already name the action index in their message.
            parts.append(text if text.startswith("action[") else f"ncco: {text}")
    if len(errors) > 3:
        parts.append(f"(+{len(errors) - 3} more)")
    return "; ".join(parts)


def parse_ncco(data: Any) -> Ncco:
    """Validate an NCCO given as JSON-ready data (a list of action dicts) or JSON bytes/str."""
    if isinstance(data, bytes | bytearray | str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise NccoError(f"ncco: not valid JSON ({exc})") from None
    if isinstance(data, Ncco):
        return data
    if not isinstance(data, list):
        raise NccoError(f"ncco: must be a JSON array of actions, not {type(data).__name__}")
    try:
        return Ncco.model_validate(data)
    except ValidationError as exc:
        raise NccoError(_ncco_message(exc, data)) from None
