"""Application API v2 (``/v2/applications``, Basic auth) bodies and responses (DIGEST §2.3).

One set of models serves requests and responses: the API echoes the request shape back with
``id``, ``keys`` and ``_links`` added. Unknown members are kept (Vonage keeps adding capabilities:
``video``, ``verify``, ``authenticate_inbound_media``), but every limit the docs give for the voice
capability is enforced, because a wrong timeout there silently changes how Vonage retries us.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, model_validator

from contracts._base import NO_BOOL, HttpMethod, NonEmptyStr, VonageModel

__all__ = [
    "VOICE_REGIONS",
    "Application",
    "ApplicationCreateRequest",
    "ApplicationKeys",
    "ApplicationLinks",
    "ApplicationListEmbedded",
    "ApplicationListQuery",
    "ApplicationListResponse",
    "ApplicationUpdateRequest",
    "Capabilities",
    "MessagesCapability",
    "Privacy",
    "RtcCapability",
    "VoiceCapability",
    "VoiceWebhook",
    "VoiceWebhooks",
    "WebhookAddress",
]

VoiceRegion = Literal["na-east", "na-west", "eu-west", "eu-east", "apac-sng", "apac-australia"]
VOICE_REGIONS: tuple[str, ...] = VoiceRegion.__args__  # type: ignore[attr-defined]


def _address(value: Any) -> Any:
    # "" clears a webhook (seen in Vonage's own update example); otherwise an absolute URL.
    if isinstance(value, str) and value and "://" not in value:
        raise ValueError("must be an absolute URL or empty")
    return value


Address = Annotated[str, BeforeValidator(_address)]


class WebhookAddress(VonageModel):
    """A webhook target without timeouts (rtc, messages, verify)."""

    address: Address
    http_method: HttpMethod | None = None


class VoiceWebhook(VonageModel):
    """A voice webhook target. ``connection_timeout`` (APP 2.1) is read as ``connect_timeout``."""

    address: Address
    http_method: HttpMethod | None = None
    connect_timeout: Annotated[int, Field(ge=300, le=1000), NO_BOOL] | None = Field(
        None,
        validation_alias=AliasChoices("connect_timeout", "connection_timeout"),
        serialization_alias="connect_timeout",
        description="ms; Vonage makes one more attempt after a timeout.",
    )
    socket_timeout: Annotated[int, Field(ge=1000, le=10000), NO_BOOL] | None = Field(
        None, description="ms; answer/fallback max 5000, event max 10000."
    )


class VoiceWebhooks(VonageModel):
    answer_url: VoiceWebhook | None = None
    fallback_answer_url: VoiceWebhook | None = None
    event_url: VoiceWebhook | None = None

    @model_validator(mode="after")
    def _answer_socket_limit(self) -> VoiceWebhooks:
        for name in ("answer_url", "fallback_answer_url"):
            hook = getattr(self, name)
            if hook is not None and hook.socket_timeout is not None and hook.socket_timeout > 5000:
                raise ValueError(f"{name}.socket_timeout: must be <= 5000")
        return self


class VoiceCapability(VonageModel):
    webhooks: VoiceWebhooks | None = None
    signed_callbacks: bool | None = None
    conversations_ttl: Annotated[int, Field(ge=1, le=9000), NO_BOOL] | None = Field(
        None, description="Hours a named conversation stays active."
    )
    leg_persistence_time: Annotated[int, Field(ge=1, le=31), NO_BOOL] | None = Field(
        None, description="Days leg records are kept."
    )
    region: VoiceRegion | None = None


class RtcWebhooks(VonageModel):
    event_url: WebhookAddress | None = None


class RtcCapability(VonageModel):
    webhooks: RtcWebhooks | None = None
    signed_callbacks: bool | None = None


class MessagesWebhooks(VonageModel):
    inbound_url: WebhookAddress | None = None
    status_url: WebhookAddress | None = None


class MessagesCapability(VonageModel):
    webhooks: MessagesWebhooks | None = None
    version: str | None = None
    authenticate_inbound_media: bool | None = None


class VbcCapability(VonageModel):
    """Must be an empty object (zero-rated VBC calls)."""

    @model_validator(mode="after")
    def _empty(self) -> VbcCapability:
        if self.__pydantic_extra__:
            raise ValueError("must be an empty object")
        return self


class Capabilities(VonageModel):
    voice: VoiceCapability | None = None
    rtc: RtcCapability | None = None
    messages: MessagesCapability | None = None
    vbc: VbcCapability | None = None
    verify: dict[str, Any] | None = None
    video: dict[str, Any] | None = None


class ApplicationKeys(VonageModel):
    public_key: str | None = None
    private_key: str | None = Field(None, description="Only in the create response; keep secret.")


class Privacy(VonageModel):
    improve_ai: bool | None = None


class _HalHref(VonageModel):
    href: str


class ApplicationLinks(VonageModel):
    self_: _HalHref | None = Field(None, alias="self")
    first: _HalHref | None = None
    last: _HalHref | None = None
    next: _HalHref | None = None
    prev: _HalHref | None = None


class ApplicationCreateRequest(VonageModel):
    """``POST /v2/applications``."""

    name: NonEmptyStr
    keys: ApplicationKeys | None = None
    capabilities: Capabilities | None = None
    privacy: Privacy | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class ApplicationUpdateRequest(ApplicationCreateRequest):
    """``PUT /v2/applications/{id}``: the full body (``name`` required). Read-only ``id`` and
    ``_links`` may be echoed back and are ignored by Vonage."""

    id: str | None = None
    links: ApplicationLinks | None = Field(None, alias="_links")


class Application(VonageModel):
    """An application as returned by create (201, with ``keys.private_key``), get, update, list."""

    id: NonEmptyStr
    name: str
    keys: ApplicationKeys | None = None
    capabilities: Capabilities | None = None
    privacy: Privacy | None = None
    links: ApplicationLinks | None = Field(None, alias="_links")


class ApplicationListQuery(VonageModel):
    page_size: Annotated[int, Field(ge=1, le=100), NO_BOOL] | None = None
    page: Annotated[int, Field(ge=1), NO_BOOL] | None = None

    def to_params(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


class ApplicationListEmbedded(VonageModel):
    applications: list[Application] = Field(default_factory=list)


class ApplicationListResponse(VonageModel):
    """``GET /v2/applications`` (pages start at 1)."""

    page_size: int | None = None
    page: int | None = None
    total_items: int | None = None
    total_pages: int | None = None
    embedded: ApplicationListEmbedded | None = Field(None, alias="_embedded")
    links: ApplicationLinks | None = Field(None, alias="_links")

    @property
    def applications(self) -> list[Application]:
        return self.embedded.applications if self.embedded else []
