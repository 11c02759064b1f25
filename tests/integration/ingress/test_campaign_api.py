"""Campaigns over the control API: start (JSON and YAML), status, pause/resume/cancel, results.

The whole local stack runs (simulator, controller, dispatcher, worker, ingress; see the campaign
harness); a second ingress app, in-process with a control token, is the API under test. Nothing
is mocked: starts go through campaign.control to the real controller, calls to the simulator.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from pydantic import SecretStr
from starlette.applications import Starlette

from orchestrator.config import Settings
from orchestrator.ingress.asgi import IngressOptions, create_app
from orchestrator.ingress.campaigns import CampaignsApi
from orchestrator.localbroker import LocalBroker, free_port
from tests.integration.campaign.harness import campaign_spec, local_env, write_contacts
from tests.integration.ingress.conftest import TOKEN, running

pytestmark = [pytest.mark.integration]

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _status(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    r = await client.get(f"/v1/campaigns/{name}", headers=AUTH)
    assert r.status_code in (200, 404), r.text
    return r.json() if r.status_code == 200 else {}


async def _wait(client: httpx.AsyncClient, name: str, pred: Any, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    p: dict[str, Any] = {}
    while time.monotonic() < deadline:
        p = await _status(client, name)
        if p and pred(p):
            return p
        await asyncio.sleep(0.3)
    raise AssertionError(f"campaign {name}: condition not reached in {within}s; last {p}")


def _contacts(tmp_path: Path, sub: str, n: int, seed: int) -> tuple[Path, Path]:
    d = tmp_path / sub
    d.mkdir()
    contacts, dnc, _, _ = write_contacts(d, n, seed=seed, mix=(0.0, 0.0))
    return contacts, dnc


async def _refusals(client: httpx.AsyncClient, good: dict[str, Any], tmp_path: Path) -> None:
    assert (await client.post("/v1/campaigns", json=good)).status_code == 401
    assert (await client.get("/v1/campaigns/x", headers=AUTH)).status_code == 404
    assert (await client.post("/v1/campaigns/x/pause", headers=AUTH)).status_code == 404
    assert (await client.get("/v1/campaigns/x/results", headers=AUTH)).status_code == 404

    bad = {**good, "name": "no spaces allowed", "pacing": {"max_concurrent": 0}}
    del bad["flow"]
    r = await client.post("/v1/campaigns", json=bad, headers=AUTH)
    assert r.status_code == 422, r.text
    fields = {f["field"] for f in r.json()["fields"]}
    assert {"name", "flow", "pacing.max_concurrent"} <= fields, r.json()

    missing = {**good, "contacts": {"csv": str(tmp_path / "nope.csv")}}
    r = await client.post("/v1/campaigns", json=missing, headers=AUTH)
    assert r.status_code == 422 and "not a readable file inside CONTACTS_DIR" in r.text, r.text

    r = await client.post(
        "/v1/campaigns", content=b"name: [", headers={**AUTH, "Content-Type": "application/yaml"}
    )
    assert r.status_code == 400, r.text


@pytest.mark.timeout(240)
async def test_campaigns_over_the_control_api(broker: LocalBroker, tmp_path: Path) -> None:
    na, nb = 30, 200
    contacts_a, dnc_a = _contacts(tmp_path, "a", na, seed=3)
    contacts_b, dnc_b = _contacts(tmp_path, "b", nb, seed=4)
    spec_a = campaign_spec("api-a", contacts_a, dnc_a, cap=10, hours=False).to_json()
    spec_b = campaign_spec("api-b", contacts_b, dnc_b, cap=10, hours=False).to_json()
    async with local_env(
        broker.bootstrap, cps=10, time_scale=20, clock_scale=60, seed=23, faults=False
    ) as env:
        settings = env.settings.model_copy(
            update={"control_api_token": SecretStr(TOKEN), "contacts_dir": tmp_path}
        )
        app = create_app(settings, options=IngressOptions(state_view=False, publish_deadline=5.0))
        async with running(app) as client:
            await _refusals(client, spec_a, tmp_path)

            # Start A as YAML, B as JSON.
            r = await client.post(
                "/v1/campaigns",
                content=yaml.safe_dump(spec_a).encode(),
                headers={**AUTH, "Content-Type": "application/yaml"},
            )
            assert r.status_code == 202, r.text
            accepted = r.json()
            assert accepted["contacts_total"] == na
            assert accepted["status_url"] == r.headers["location"] == "/v1/campaigns/api-a"
            r = await client.post("/v1/campaigns", json=spec_b, headers=AUTH)
            assert r.status_code == 202, r.text

            # Once the controller has it, the name is taken.
            await _wait(client, "api-a", lambda p: True, within=30)
            r = await client.post("/v1/campaigns", json=spec_a, headers=AUTH)
            assert r.status_code == 409 and "exists already" in r.json()["reason"], r.text

            # Pause, resume and cancel B.
            await _wait(client, "api-b", lambda p: p["dialed"] >= 10, within=60)
            r = await client.post("/v1/campaigns/api-b/pause", headers=AUTH)
            assert r.status_code == 202 and r.json()["action"] == "pause", r.text
            await _wait(client, "api-b", lambda p: p["status"] == "paused", within=15)
            r = await client.post("/v1/campaigns/api-b/resume", headers=AUTH)
            assert r.status_code == 202, r.text
            await _wait(client, "api-b", lambda p: p["status"] == "running", within=15)
            r = await client.post("/v1/campaigns/api-b/cancel", headers=AUTH)
            assert r.status_code == 202, r.text
            assert (await client.post("/v1/campaigns/api-b/stop", headers=AUTH)).status_code == 404
            pb = await _wait(client, "api-b", lambda p: p["status"] == "cancelled", within=90)
            assert pb["finished"] == nb

            pa = await _wait(client, "api-a", lambda p: p["status"] == "completed", within=120)
            assert pa["finished"] == na and sum(pa["dispositions"].values()) == na
            assert pa["contacts_total"] == na

            # Results: CSV by ?format=, JSONL by default; one per contact.
            r = await client.get("/v1/campaigns/api-a/results?format=csv", headers=AUTH)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(r.text)))
            assert len(rows) == na == int(r.headers["x-result-count"])
            assert sorted(int(row["index"]) for row in rows) == list(range(na))
            r = await client.get(
                "/v1/campaigns/api-b/results", headers={**AUTH, "Accept": "application/jsonl"}
            )
            assert r.status_code == 200, r.text
            lines = [orjson.loads(line) for line in r.content.splitlines()]
            assert len(lines) == nb == len({x["contact_id"] for x in lines})
            disp = Counter(x["disposition"] for x in lines)
            assert disp["cancelled"] > 0, disp
            # Contacts never dialed before the cancel came out cancelled, with no attempts.
            assert all(x["attempts"] == 0 for x in lines if not x.get("call_refs"))
            assert all(x["disposition"] in ("cancelled", "dnc", "invalid_number")
                       for x in lines if not x.get("call_refs"))  # fmt: skip
            r = await client.get("/v1/campaigns/api-a/results?format=xml", headers=AUTH)
            assert r.status_code == 400


async def test_broker_unreachable_gives_503(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"}
    )
    api = CampaignsApi(settings, auth=lambda _: None, count=lambda _e, _r, resp, _t: resp)
    app = Starlette(routes=api.routes())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
        for method, path in (("GET", "/v1/campaigns/x"), ("POST", "/v1/campaigns/x/pause")):
            r = await client.request(method, path)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    await api.stop()
