"""(b) What we serialise validates against Vonage's official specs, where those are current.

- NCCOs against ``spec/ncco-schema.json`` (draft-04). That schema is stale (DIGEST §9.18/§9.19/
  §9.11), so :func:`nschema_view` removes exactly the stale parts before validating, each with the
  reason; everything else must validate.
- Create-call, update-call, talk/stream/dtmf bodies against the component schemas of
  ``spec/voice.yml`` (OAS 1.3.7), with the spec's own defects patched in :func:`voice_schema`.
- Application create/update bodies against the request schemas of ``spec/application.v2.yml``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from openapi_schema_validator import OAS30Validator

from contracts.application_api import ApplicationCreateRequest, ApplicationUpdateRequest
from contracts.ncco import NccoError, parse_ncco
from contracts.voice_api import (
    CreateCallRequest,
    DtmfRequest,
    EarmuffRequest,
    HangupRequest,
    MuteRequest,
    StartStreamRequest,
    StartTalkRequest,
    UnearmuffRequest,
    UpdateCallRequest,
)
from tests.shared_ref import EXAMPLES_DIR, SPEC_DIR, require_shared

from ._strategies import ncco_like

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vonage"

# ------------------------------------------------------------------------------ NCCO schema

#: Actions the old schema does not know at all (§9.18: no notify/wait; pay and transfer are newer).
_NSCHEMA_UNKNOWN_ACTIONS = {"notify", "wait", "pay", "transfer"}
#: Fields the old schema types differently or lacks an enum value for.
_NSCHEMA_STALE_FIELDS = {
    # §9.18: canHear/canSpeak/mute are newer; musicOnHoldUrl is an array in DOCS and the SDKs.
    "conversation": {"canHear", "canSpeak", "mute", "musicOnHoldUrl"},
}


@cache
def _nschema() -> dict[str, Any]:
    return json.loads((SPEC_DIR / "ncco-schema.json").read_text())


def nschema_view(ncco: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The part of a serialised NCCO the 2021 schema can judge."""
    enum_languages = set(_nschema()["definitions"]["languages"]["enum"])
    enum_voices = set(_nschema()["definitions"]["voices"]["enum"])
    out: list[dict[str, Any]] = []
    for raw in ncco:
        act = copy.deepcopy(raw)
        name = act["action"]
        if name in _NSCHEMA_UNKNOWN_ACTIONS:
            continue
        for field in _NSCHEMA_STALE_FIELDS.get(name, ()):
            act.pop(field, None)
        if name == "connect":
            ep = act["endpoint"][0]
            # §9.18 no app/vbc endpoints; §9.11 schema wants 10-15 digits, the API 7-15.
            if ep["type"] in {"app", "vbc"}:
                continue
            if ep["type"] == "phone" and len(ep["number"]) < 10:
                continue
        if name == "talk":
            # §9.19: the code list grew from 49 to 59+ after this schema was written.
            if act.get("language") not in enum_languages:
                act.pop("language", None)
            if act.get("voiceName") not in enum_voices:
                act.pop("voiceName", None)
            # The schema counts SSML tags towards 1500; Vonage does not.
            if len(act["text"]) > 1500:
                continue
        if name == "record" and act.get("format") == "ogg":
            act.pop("format")  # ogg was added after the schema (DOCS recording guide)
        out.append(act)
    return out


def _assert_nschema_valid(ncco: list[dict[str, Any]]) -> None:
    view = nschema_view(ncco)
    if view:
        jsonschema.Draft4Validator(_nschema()).validate(view)


def _our_nccos() -> list[tuple[str, list[dict[str, Any]]]]:
    out = [
        (f"fixture:{p.stem}", json.loads(p.read_text()))
        for p in sorted((FIXTURES / "Ncco").glob("*.json"))
    ]
    for folder in sorted(FIXTURES.glob("*Action")):
        for p in sorted(folder.glob("*.json")):
            out.append((f"fixture:{folder.name}/{p.stem}", [json.loads(p.read_text())]))
    if EXAMPLES_DIR.is_dir():
        for p in sorted(EXAMPLES_DIR.glob("ncco_*.json")):
            data = json.loads(p.read_text())
            if isinstance(data, list):
                out.append((f"shared:{p.name}", data))
    return out


@pytest.mark.parametrize(("name", "ncco"), _our_nccos(), ids=[n for n, _ in _our_nccos()])
def test_serialised_ncco_matches_ncco_schema(name: str, ncco: list[dict[str, Any]]) -> None:
    require_shared()
    _assert_nschema_valid(parse_ncco(ncco).to_list())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ncco_like)
def test_every_accepted_ncco_matches_ncco_schema(data: list[dict[str, Any]]) -> None:
    require_shared()
    try:
        ncco = parse_ncco(data)
    except NccoError:
        return
    _assert_nschema_valid(ncco.to_list())


# ------------------------------------------------------------------------------ OpenAPI


def _inline(node: Any, root: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Resolve local ``$ref``s (the specs have no cycles in the parts we use)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            assert ref not in seen, f"cyclic $ref {ref}"
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            return _inline(target, root, (*seen, ref))
        return {k: _inline(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, root, seen) for v in node]
    return node


@cache
def _voice_spec() -> dict[str, Any]:
    spec = yaml.safe_load((SPEC_DIR / "voice.yml").read_text())
    schemas = spec["components"]["schemas"]
    # Spec defect: endpoint ``type`` has no enum, so ``to: [{type: phone, ...}]`` also matches
    # EndpointSip (which only requires ``type``) and the ``oneOf`` fails. Pin each type.
    for name, value in {
        "EndpointPhoneTo": "phone",
        "EndpointPhoneFrom": "phone",
        "EndpointSip": "sip",
        "EndpointWebsocket": "websocket",
        "EndpointVBCExtension": "vbc",
        "EndpointApp": "app",
    }.items():
        schemas[name]["properties"]["type"]["enum"] = [value]
    # §9.12: app endpoints are allowed in v1 ``to`` since OAS 1.10.
    schemas["CreateCallRequestBase"]["properties"]["to"]["items"]["oneOf"].append(
        {"$ref": "#/components/schemas/EndpointApp"}
    )
    # §9.1: length_timer max 7200 -> 86400 (OAS 1.10, SDKs).
    schemas["CreateCallRequestBase"]["properties"]["length_timer"]["maximum"] = 86400
    # §9.10: websocket uri max length removed and 24 kHz added in OAS 1.10.
    schemas["AddressWebsocket"].pop("maxLength", None)
    schemas["EndpointWebsocket"]["properties"]["content-type"]["enum"].append(
        "audio/l16;rate=24000"
    )
    return spec


def voice_schema(name: str) -> dict[str, Any]:
    spec = _voice_spec()
    return _inline(spec["components"]["schemas"][name], spec)


def _validate(schema: dict[str, Any], body: Any) -> None:
    OAS30Validator(schema).validate(body)


def _create_call_bodies() -> list[tuple[str, dict[str, Any]]]:
    out = [
        (f"fixture:{p.stem}", json.loads(p.read_text()))
        for p in sorted((FIXTURES / "CreateCallRequest").glob("*.json"))
    ]
    if EXAMPLES_DIR.is_dir():
        for p in sorted(EXAMPLES_DIR.glob("create_call_request_*.json")):
            out.append((f"shared:{p.name}", json.loads(p.read_text())))
    return out


@pytest.mark.parametrize(
    ("name", "body"), _create_call_bodies(), ids=[n for n, _ in _create_call_bodies()]
)
def test_create_call_matches_voice_spec(name: str, body: dict[str, Any]) -> None:
    require_shared()
    wire = CreateCallRequest.model_validate(body).to_json_dict()
    variant = "CreateCallRequestNcco" if "ncco" in wire else "CreateCallRequestAnswerUrl"
    _validate(voice_schema(variant), wire)


@pytest.mark.parametrize(
    "to",
    [
        {"type": "phone", "number": "447700900001", "dtmfAnswer": "p1#"},
        {"type": "sip", "uri": "sip:ops@pbx.example.org"},
        {
            "type": "websocket",
            "uri": "wss://media.example.org/s",
            "content-type": "audio/l16;rate=16000",
            "headers": {"a": "b"},
        },
        {"type": "vbc", "extension": "4120"},
        {"type": "app", "user": "alice"},
    ],
)
def test_create_call_endpoints_match_voice_spec(to: dict[str, Any]) -> None:
    require_shared()
    req = CreateCallRequest.model_validate(
        {
            "to": [to],
            "from": {"type": "phone", "number": "442071838750"},
            "answer_url": ["https://ivr.example.org/answer"],
            "event_url": ["https://ivr.example.org/event"],
            "ringing_timer": 30,
            "length_timer": 86400,
        }
    )
    _validate(voice_schema("CreateCallRequestAnswerUrl"), req.to_json_dict())


_UPDATES: list[tuple[str, Any]] = [
    (
        "UpdateCallRequestTransferNcco",
        {
            "action": "transfer",
            "destination": {"type": "ncco", "ncco": [{"action": "talk", "text": "Bye"}]},
        },
    ),
    (
        "UpdateCallRequestTransferAnswerUrl",
        {
            "action": "transfer",
            "destination": {"type": "ncco", "url": ["https://ivr.example.org/ncco"]},
        },
    ),
    ("UpdateCallRequestHangup", HangupRequest()),
    ("UpdateCallRequestMute", MuteRequest()),
    ("UpdateCallRequestEarmuff", EarmuffRequest()),
    ("UpdateCallRequestUnearmuff", UnearmuffRequest()),
    # UpdateCallRequestUnmute is not checked: its enum is ["mute"] in OAS 1.3.7 (§9.9).
]


@pytest.mark.parametrize(("schema", "body"), _UPDATES, ids=[s for s, _ in _UPDATES])
def test_update_call_matches_voice_spec(schema: str, body: Any) -> None:
    require_shared()
    wire = (
        UpdateCallRequest.model_validate(body).to_json_dict()
        if isinstance(body, dict)
        else body.to_json_dict()
    )
    _validate(voice_schema(schema), wire)


def test_talk_stream_dtmf_match_voice_spec() -> None:
    require_shared()
    _validate(
        voice_schema("StartTalkRequest"),
        StartTalkRequest(text="Hello", language="en-GB", style=2, loop=0, level=0.4).to_json_dict(),
    )
    _validate(
        voice_schema("StartStreamRequest"),
        StartStreamRequest(
            stream_url=["https://cdn.example.org/a.mp3"], level="-0.5"
        ).to_json_dict(),
    )
    _validate(voice_schema("DTMFRequest"), DtmfRequest(digits="12p#").to_json_dict())


def test_shared_update_examples_match_voice_spec() -> None:
    require_shared()
    for name, schema in [
        ("update_call_transfer_ncco_spec.json", "UpdateCallRequestTransferNcco"),
        ("update_call_transfer_url_spec.json", "UpdateCallRequestTransferAnswerUrl"),
    ]:
        body = json.loads((EXAMPLES_DIR / name).read_text())
        _validate(voice_schema(schema), UpdateCallRequest.model_validate(body).to_json_dict())


# ------------------------------------------------------------------------------ Application


@cache
def _application_request_schemas() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((SPEC_DIR / "application.v2.yml").read_text())

    def body(path: str, method: str) -> dict[str, Any]:
        return _inline(
            spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"],
            spec,
        )

    return {"create": body("/", "post"), "update": body("/{id}", "put")}


def _app21_wire(wire: dict[str, Any]) -> dict[str, Any]:
    """APP 2.1 names the connect timeout ``connection_timeout`` (§9.3); rename so its range is checked."""
    out = copy.deepcopy(wire)
    hooks = out.get("capabilities", {}).get("voice", {}).get("webhooks", {})
    for hook in hooks.values():
        if "connect_timeout" in hook:
            hook["connection_timeout"] = hook.pop("connect_timeout")
    return out


def _application_bodies() -> list[tuple[str, str, dict[str, Any]]]:
    out = [
        ("create", f"fixture:{p.stem}", json.loads(p.read_text()))
        for p in sorted((FIXTURES / "ApplicationCreateRequest").glob("*.json"))
    ]
    out += [
        ("update", f"fixture:{p.stem}", json.loads(p.read_text()))
        for p in sorted((FIXTURES / "ApplicationUpdateRequest").glob("*.json"))
    ]
    return out


@pytest.mark.parametrize(
    ("op", "name", "body"), _application_bodies(), ids=[n for _, n, _ in _application_bodies()]
)
def test_application_requests_match_spec(op: str, name: str, body: dict[str, Any]) -> None:
    require_shared()
    model = ApplicationCreateRequest if op == "create" else ApplicationUpdateRequest
    wire = model.model_validate(body).to_json_dict()
    _validate(_application_request_schemas()[op], _app21_wire(wire))


def test_shared_application_update_example_matches_spec() -> None:
    require_shared()
    body = json.loads(
        (EXAMPLES_DIR / "application_update_signed_callbacks_request.json").read_text()
    )
    wire = ApplicationUpdateRequest.model_validate(body).to_json_dict()
    _validate(_application_request_schemas()["update"], _app21_wire(wire))


def test_spec_patches_do_not_hide_real_violations() -> None:
    """The patched schemas still reject what they should (guards against a vacuous check)."""
    require_shared()
    bad_timer = {
        "to": [{"type": "phone", "number": "447700900001"}],
        "answer_url": ["https://a.example/x"],
        "ringing_timer": 500,
    }
    with pytest.raises(jsonschema.ValidationError):
        _validate(voice_schema("CreateCallRequestAnswerUrl"), bad_timer)
    with pytest.raises(jsonschema.ValidationError):
        _validate(
            voice_schema("CreateCallRequestAnswerUrl"),
            {**bad_timer, "ringing_timer": 30, "to": [{"type": "phone", "number": "12"}]},
        )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(_nschema()).validate([{"action": "input", "maxDigits": 50}])
    bad_app = {
        "name": "x",
        "capabilities": {
            "voice": {"webhooks": {"answer_url": {"address": "https://a", "connection_timeout": 5}}}
        },
    }
    with pytest.raises(jsonschema.ValidationError):
        _validate(_application_request_schemas()["create"], bad_app)
