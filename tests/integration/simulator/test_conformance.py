"""Schema-driven conformance: every response of every operation validates against Vonage's specs.

A driver exercises each Voice API v1 and Application API v2 operation (successes and the error
statuses a client can provoke), recording every exchange. Then:

- ``test_responses_match_official_specs`` resolves the official OpenAPI files in
  ``../shared/vonage/spec`` and validates each body against the response schema documented for
  its operation and status (OpenAPI 3.0 dialect via openapi-schema-validator), checks that every
  property the success schema declares is present, that 204s are empty, and that statuses the
  spec does not document are error bodies of the common error shape (an explicit allow-list
  names them: the 2021 Voice spec documents almost no errors);
- ``test_responses_parse_with_official_sdk_models`` is the spec-free variant: the same exchanges
  must parse with the official Vonage SDK's response models.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver

pytestmark = pytest.mark.integration

SPEC_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "vonage" / "spec"

# (spec file, server base path): paths in the specs are relative to their server URL.
SPECS = {
    "voice": ("voice.yml", "/v1/calls"),
    "application": ("application.v2.yml", "/v2/applications"),
}

# Error statuses the simulator returns that the spec does not list for that operation (the real
# API returns them too: DIGEST §2.1/§6). Each must still be a problem body of the common shape.
UNDOCUMENTED_OK = {
    ("voice", "/", "post", 400),
    ("voice", "/", "post", 401),
    ("voice", "/", "post", 429),
    ("voice", "/", "get", 400),
    ("voice", "/", "get", 401),
    ("voice", "/{uuid}", "get", 404),
    ("voice", "/{uuid}", "put", 400),
    ("voice", "/{uuid}/talk", "put", 400),
    ("voice", "/{uuid}/talk", "put", 404),
    ("application", "/{id}", "delete", 404),
}


@dataclass
class Exchange:
    spec: str
    path: str  # spec path template
    method: str
    status: int
    body: bytes
    content_type: str

    @property
    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body)


class Driver:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.exchanges: list[Exchange] = []

    async def do(self, spec: str, path: str, method: str, url: str, **kw: Any) -> httpx.Response:
        resp = await self.client.request(method.upper(), url, **kw)
        self.exchanges.append(
            Exchange(
                spec,
                path,
                method,
                resp.status_code,
                resp.content,
                resp.headers.get("content-type", ""),
            )
        )
        return resp


def call_body(receiver: Receiver, ref: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": [{"type": "phone", "number": "447700900111"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": [{"action": "talk", "text": "please hold", "loop": 0}],
        "event_url": [receiver.url(f"/webhooks/event/{ref}")],
    }
    body.update(extra)
    return body


async def drive(make_sim: Any, receiver: Receiver) -> list[Exchange]:
    """Exercise every operation; returns every exchange."""
    # Ringing lasts 1 s of real time, so the "too early" requests below land before the answer
    # even on a loaded machine (0.3 simulated seconds, 15 ms, was lost to scheduling under load).
    prof = only("human", timing={"setup": 0.1, "ring": 20.0, "talk": 60.0})
    async with make_sim(profile=prof, time_scale=20.0, rps=1000, cps=1000) as sim:
        app = sim.create_application()
        jwt = {"Authorization": f"Bearer {app.jwt()}"}
        basic = httpx.BasicAuth(sim.engine.api_key, sim.engine.api_secret)
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            d = Driver(c)
            v = "voice"
            # --- calls -----------------------------------------------------------------------
            created = await d.do(
                v, "/", "post", "/v1/calls", json=call_body(receiver, "a"), headers=jwt
            )
            uuid = created.json()["uuid"]
            await d.do(v, "/", "post", "/v1/calls", json={"to": []}, headers=jwt)
            await d.do(v, "/", "post", "/v1/calls", json=call_body(receiver, "x"))
            early = await d.do(
                v, "/{uuid}", "put", f"/v1/calls/{uuid}", json={"action": "mute"}, headers=jwt
            )
            assert early.status_code == 400
            early_talk = await d.do(
                v, "/{uuid}/talk", "put", f"/v1/calls/{uuid}/talk", json={"text": "x"}, headers=jwt
            )
            assert early_talk.status_code == 400
            # wait until answered and past the too-early window
            await receiver.wait_for(lambda: "answered" in receiver.statuses("/webhooks/event/a"))
            await asyncio.sleep(1.6 / 20.0)  # too-early window: 1.5 simulated seconds
            await d.do(v, "/{uuid}", "get", f"/v1/calls/{uuid}", headers=jwt)
            await d.do(
                v, "/{uuid}", "get", "/v1/calls/00000000-0000-0000-0000-000000000000", headers=jwt
            )
            for action in ("mute", "unmute", "earmuff", "unearmuff"):
                r = await d.do(
                    v, "/{uuid}", "put", f"/v1/calls/{uuid}", json={"action": action}, headers=jwt
                )
                assert r.status_code == 204
            await d.do(
                v, "/{uuid}", "put", f"/v1/calls/{uuid}", json={"action": "dance"}, headers=jwt
            )
            await d.do(
                v,
                "/{uuid}",
                "put",
                "/v1/calls/0000-unknown",
                json={"action": "hangup"},
                headers=jwt,
            )
            await d.do(v, "/{uuid}", "put", f"/v1/calls/{uuid}", json={"action": "mute"})
            talk = {"text": "Hello", "language": "en-GB", "style": 1, "loop": 2, "level": "0.4"}
            r = await d.do(
                v, "/{uuid}/talk", "put", f"/v1/calls/{uuid}/talk", json=talk, headers=jwt
            )
            assert r.status_code == 200
            await d.do(v, "/{uuid}/talk", "delete", f"/v1/calls/{uuid}/talk", headers=jwt)
            await d.do(
                v, "/{uuid}/talk", "put", "/v1/calls/0000-unknown/talk", json=talk, headers=jwt
            )
            stream = {"stream_url": ["https://example.com/music.mp3"], "loop": 0}
            r = await d.do(
                v, "/{uuid}/stream", "put", f"/v1/calls/{uuid}/stream", json=stream, headers=jwt
            )
            assert r.status_code == 200
            await d.do(v, "/{uuid}/stream", "delete", f"/v1/calls/{uuid}/stream", headers=jwt)
            r = await d.do(
                v,
                "/{uuid}/dtmf",
                "put",
                f"/v1/calls/{uuid}/dtmf",
                json={"digits": "12p#"},
                headers=jwt,
            )
            assert r.status_code == 200
            transfer = {
                "action": "transfer",
                "destination": {"type": "ncco", "ncco": [{"action": "talk", "text": "bye"}]},
            }
            r = await d.do(v, "/{uuid}", "put", f"/v1/calls/{uuid}", json=transfer, headers=jwt)
            assert r.status_code == 204
            async with asyncio.timeout(10):
                await sim.wait_idle()
            # a completed call: money and times present
            done = await d.do(v, "/{uuid}", "get", f"/v1/calls/{uuid}", headers=jwt)
            assert done.json()["status"] == "completed"
            # a few more calls for paging
            for i in range(3):
                await d.do(
                    v, "/", "post", "/v1/calls", json=call_body(receiver, f"p{i}"), headers=jwt
                )
            await d.do(v, "/", "get", "/v1/calls", headers=jwt)
            page = await d.do(
                v, "/", "get", "/v1/calls?page_size=1&record_index=1&order=desc", headers=jwt
            )
            assert set(page.json()["_links"]) == {"self", "first", "last", "next", "prev"}
            await d.do(v, "/", "get", "/v1/calls?status=completed", headers=jwt)
            await d.do(
                v,
                "/",
                "get",
                f"/v1/calls?conversation_uuid={created.json()['conversation_uuid']}",
                headers=jwt,
            )
            await d.do(v, "/", "get", "/v1/calls?page_size=500", headers=jwt)
            await d.do(v, "/", "get", "/v1/calls")
            # --- applications ----------------------------------------------------------------
            a = "application"
            new = {
                "name": "conformance",
                "capabilities": {
                    "voice": {
                        "webhooks": {
                            "event_url": {
                                "address": receiver.url("/webhooks/event"),
                                "http_method": "POST",
                            },
                            "answer_url": {
                                "address": receiver.url("/answer"),
                                "http_method": "GET",
                                "connect_timeout": 500,
                                "socket_timeout": 3000,
                            },
                        }
                    }
                },
            }
            r = await d.do(a, "/", "post", "/v2/applications", json=new, auth=basic)
            assert r.status_code == 201
            app_id = r.json()["id"]
            await d.do(a, "/", "post", "/v2/applications", json={"capabilities": {}}, auth=basic)
            await d.do(a, "/", "post", "/v2/applications", json=new)
            await d.do(
                a,
                "/",
                "post",
                "/v2/applications",
                content=b"name=x",
                headers={"Content-Type": "text/plain"},
                auth=basic,
            )
            await d.do(a, "/", "get", "/v2/applications?page_size=1", auth=basic)
            await d.do(a, "/", "get", "/v2/applications?page_size=1000", auth=basic)
            await d.do(
                a, "/", "get", "/v2/applications", headers={"Accept": "text/html"}, auth=basic
            )
            await d.do(a, "/{id}", "get", f"/v2/applications/{app_id}", auth=basic)
            await d.do(a, "/{id}", "get", "/v2/applications/nope", auth=basic)
            await d.do(
                a,
                "/{id}",
                "put",
                f"/v2/applications/{app_id}",
                json={**new, "name": "renamed"},
                auth=basic,
            )
            await d.do(
                a, "/{id}", "put", f"/v2/applications/{app_id}", json={"name": ""}, auth=basic
            )
            await d.do(a, "/{id}", "put", "/v2/applications/nope", json=new, auth=basic)
            await d.do(a, "/{id}", "delete", f"/v2/applications/{app_id}", auth=basic)
            await d.do(a, "/{id}", "delete", f"/v2/applications/{app_id}", auth=basic)
            await d.do(a, "/", "post", "/v2/applications", json=new, auth=basic, params={"x": "1"})
            # PATCH is not an operation of the spec: 405 is documented for the path.
            r = await c.patch("/v2/applications", json=new, auth=basic)
            assert r.status_code == 405
            d.exchanges.append(
                Exchange(a, "/", "post", 405, r.content, r.headers.get("content-type", ""))
            )
            async with asyncio.timeout(10):
                await sim.wait_idle()
    # --- 429 at a tiny limit -----------------------------------------------------------------
    async with make_sim(profile=only("busy"), cps=1) as sim:
        app = sim.create_application()
        jwt = {"Authorization": f"Bearer {app.jwt()}"}
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            d2 = Driver(c)
            await d2.do(
                "voice", "/", "post", "/v1/calls", json=call_body(receiver, "r1"), headers=jwt
            )
            r = await d2.do(
                "voice", "/", "post", "/v1/calls", json=call_body(receiver, "r2"), headers=jwt
            )
            assert r.status_code == 429
        sim.reset()
    return d.exchanges + d2.exchanges


# --- spec loading --------------------------------------------------------------------------------


@cache
def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _resolve(node: Any, base: Path, depth: int = 0) -> Any:
    """Inline every ``$ref`` (local and cross-file), so the validator needs no registry."""
    assert depth < 50, "recursive $ref"
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            file, _, pointer = ref.partition("#")
            target_file = (base.parent / file).resolve() if file else base
            target: Any = _load(target_file)
            for part in pointer.strip("/").split("/"):
                if part:
                    target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolve(target, target_file, depth + 1)
        return {k: _resolve(v, base, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, base, depth + 1) for v in node]
    return node


def _response_spec(spec: str, path: str, method: str, status: int) -> tuple[bool, Any]:
    """(documented?, resolved response object) for one operation and status."""
    file = SPEC_DIR / SPECS[spec][0]
    doc = _load(file.resolve())
    op = doc["paths"][path].get(method)
    if op is None:
        return False, None
    resp = op["responses"].get(str(status))
    if resp is None:
        return False, None
    return True, _resolve(resp, file.resolve())


def _error_schema() -> Any:
    file = (SPEC_DIR / "common" / "common_errors.yml").resolve()
    return _resolve(_load(file)["components"]["responses"]["DefaultError"], file)["content"][
        "application/json"
    ]["schema"]


def _validate(schema: Any, instance: Any) -> None:
    from openapi_schema_validator import OAS30Validator

    OAS30Validator(schema).validate(instance)


@pytest.fixture(scope="module")
def spec_dir() -> Path:
    if not (SPEC_DIR / "voice.yml").is_file():
        pytest.skip(f"official specs not found at {SPEC_DIR} (the shared folder is absent)")
    return SPEC_DIR


async def test_responses_match_official_specs(
    spec_dir: Path, make_sim: Any, receiver: Receiver
) -> None:
    exchanges = await drive(make_sim, receiver)
    error_schema = _error_schema()
    seen_ops: set[tuple[str, str, str]] = set()
    undocumented: set[tuple[str, str, str, int]] = set()
    validated = 0
    for ex in exchanges:
        seen_ops.add((ex.spec, ex.path, ex.method))
        where = f"{ex.spec} {ex.method.upper()} {ex.path} -> {ex.status}"
        documented, resp = _response_spec(ex.spec, ex.path, ex.method, ex.status)
        if ex.status == 204:
            assert documented, where
            assert ex.body == b"", where
            continue
        content = (resp or {}).get("content", {}).get("application/json")
        if documented and content and "schema" in content:
            assert ex.content_type.startswith("application/json"), where
            schema = content["schema"]
            _validate(schema, ex.json)
            validated += 1
            if 200 <= ex.status < 300:
                declared = set(schema.get("properties", {}))
                for part in schema.get("allOf", []):
                    declared |= set(part.get("properties", {}))
                optional = {"rate", "price", "duration", "start_time", "end_time", "network"}
                if ex.json.get("status") != "completed":
                    declared -= optional
                declared -= {"capabilities", "keys"} if ex.spec == "application" else set()
                missing = declared - set(ex.json)
                assert not missing, f"{where}: missing declared properties {missing}"
            continue
        # Documented without a body schema, or not documented: must be a problem body.
        assert ex.status >= 400, where
        if not documented:
            undocumented.add((ex.spec, ex.path, ex.method, ex.status))
        _validate(error_schema, ex.json)
        for key in ("type", "title", "instance"):
            assert isinstance(ex.json.get(key), str), f"{where}: {key}"
    assert validated >= 25
    assert undocumented <= UNDOCUMENTED_OK, undocumented - UNDOCUMENTED_OK
    # Negative control: the validator does reject a body that breaks the schema.
    from jsonschema.exceptions import ValidationError

    _, list_resp = _response_spec("voice", "/", "get", 200)
    with pytest.raises(ValidationError):
        _validate(list_resp["content"]["application/json"]["schema"], {"count": "three"})
    # Every operation of both specs was exercised.
    for spec, (file, _) in SPECS.items():
        doc = _load((spec_dir / file).resolve())
        for path, item in doc["paths"].items():
            for method in ("get", "post", "put", "delete"):
                if method in item:
                    assert (spec, path, method) in seen_ops, (
                        f"not exercised: {spec} {method} {path}"
                    )


async def test_responses_parse_with_official_sdk_models(make_sim: Any, receiver: Receiver) -> None:
    """Spec-free: the SDK's own response models accept every success body."""
    from vonage_application.responses import ApplicationData, ListApplicationsResponse
    from vonage_voice.models.responses import CallInfo, CallList, CallMessage, CreateCallResponse

    models = {
        ("voice", "/", "post"): CreateCallResponse,
        ("voice", "/", "get"): CallList,
        ("voice", "/{uuid}", "get"): CallInfo,
        ("voice", "/{uuid}/talk", "put"): CallMessage,
        ("voice", "/{uuid}/talk", "delete"): CallMessage,
        ("voice", "/{uuid}/stream", "put"): CallMessage,
        ("voice", "/{uuid}/stream", "delete"): CallMessage,
        ("voice", "/{uuid}/dtmf", "put"): CallMessage,
        ("application", "/", "get"): ListApplicationsResponse,
        ("application", "/", "post"): ApplicationData,
        ("application", "/{id}", "get"): ApplicationData,
        ("application", "/{id}", "put"): ApplicationData,
    }
    checked = 0
    for ex in await drive(make_sim, receiver):
        if 200 <= ex.status < 300 and ex.status != 204:
            model = models[(ex.spec, ex.path, ex.method)]
            model.model_validate(ex.json)
            checked += 1
        elif ex.status >= 400:
            body = ex.json
            assert {"type", "title", "instance"} <= set(body), (ex.spec, ex.path, ex.status)
            assert body["type"].startswith("https://developer."), body
    assert checked >= 20
