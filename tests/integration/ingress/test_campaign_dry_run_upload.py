"""``POST /v1/campaigns?dry_run=true`` with a multipart body (issue 14, item 3), on the real broker.

The start's parts (spec, contacts, dnc), parsed by the start's parser, checked as ``campaign
validate`` checks a file-based campaign, and nothing written: ``campaign.uploads`` and
``campaign.control`` keep their end offsets.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from contracts.topics import CAMPAIGN_CONTROL, CAMPAIGN_UPLOADS
from orchestrator.config import Settings
from tests.integration.ingress.conftest import TOKEN, AppFactory, topic_size, with_secrets

pytestmark = [pytest.mark.integration]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
DRY = "/v1/campaigns?dry_run=true"
SPEC = """\
name: dry-upload
contacts: {default_region: US}
from: {numbers: ["14155550000"]}
flow:
  ncco:
    - action: talk
      text: "Hi {{first_name}}"
calling_hours: null
"""
# Row 4 is on the DNC list (sent after the contacts) and has a bad zone: a DNC'd contact is
# counted, not checked, so the zone is no error; row 5 is no number.
CONTACTS = (
    "number,first_name,timezone\n"
    "+14155550100,Chen,\n"
    "+14155550101,Ann,Europe/Paris\n"
    "+14155550102,Bo,America/New_York\n"
    "+14155550103,Dee,Mars/Olympus\n"
    "not-a-number,Eve,\n"
    "+14155550104,Fay,\n"
)
DNC = "number\n+14155550103\n(415) 555-0199\nbogus-1\n"


def _parts(
    spec: str = SPEC, contacts: tuple[str, str, str] | None = None, dnc: str | None = DNC
) -> list[tuple[str, Any]]:
    parts: list[tuple[str, Any]] = [("spec", ("campaign.yaml", spec, "application/yaml"))]
    parts.append(("contacts", contacts or ("contacts.csv", CONTACTS, "text/csv")))
    if dnc is not None:
        parts.append(("dnc", ("dnc.txt", dnc, "text/plain")))
    return parts


async def _sizes(settings: Settings) -> tuple[int, int]:
    prefix = settings.topic_prefix
    return (
        await topic_size(settings, f"{prefix}{CAMPAIGN_UPLOADS.name}"),
        await topic_size(settings, f"{prefix}{CAMPAIGN_CONTROL.name}"),
    )


@pytest.fixture
def settings(kafka_settings: Settings) -> Settings:
    return with_secrets(kafka_settings)


async def test_a_multipart_dry_run_reports_and_writes_nothing(
    settings: Settings, make_ingress: AppFactory
) -> None:
    before = await _sizes(settings)
    async with make_ingress(settings) as ingress:
        r = await ingress.client.post(DRY, headers=AUTH, files=_parts())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["ok"] is True and doc["errors"] == [], doc
    assert doc["contacts"] == {"rows": 6, "invalid": 1, "dnc": 1, "to_dial": 4}
    assert [s["ncco"][0]["text"] for s in doc["samples"]] == ["Hi Chen", "Hi Ann", "Hi Bo"]
    assert [s["row"] for s in doc["samples"]] == [1, 2, 3]
    assert doc["pacing"]["estimated_s"] > 0
    # The DNC line that is no number: named by line, never quoted.
    assert any("dnc.txt" in w and "line 4" in w for w in doc["warnings"]), doc["warnings"]
    assert not any("bogus" in w for w in doc["warnings"])
    assert await _sizes(settings) == before  # nothing on campaign.uploads or campaign.control


async def test_the_dnc_parts_are_counted_before_or_after_the_contacts(
    settings: Settings, make_ingress: AppFactory
) -> None:
    spec, contacts = _parts()[:2]
    a = ("dnc", ("a.txt", "+14155550103\n", "text/plain"))
    b = ("dnc", ("b.txt", "4155550104\n", "text/plain"))  # national format: default_region
    async with make_ingress(settings) as ingress:
        c = ingress.client
        for files in ([spec, contacts, a, b], [spec, a, b, contacts], [spec, a, contacts, b]):
            r = await c.post(DRY, headers=AUTH, files=files)
            assert r.status_code == 200, r.text
            assert r.json()["contacts"] == {"rows": 6, "invalid": 1, "dnc": 2, "to_dial": 3}
        # Without row 4 on the list, it is checked like any other, and its zone is wrong.
        r = await c.post(DRY, headers=AUTH, files=[spec, contacts, b])
        assert r.status_code == 422, r.text
        doc = r.json()
        assert doc["contacts"] == {"rows": 6, "invalid": 1, "dnc": 1, "to_dial": 4}
        [err] = doc["errors"]
        assert (err["row"], err["column"]) == (4, "timezone") and "Mars/Olympus" in err["message"]


async def test_a_template_variable_the_upload_lacks_is_422(
    settings: Settings, make_ingress: AppFactory
) -> None:
    spec = SPEC.replace("{{first_name}}", "{{firstname}}")
    before = await _sizes(settings)
    async with make_ingress(settings) as ingress:
        r = await ingress.client.post(DRY, headers=AUTH, files=_parts(spec=spec))
    assert r.status_code == 422, r.text
    [err] = r.json()["errors"]
    assert (err["field"], err["line"]) == ("flow.ncco.0.text", 7), err
    assert "{{firstname}} is not a contact column; did you mean first_name?" in err["message"]
    assert err["text"].startswith("campaign.yaml:7: flow.ncco.0.text: ")
    assert await _sizes(settings) == before


async def test_a_bad_time_zone_in_the_upload_is_422(
    settings: Settings, make_ingress: AppFactory
) -> None:
    rows = [
        {"number": "+14155550100", "first_name": "Chen"},
        {"number": "+14155550101", "first_name": "Ann", "timezone": "Mars/Olympus"},
    ]
    jsonl = "".join(orjson.dumps(row).decode() + "\n" for row in rows)
    contacts = ("people.jsonl", jsonl, "application/jsonl")
    async with make_ingress(settings) as ingress:
        r = await ingress.client.post(DRY, headers=AUTH, files=_parts(contacts=contacts, dnc=None))
    assert r.status_code == 422, r.text
    doc = r.json()
    [err] = doc["errors"]
    assert (err["row"], err["column"]) == (2, "timezone"), err
    assert err["text"] == "people.jsonl: row 2, column timezone: unknown time zone 'Mars/Olympus'"
    assert doc["contacts"]["rows"] == 2


async def test_an_oversize_upload_is_413(
    kafka_settings: Settings, make_ingress: AppFactory
) -> None:
    settings = with_secrets(kafka_settings, contacts_upload_max_bytes=4096)
    big = "number\n" + "+14155550100\n" * 400  # 5 KB
    async with make_ingress(settings) as ingress:
        c = ingress.client
        r = await c.post(DRY, headers=AUTH, files=_parts(contacts=("c.csv", big, "text/csv")))
        assert r.status_code == 413, r.text
        assert r.json()["detail"] == "body over 4096 bytes"
        # Within the request's cap, but cells of control characters take six times as much to
        # hold (JSON escapes) as to send: past twice the cap, refused rather than spooled.
        crafted = "number,note\n" + ("+14155550100," + "\x01" * 300 + "\n") * 6
        assert len(crafted) < 4096 - 1024
        files = _parts(contacts=("c.csv", crafted, "text/csv"), dnc=None)
        r = await c.post(DRY, headers=AUTH, files=files)
        assert r.status_code == 413, r.text
        assert "to hold for the check" in r.json()["detail"]


async def test_a_broken_multipart_body_is_400(settings: Settings, make_ingress: AppFactory) -> None:
    async with make_ingress(settings) as ingress:
        c = ingress.client
        r = await c.post(
            DRY, headers={**AUTH, "Content-Type": "multipart/form-data"}, content=b"spec"
        )
        assert r.status_code == 400 and "without a boundary" in r.text, r.text

        whole = httpx.Request("POST", "http://x", files=_parts())
        body = whole.read()
        cut = body[: body.index(b"Ann")]  # ends inside the contacts part
        headers = {**AUTH, "Content-Type": whole.headers["Content-Type"]}
        r = await c.post(DRY, headers=headers, content=cut)
        assert r.status_code == 400 and "ends inside a part" in r.text, r.text

        # The start's own refusals: the spec part first, a CSV with a number column.
        r = await c.post(DRY, headers=AUTH, files=_parts()[1:])
        assert r.status_code == 422 and "spec part comes first" in r.text, r.text
        files = _parts(contacts=("c.csv", "name,city\nAnn,Paris\n", "text/csv"))
        r = await c.post(DRY, headers=AUTH, files=files)
        assert r.status_code == 422 and "no number column" in r.text, r.text
