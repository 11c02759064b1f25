"""Voice API v1 requests we send and responses we read (DIGEST §2.1).

Requests are strict (unknown fields refused, limits enforced before a request leaves the process);
responses are tolerant (extra fields kept, money and times normalised as in the webhooks).
The request models dump to the wire form with :meth:`ApiModel.to_json_dict`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, RootModel, field_validator, model_validator

from contracts._base import (
    NO_BOOL,
    ApiModel,
    HttpMethod,
    NonEmptyStr,
    OptDuration,
    OptMoney,
    OptTime,
    Url,
    UrlList,
    VonageModel,
)
from contracts.ncco import (
    AdvancedMachineDetection,
    AppEndpoint,
    ConnectEndpoint,
    Ncco,
    PhoneEndpoint,
    SipEndpoint,
    VbcEndpoint,
    WebsocketEndpoint,
    talk_length,
)
from contracts.tts import TtsError, check_language_style

__all__ = [
    "CALL_STATUSES",
    "AppEndpoint",
    "Call",
    "CallActionResponse",
    "CallEndpoint",
    "CreateCallRequest",
    "CreateCallResponse",
    "DtmfRequest",
    "DtmfSubscribeRequest",
    "EarmuffRequest",
    "FromEndpoint",
    "HalLink",
    "HangupRequest",
    "ListCallsEmbedded",
    "ListCallsLinks",
    "ListCallsQuery",
    "ListCallsResponse",
    "MuteRequest",
    "PhoneEndpoint",
    "SipEndpoint",
    "StartStreamRequest",
    "StartTalkRequest",
    "TransferDestination",
    "TransferRequest",
    "UnearmuffRequest",
    "UnmuteRequest",
    "UpdateCallRequest",
    "VbcEndpoint",
    "WebsocketEndpoint",
]

CallStatus = Literal[
    "started",
    "ringing",
    "answered",
    "machine",
    "human",
    "completed",
    "busy",
    "cancelled",
    "failed",
    "rejected",
    "timeout",
    "unanswered",
]
CALL_STATUSES: tuple[str, ...] = CallStatus.__args__  # type: ignore[attr-defined]

# --------------------------------------------------------------------------------------------
# create call


class FromEndpoint(ApiModel):
    """Caller id: one of the account's numbers (E.164 digits) or, since OAS 1.10, a SIP URI."""

    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("type",)

    type: Literal["phone"] = "phone"
    number: Annotated[str, Field(pattern=r"^(\d{7,15}|sips?:\S+)$")]


class CreateCallRequest(ApiModel):
    """``POST /v1/calls``: ``ncco`` XOR ``answer_url``; ``from`` XOR ``random_from_number``."""

    to: Annotated[list[ConnectEndpoint], Field(min_length=1)]
    from_: FromEndpoint | None = Field(None, alias="from")
    random_from_number: bool | None = None
    ncco: Ncco | None = None
    answer_url: UrlList | None = None
    answer_method: HttpMethod | None = None
    event_url: UrlList | None = None
    event_method: HttpMethod | None = None
    machine_detection: Literal["continue", "hangup"] | None = None
    advanced_machine_detection: AdvancedMachineDetection | None = None
    length_timer: Annotated[int, Field(ge=1, le=86400), NO_BOOL] | None = None
    ringing_timer: Annotated[int, Field(ge=1, le=120), NO_BOOL] | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> CreateCallRequest:
        if (self.ncco is None) == (self.answer_url is None):
            raise ValueError("give exactly one of ncco or answer_url")
        if self.answer_method is not None and self.answer_url is None:
            raise ValueError("answer_method needs answer_url")
        if self.from_ is not None and self.random_from_number:
            raise ValueError("from and random_from_number are mutually exclusive")
        if self.from_ is None and not self.random_from_number:
            raise ValueError("give from, or random_from_number: true")
        return self


class CreateCallResponse(VonageModel):
    """``201`` body of ``POST /v1/calls``."""

    uuid: NonEmptyStr
    status: str | None = None
    direction: Literal["outbound", "inbound"] | None = None
    conversation_uuid: NonEmptyStr | None = None


# --------------------------------------------------------------------------------------------
# call object / list


class HalLink(VonageModel):
    href: str


class CallLinks(VonageModel):
    self_: HalLink | None = Field(None, alias="self")


class CallEndpoint(VonageModel):
    """An endpoint as Vonage reports it in a call object (any type; unknown keys kept)."""

    type: str | None = None
    number: str | None = None
    uri: str | None = None
    user: str | None = None
    extension: str | None = None


class Call(VonageModel):
    """``GET /v1/calls/{uuid}`` and each item of the list. Money/duration only once completed."""

    links: CallLinks | None = Field(None, alias="_links")
    uuid: NonEmptyStr
    conversation_uuid: str | None = None
    to: CallEndpoint | None = None
    from_: CallEndpoint | None = Field(None, alias="from")
    status: CallStatus | None = None
    direction: Literal["outbound", "inbound"] | None = None
    rate: OptMoney = None
    price: OptMoney = None
    duration: OptDuration = None
    start_time: OptTime = None
    end_time: OptTime = None
    network: str | None = None


class ListCallsQuery(ApiModel):
    """Query of ``GET /v1/calls``; :meth:`to_params` gives the query string values."""

    status: CallStatus | None = None
    date_start: OptTime = None
    date_end: OptTime = None
    page_size: Annotated[int, Field(ge=1, le=100), NO_BOOL] | None = None
    record_index: Annotated[int, Field(ge=0), NO_BOOL] | None = None
    order: Literal["asc", "desc"] | None = None
    conversation_uuid: NonEmptyStr | None = None

    def to_params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self.model_dump(exclude_none=True).items():
            if hasattr(value, "isoformat"):
                out[key] = value.isoformat().replace("+00:00", "Z")
            else:
                out[key] = str(value)
        return out


class ListCallsLinks(VonageModel):
    self_: HalLink | None = Field(None, alias="self")
    first: HalLink | None = None
    last: HalLink | None = None
    next: HalLink | None = None
    prev: HalLink | None = None


class ListCallsEmbedded(VonageModel):
    calls: list[Call] = Field(default_factory=list)


class ListCallsResponse(VonageModel):
    """HAL page of calls."""

    count: int | None = None
    page_size: int | None = None
    record_index: int | None = None
    links: ListCallsLinks | None = Field(None, alias="_links")
    embedded: ListCallsEmbedded | None = Field(None, alias="_embedded")

    @property
    def calls(self) -> list[Call]:
        return self.embedded.calls if self.embedded else []


# --------------------------------------------------------------------------------------------
# update call (PUT /v1/calls/{uuid}) -> 204


class TransferDestination(ApiModel):
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("type",)

    type: Literal["ncco"] = "ncco"
    ncco: Ncco | None = None
    url: UrlList | None = None

    @model_validator(mode="after")
    def _ncco_xor_url(self) -> TransferDestination:
        if (self.ncco is None) == (self.url is None):
            raise ValueError("give exactly one of ncco or url")
        return self


class _Update(ApiModel):
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ("action",)


class TransferRequest(_Update):
    action: Literal["transfer"] = "transfer"
    destination: TransferDestination


class HangupRequest(_Update):
    action: Literal["hangup"] = "hangup"


class MuteRequest(_Update):
    action: Literal["mute"] = "mute"


class UnmuteRequest(_Update):
    action: Literal["unmute"] = "unmute"


class EarmuffRequest(_Update):
    action: Literal["earmuff"] = "earmuff"


class UnearmuffRequest(_Update):
    action: Literal["unearmuff"] = "unearmuff"


UpdateCallBody = Annotated[
    TransferRequest
    | HangupRequest
    | MuteRequest
    | UnmuteRequest
    | EarmuffRequest
    | UnearmuffRequest,
    Field(discriminator="action"),
]


class UpdateCallRequest(RootModel[UpdateCallBody]):
    """Any ``PUT /v1/calls/{uuid}`` body, chosen by ``action``."""

    def to_json_dict(self) -> dict[str, Any]:
        return self.root.to_json_dict()


# --------------------------------------------------------------------------------------------
# talk / stream / dtmf


def _level_str(value: Any) -> Any:
    # The REST API types level as a string ("0.4"); accept numbers too and keep a string.
    if isinstance(value, bool):
        raise ValueError("must be a number between -1 and 1")
    if isinstance(value, int | float):
        value = repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must be a number between -1 and 1") from None
        if not -1 <= number <= 1:
            raise ValueError("must be between -1 and 1")
    return value


LevelStr = Annotated[str, BeforeValidator(_level_str)]


class StartTalkRequest(ApiModel):
    """``PUT /v1/calls/{uuid}/talk``."""

    text: NonEmptyStr
    language: NonEmptyStr | None = None
    style: Annotated[int, Field(ge=0), NO_BOOL] | None = None
    premium: bool | None = None
    voice_name: NonEmptyStr | None = Field(None, description="Deprecated.")
    loop: Annotated[int, Field(ge=0), NO_BOOL] | None = None
    level: LevelStr | None = None

    @field_validator("text")
    @classmethod
    def _text_limit(cls, text: str) -> str:
        n = talk_length(text)
        if n > 1500:
            raise ValueError(f"must be at most 1500 characters excluding SSML, got {n}")
        return text

    @model_validator(mode="after")
    def _tts(self) -> StartTalkRequest:
        if self.language is not None or self.style is not None or self.premium is not None:
            try:
                check_language_style(self.language, self.style, self.premium)
            except TtsError as exc:
                raise ValueError(f"{exc.field}: {exc}") from None
        return self


class StartStreamRequest(ApiModel):
    """``PUT /v1/calls/{uuid}/stream``."""

    stream_url: Annotated[list[Url], Field(min_length=1)]
    loop: Annotated[int, Field(ge=0), NO_BOOL] | None = None
    level: LevelStr | None = None


class DtmfRequest(ApiModel):
    """``PUT /v1/calls/{uuid}/dtmf``; ``p`` is a 500 ms pause."""

    digits: Annotated[str, Field(pattern=r"^[0-9*#p]+$")]


class DtmfSubscribeRequest(ApiModel):
    """``PUT /v1/calls/{uuid}/input/dtmf`` (OAS 1.10): where asynchronous DTMF digits go."""

    event_url: Annotated[list[Url], Field(min_length=1, max_length=1)]


class CallActionResponse(VonageModel):
    """``200`` body of talk/stream/dtmf start and stop: ``{message, uuid}``."""

    message: str
    uuid: NonEmptyStr
