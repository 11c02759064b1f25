"""The catalogue of contracts whose JSON Schemas other services get, and one schema's document.

``orchestrator schema export DIR`` (``orchestrator.apidocs``) writes one file per model named here,
plus the dial ledger's entry (defined in the dispatcher, which this package must not import),
with the topic map, the AsyncAPI and the OpenAPI documents beside them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from contracts import (
    agent_calls,
    agents,
    application_api,
    campaign,
    changelog,
    errors,
    ncco,
    voice_api,
    webhooks,
)
from contracts.envelopes import ENVELOPES

__all__ = ["JSON_SCHEMA_DIALECT", "all_models", "schema_document", "summary"]

#: Pydantic writes JSON Schema 2020-12; each exported file says so in ``$schema``.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_VOICE_API: tuple[type[BaseModel], ...] = (
    voice_api.CreateCallRequest,
    voice_api.CreateCallResponse,
    voice_api.FromEndpoint,
    voice_api.Call,
    voice_api.CallEndpoint,
    voice_api.ListCallsQuery,
    voice_api.ListCallsResponse,
    voice_api.UpdateCallRequest,
    voice_api.TransferRequest,
    voice_api.HangupRequest,
    voice_api.MuteRequest,
    voice_api.UnmuteRequest,
    voice_api.EarmuffRequest,
    voice_api.UnearmuffRequest,
    voice_api.StartTalkRequest,
    voice_api.StartStreamRequest,
    voice_api.DtmfRequest,
    voice_api.DtmfSubscribeRequest,
    voice_api.CallActionResponse,
)

_APPLICATION_API: tuple[type[BaseModel], ...] = (
    application_api.ApplicationCreateRequest,
    application_api.ApplicationUpdateRequest,
    application_api.Application,
    application_api.ApplicationListQuery,
    application_api.ApplicationListResponse,
)

_ERRORS: tuple[type[BaseModel], ...] = (errors.ProblemDetails,)

#: The campaign file, the contact record, and what the controller reads and writes on Kafka.
_CAMPAIGN: tuple[type[BaseModel], ...] = (
    campaign.CampaignSpec,
    campaign.ContactRow,
    campaign.CampaignControl,
    campaign.CampaignTick,
    campaign.CampaignProgress,
    campaign.ContactResult,
)

#: What other services publish to change an agent's state, and the agent's changelog value.
_AGENTS: tuple[type[BaseModel], ...] = (
    agents.AgentCommand,
    agents.AgentRecord,
    agent_calls.AgentCall,
    agent_calls.AgentNotice,
    agent_calls.AgentsTick,
    agent_calls.LegMilestone,
)

_STATE_RECORDS: tuple[type[BaseModel], ...] = (
    changelog.VoiceStateRecord,
    changelog.CampaignStateRecord,
    agent_calls.AgentPoolRecord,
)


def all_models() -> dict[str, type[BaseModel]]:
    """Every contract of this package by name: our records, the campaign file, Vonage's models."""
    groups: tuple[tuple[type[BaseModel], ...], ...] = (
        ENVELOPES,
        _CAMPAIGN,
        _AGENTS,
        _STATE_RECORDS,
        webhooks.WEBHOOK_MODELS,
        (ncco.Ncco, ncco.PayPrompt),
        ncco.ACTION_MODELS,
        ncco.ENDPOINT_MODELS,
        _VOICE_API,
        _APPLICATION_API,
        _ERRORS,
    )
    out: dict[str, type[BaseModel]] = {}
    for group in groups:
        for model in group:
            name = model.__name__
            if name in out and out[name] is not model:
                raise RuntimeError(f"two contracts named {name}")
            out[name] = model
    return out


def summary(model: type[BaseModel]) -> str:
    """The first paragraph of the model's docstring, on one line."""
    doc = (model.__doc__ or "").strip()
    return " ".join(doc.split("\n\n", 1)[0].split()) if doc else ""


def schema_document(name: str, model: type[BaseModel], schema_id: str) -> dict[str, Any]:
    """The model's JSON Schema as a standalone document: ``$schema``, ``$id`` and a title."""
    schema = model.model_json_schema(by_alias=True)
    schema.setdefault("title", name)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id, **schema}
