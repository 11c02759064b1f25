"""The OpenAPI 3.1 document served at ``/openapi.json``.

Written out rather than generated from the routes, because the routes are plain Starlette and the
document is a contract other teams code against; the JSON Schemas of the bodies come from the
pydantic models, so they cannot drift from what the API accepts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from contracts.agents import AGENT_ID_PATTERN
from contracts.call_refs import CALL_REF_PATTERN
from contracts.campaign import CampaignProgress, CampaignSpec, ContactResult
from contracts.envelopes import CommandEnvelope
from orchestrator.campaign.validate import CampaignValidation
from orchestrator.ingress.agents_api import AgentAccepted, AgentList, AgentStateRequest
from orchestrator.ingress.campaigns import CampaignAccepted, CampaignList, ControlAccepted
from orchestrator.ingress.control_api import CallState, CommandAccepted, CommandRequest
from orchestrator.web.responses import PROBLEM_JSON, Problem

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
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
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


def _json_ref(description: str, model: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_AUTH_PROBLEMS = {
    "401": _problem("Missing or wrong bearer token."),
    "403": _problem("Control API disabled."),
}


def _campaign_paths() -> dict[str, Any]:
    """``/v1/campaigns``: the CLI's campaign operations over HTTP (ingress/campaigns.py)."""
    security: list[dict[str, list[str]]] = [{"controlToken": []}]
    spec_ref = {"$ref": _REF.format(model="CampaignSpec")}
    control = {
        "post": {
            "operationId": "controlCampaign",
            "summary": "Pause (no new dials), resume, or cancel (unfinished contacts: cancelled)",
            "security": security,
            "parameters": [
                _NAME,
                {
                    "name": "action",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": ["pause", "resume", "cancel"]},
                },
            ],
            "responses": {
                "202": _json_ref("Stored on campaign.control.", "ControlAccepted"),
                **_AUTH_PROBLEMS,
                "404": _problem("No campaign of that name (or an unknown action)."),
                "503": _problem("Broker unavailable: retry."),
            },
        }
    }
    return {
        "/v1/campaigns": {
            "post": {
                "operationId": "startCampaign",
                "summary": "Validate a campaign spec and start it (campaign.control START)",
                "description": (
                    "The body is the campaign file as JSON (or YAML with Content-Type "
                    "application/yaml), or multipart/form-data: a part `spec` first, then one "
                    "`contacts` file (.csv or .jsonl) and up to 10 `dnc` files, streamed to "
                    "campaign.uploads. File paths in a spec are read only inside CONTACTS_DIR. "
                    "YAML aliases and nesting past 32 levels are refused. A campaign runs once: "
                    "a used name is 409. With ?dry_run=true nothing is written: the answer is "
                    "what `orchestrator campaign validate` reports (200 when the campaign may "
                    "start, 422 with each error's field, line or contact row otherwise), for a "
                    "multipart body too: its files are parsed as for a start (same limits and "
                    "400/413/422 refusals) and checked, not written to campaign.uploads."
                ),
                "security": security,
                "parameters": [
                    {
                        "name": "dry_run",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean", "default": False},
                        "description": (
                            "Validate only (any body a start takes, uploads included); nothing is "
                            "written or dialled."
                        ),
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": spec_ref},
                        "application/yaml": {"schema": spec_ref},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["spec"],
                                "properties": {
                                    "spec": {"type": "string", "format": "binary"},
                                    "contacts": {"type": "string", "format": "binary"},
                                    "dnc": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    },
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "200": _json_ref(
                        "dry_run: the campaign may start (warnings aside).", "CampaignValidation"
                    ),
                    "202": _json_ref("START stored on campaign.control.", "CampaignAccepted"),
                    "400": _problem("Not JSON / YAML."),
                    **_AUTH_PROBLEMS,
                    "409": _problem("A campaign of that name exists already."),
                    "413": _problem("Body or upload too large, or START too large for its topic."),
                    "422": {
                        "description": (
                            "Invalid spec (fields lists each invalid field), a contacts/DNC file "
                            "not readable inside CONTACTS_DIR, a bad upload line, or a flow "
                            "that renders no valid create-call request; with dry_run, the "
                            "validation report (application/json) when it found errors."
                        ),
                        "content": {
                            PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}},
                            "application/json": {
                                "schema": {"$ref": _REF.format(model="CampaignValidation")}
                            },
                        },
                    },
                    "503": _problem("Broker unavailable: retry."),
                },
            },
            "get": {
                "operationId": "listCampaigns",
                "summary": "Every campaign's progress, newest start first",
                "security": security,
                "responses": {
                    "200": _json_ref("Campaigns on campaign.state.", "CampaignList"),
                    **_AUTH_PROBLEMS,
                    "503": _problem("Broker unavailable: retry."),
                },
            },
        },
        "/v1/campaigns/{name}": {
            "get": {
                "operationId": "getCampaign",
                "summary": "Progress: dialed, in flight, dispositions, dials/min, ETA",
                "description": "The controller's latest progress on campaign.state, plus eta_s.",
                "security": security,
                "parameters": [_NAME],
                "responses": {
                    "200": _json_ref("Progress.", "CampaignProgress"),
                    **_AUTH_PROBLEMS,
                    "404": _problem("No campaign of that name (yet: the controller stores it)."),
                    "503": _problem("Broker unavailable: retry."),
                },
            }
        },
        "/v1/campaigns/{name}/{action}": control,
        "/v1/campaigns/{name}/results": {
            "get": {
                "operationId": "getCampaignResults",
                "summary": "One final result per contact (JSONL, or CSV by Accept / ?format=)",
                "security": security,
                "parameters": [
                    _NAME,
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["jsonl", "csv"]},
                        "description": "Default: csv if Accept names text/csv, else jsonl.",
                    },
                ],
                "responses": {
                    "200": {
                        "description": (
                            "Results so far (all of them once the campaign completed); the "
                            "count is in X-Result-Count."
                        ),
                        "content": {
                            "application/jsonl": {
                                "schema": {"$ref": _REF.format(model="ContactResult")}
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _problem("Unknown format."),
                    **_AUTH_PROBLEMS,
                    "404": _problem("No campaign of that name."),
                    "503": _problem("Broker unavailable: retry."),
                },
            }
        },
    }


def _agent_paths() -> dict[str, Any]:
    """``/v1/agents``: agents' states (ingress/agents_api.py)."""
    security: list[dict[str, list[str]]] = [{"controlToken": []}]
    return {
        "/v1/agents": {
            "get": {
                "operationId": "listAgents",
                "summary": "Every agent, their state and counters, as agents.state last holds them",
                "description": (
                    "The agent pool's record (written by the agents role at each checkpoint, a "
                    "fraction of a second behind), with the callers waiting for an agent and "
                    "the last logins refused (pool full)."
                ),
                "security": security,
                "responses": {
                    "200": _json_ref("The pool.", "AgentList"),
                    **_AUTH_PROBLEMS,
                    "503": _problem("Broker unavailable: retry."),
                },
            }
        },
        "/v1/agents/{agent_id}/state": {
            "put": {
                "operationId": "setAgentState",
                "summary": "Log an agent in (with the profile) or out, or mark them available "
                "or offline",
                "description": (
                    "Writes an AgentCommand with a fresh event id to agents.control (key = the "
                    "agent's id; other services may publish the same record there themselves). "
                    "logout and offline during a call take effect when the call ends; available "
                    "ends a wrap-up or a break early. A non-login action for an agent the pool "
                    "does not hold is 404; right after a login the pool may not show the agent "
                    "yet: retry."
                ),
                "security": security,
                "parameters": [
                    {
                        "name": "agent_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": AGENT_ID_PATTERN},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": _REF.format(model="AgentStateRequest")}
                        }
                    },
                },
                "responses": {
                    "202": _json_ref("Stored on agents.control.", "AgentAccepted"),
                    "400": _problem("Not JSON, or not an agent id."),
                    **_AUTH_PROBLEMS,
                    "404": _problem("No such agent in the pool (non-login actions)."),
                    "413": _problem("Body too large."),
                    "422": _problem("Invalid request (the field named)."),
                    "503": _problem("Broker unavailable: retry."),
                },
            }
        },
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
        **_campaign_paths(),
        **_agent_paths(),
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
                    "schema": {"type": "string", "pattern": CALL_REF_PATTERN},
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
                CommandRequest,
                CommandAccepted,
                CallState,
                Problem,
                CommandEnvelope,
                CampaignSpec,
                CampaignAccepted,
                ControlAccepted,
                CampaignProgress,
                CampaignList,
                CampaignValidation,
                ContactResult,
                AgentStateRequest,
                AgentAccepted,
                AgentList,
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
