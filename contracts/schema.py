"""JSON Schema export of every contract, so other services can code against our topics and so the
Vonage shapes we accept are reviewable without reading Python.

``orchestrator schema export DIR`` calls :func:`export_schemas`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts import application_api, errors, ncco, voice_api, webhooks
from contracts.envelopes import ENVELOPES

__all__ = ["all_models", "export_schemas"]

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


def all_models() -> dict[str, type[BaseModel]]:
    """Every exported contract by name: our Kafka envelopes and every Vonage model."""
    groups: tuple[tuple[type[BaseModel], ...], ...] = (
        ENVELOPES,
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


def _summary(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return doc.split("\n\n", 1)[0].replace("\n", " ") if doc else ""


def export_schemas(directory: Path) -> list[Path]:
    """Write ``<Name>.schema.json`` per model and an ``index.json``; return the schema paths.

    Output is deterministic (sorted keys), so a diff of the directory is a diff of the contracts.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index: dict[str, Any] = {}
    for name, model in sorted(all_models().items()):
        schema = model.model_json_schema(by_alias=True)
        schema.setdefault("title", name)
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
        index[name] = {
            "file": path.name,
            "module": model.__module__,
            "description": _summary(model),
        }
    (directory / "index.json").write_text(
        json.dumps({"schemas": index}, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return written
