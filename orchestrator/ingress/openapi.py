"""The OpenAPI 3.1 document served at ``/openapi.json``.

Written out rather than generated from the routes, because the routes are plain Starlette and the
document is a contract other teams code against; the JSON Schemas of the bodies come from the
pydantic models, so they cannot drift from what the API accepts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from contracts.envelopes import CommandEnvelope
from orchestrator.ingress.control import CallState, CommandAccepted, CommandRequest, Problem

_REF = "#/components/schemas/{model}"


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF, mode="serialization")
        for name, sub in schema.pop("$defs", {}).items():
            out[name] = sub
        out[model.__name__] = schema
    return out


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Problem")}}},
    }


def _webhook_path(kind: str, ncco: bool) -> dict[str, Any]:
    ok: dict[str, Any] = {
        "204": {"description": "Stored on voice.events; nothing for Vonage to run."}
    }
    if ncco:
        ok["200"] = {
            "description": "Stored; the NCCO rendered from the declarative flow.",
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
            },
        }
    responses = {
        **ok,
        "400": _problem("Not a JSON object / bad path segment (counted, nothing stored)."),
        "401": _problem("Missing or invalid signature (reason counted)."),
        "413": _problem("Body over the size limit."),
        "422": _problem("Not a Vonage webhook of this kind (reason counted, nothing stored)."),
        "503": _problem("Not stored (broker down or slow): retry."),
    }
    op = {
        "summary": f"Vonage {kind} webhook",
        "description": (
            "Signed by Vonage (HS256 JWT in Authorization: Bearer). POST carries JSON; GET carries "
            "the payload in the query string."
        ),
        "security": [{"vonageSignature": []}],
        "responses": responses,
    }
    return {
        "get": {**op, "operationId": f"{kind}Get"},
        "post": {**op, "operationId": f"{kind}Post"},
    }


def build_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1/commands": {
            "post": {
                "operationId": "enqueueCommand",
                "summary": "Enqueue a call command onto voice.commands",
                "description": (
                    "Answers 202 once the broker acknowledged the command. create_call commands are "
                    "keyed by account (one partition owns the CPS budget), the rest by flow key. "
                    "command_id makes retries idempotent."
                ),
                "security": [{"controlToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": _REF.format(model="CommandRequest")}
                        }
                    },
                },
                "responses": {
                    "202": {
                        "description": "Stored on voice.commands.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(model="CommandAccepted")}
                            }
                        },
                    },
                    "400": _problem("Not JSON."),
                    "401": _problem("Missing or wrong bearer token."),
                    "403": _problem("Control API disabled (no CONTROL_API_TOKEN)."),
                    "413": _problem("Body too large."),
                    "422": _problem("Invalid command."),
                    "503": _problem("Broker unavailable: retry with the same command_id."),
                },
            }
        },
        "/v1/calls/{flow_key}": {
            "get": {
                "operationId": "getCallState",
                "summary": "Latest state the worker stored for a call flow (voice.state)",
                "security": [{"controlToken": []}],
                "parameters": [
                    {
                        "name": "flow_key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "call_ref of a call we originated, else conversation_uuid.",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The stored state.",
                        "content": {
                            "application/json": {"schema": {"$ref": _REF.format(model="CallState")}}
                        },
                    },
                    "401": _problem("Missing or wrong bearer token."),
                    "403": _problem("Control API disabled."),
                    "404": _problem(
                        "No state stored for this flow (unknown, or finished and evicted)."
                    ),
                    "503": _problem("Read model still loading."),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Process alive",
                "responses": {"200": {"description": "alive"}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Broker reachable and topics present",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format"}},
            }
        },
    }
    for kind, ncco in (
        ("answer", True),
        ("event", True),
        ("fallback", True),
        ("recording", False),
    ):
        paths[f"/webhooks/{kind}"] = _webhook_path(kind, ncco)
    for kind in ("answer", "event", "input", "notify", "fallback", "recording"):
        ncco = kind != "recording"
        item = _webhook_path(kind, ncco)
        for op in item.values():
            op["operationId"] += "Ref"
            op["parameters"] = [
                {
                    "name": "call_ref",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{1,128}$"},
                }
            ]
        paths[f"/webhooks/{kind}/{{call_ref}}"] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Voice orchestrator ingress",
            "version": "1",
            "description": (
                "Vonage webhooks (verified, stored on voice.events before the answer) and the "
                "control API. Webhook URLs may carry /{flow}/{step}[/{ctx}] after the call_ref; "
                "see docs/flows.md."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(
                CommandRequest, CommandAccepted, CallState, Problem, CommandEnvelope
            ),
            "securitySchemes": {
                "controlToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "CONTROL_API_TOKEN",
                },
                "vonageSignature": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Vonage signed webhook (HS256, payload_hash, iat, jti).",
                },
            },
        },
    }
