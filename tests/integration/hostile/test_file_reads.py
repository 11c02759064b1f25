"""No file-system reach from the network: a spec's paths stay inside CONTACTS_DIR, or nothing.

Reproductions from issue 18: ``contacts.csv = /proc/self/environ`` answered 422 with the whole
environment (signature secret and control token included), ``../../etc/passwd`` came back too,
``dnc = [/etc/passwd]`` answered 202 listing its lines as warnings, and a missing file read
differently from an unreadable one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.hostile.conftest import Target
from tests.integration.hostile.procs import watched

pytestmark = [pytest.mark.integration]

#: Text that would show a file's content came back (environment, /etc/passwd).
LEAKS = ("root:", "PATH=", "KAFKA_BOOTSTRAP", "HOME=", "/bin/", "nologin")


def spec(name: str, contacts: dict[str, Any], dnc: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "contacts": contacts,
        "from": {"numbers": ["442079460000"]},
        "flow": {"ncco": [{"action": "talk", "text": "Hello"}]},
        "calling_hours": None,
        "dnc": dnc or [],
    }


def clean(target: Target, r: httpx.Response) -> str:
    text = r.text
    assert 400 <= r.status_code < 500, (r.status_code, text)
    for secret in target.secrets():
        assert secret not in text
    for leak in LEAKS:
        assert leak not in text, (leak, text)
    return text


async def test_paths_outside_contacts_dir_are_refused_without_content(target: Target) -> None:
    async with httpx.AsyncClient(base_url=target.proc.base_url, timeout=30) as client:
        with watched(target.proc) as m:

            async def post(body: dict[str, Any]) -> httpx.Response:
                return await client.post("/v1/campaigns", json=body, headers=target.auth)

            attacks = {
                "environ": spec("h-env", {"csv": "/proc/self/environ"}),
                "traversal": spec("h-trav", {"csv": "../../etc/passwd"}),
                "deep-traversal": spec("h-trav2", {"csv": "lists/../../../../../etc/passwd"}),
                "jsonl": spec("h-jsonl", {"jsonl": "/etc/passwd"}),
                "symlink-out": spec("h-link", {"csv": "passwd-link"}),
                "dnc": spec("h-dnc", {"csv": "lists/ok.csv"}, dnc=["/etc/passwd"]),
                "dnc-traversal": spec("h-dnc2", {"csv": "lists/ok.csv"}, dnc=["../../etc/shadow"]),
            }
            for what, body in attacks.items():
                r = await post(body)
                text = clean(target, r)
                assert r.status_code == 422, (what, text)
                assert "not a readable file inside CONTACTS_DIR" in r.json()["reason"], (what, text)

            # Missing, a directory, a FIFO and a link out all read the same (the name aside).
            reasons = set()
            for name in ("lists/nope.csv", "lists", "fifo", "passwd-link", "/etc/shadow"):
                r = await post(spec("h-same", {"csv": name}))
                clean(target, r)
                reasons.add(r.json()["reason"].replace(repr(name), "NAME"))
            assert len(reasons) == 1, reasons

            # Without the token nothing is looked at.
            r = await client.post("/v1/campaigns", json=attacks["environ"])
            assert r.status_code == 401 and "/proc" not in r.text

            # A file inside the directory is read (the start goes to campaign.control).
            r = await post(spec("h-inside", {"csv": "lists/ok.csv"}))
            assert r.status_code == 202, r.text
            assert r.json()["contacts_total"] == 1
        m.check("file reads")
