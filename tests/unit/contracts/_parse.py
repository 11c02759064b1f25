"""Parse a JSON body as a named contract the way production code does.

Webhooks go through ``classify_webhook`` (with the endpoint kind for the ones whose body alone is
ambiguous), NCCOs through ``parse_ncco``, everything else through ``model_validate``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from contracts import webhooks
from contracts.envelopes import ENVELOPES
from contracts.ncco import Ncco, parse_ncco
from contracts.schema import all_models

#: The endpoint a webhook model arrives on, where the body alone cannot tell.
KIND_HINT: dict[str, str] = {
    "AnswerWebhook": "answer",
    "NotifyWebhook": "notify",
    "FallbackWebhook": "fallback",
    "RecordEvent": "recording",
    "TranscriptionEvent": "recording",
    "InputEvent": "input",
}

ENVELOPE_NAMES = frozenset(m.__name__ for m in ENVELOPES)
WEBHOOK_NAMES = frozenset(m.__name__ for m in webhooks.WEBHOOK_MODELS)


def vonage_models() -> dict[str, type[BaseModel]]:
    # Our records (campaign, agents, changelogs) and the campaign file.
    ours = {
        "contracts.agent_calls",
        "contracts.agents",
        "contracts.campaign",
        "contracts.changelog",
    }
    return {
        k: v
        for k, v in all_models().items()
        if k not in ENVELOPE_NAMES and v.__module__ not in ours
    }


def parse_as(name: str, body: Any) -> BaseModel:
    model = all_models()[name]
    if name in WEBHOOK_NAMES:
        parsed = webhooks.classify_webhook(body, KIND_HINT.get(name, "event"))
        assert type(parsed) is model, f"classified as {type(parsed).__name__}, expected {name}"
        return parsed
    if model is Ncco:
        return parse_ncco(body)
    return model.model_validate(body)


def wire(obj: BaseModel) -> Any:
    """The JSON form we would send/store: aliases, unset fields left out."""
    if isinstance(obj, Ncco):
        return obj.to_list()
    return obj.model_dump(mode="json", by_alias=True, exclude_unset=True)
