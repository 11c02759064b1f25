"""Vonage's limits, checked from the outside: rolling-window CPS/RPS with 429s, and "too early"."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from orchestrator.sandbox.simulator.auth import mint_application_jwt
from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver

pytestmark = pytest.mark.integration


def body(receiver: Receiver, i: int) -> dict[str, Any]:
    return {
        "to": [{"type": "phone", "number": f"4477009{i:05d}"}],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": [{"action": "talk", "text": "hi"}],
        "event_url": [receiver.url(f"/webhooks/event/c{i}")],
    }


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most admissions inside any half-open window [t, t + window)."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window - 1e-6:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_burst_of_30_creates_at_cps_3(make_sim, receiver: Receiver) -> None:
    async with make_sim(cps=3, profile=only("busy")) as sim:
        app = sim.create_application()
        token = app.jwt()
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(base_url=sim.base_url, limits=limits) as c:
            headers = {"Authorization": f"Bearer {token}"}
            first = await asyncio.gather(
                *(c.post("/v1/calls", json=body(receiver, i), headers=headers) for i in range(30))
            )
            codes = [r.status_code for r in first]
            assert codes.count(201) == 3
            assert codes.count(429) == 27
            for r in first:
                if r.status_code == 429:
                    assert r.json()["title"] == "Rate Limit Hit"
                    assert r.json()["type"].endswith("#rate-limit")
                    break
            # Keep hammering for ~2.5 s: more get through, never more than 3 in any second.
            pending = [i for i, r in zip(range(30), first, strict=True) if r.status_code == 429]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2.5
            while pending and loop.time() < deadline:
                rs = await asyncio.gather(
                    *(c.post("/v1/calls", json=body(receiver, i), headers=headers) for i in pending)
                )
                pending = [i for i, r in zip(pending, rs, strict=True) if r.status_code == 429]
                await asyncio.sleep(0.05)
        ledger = sim.ledger(calls=False)
        created = [
            r["t"] for r in ledger["requests"] if r["op"] == "create_call" and r["status"] == 201
        ]
        assert len(created) >= 6
        assert max_in_window(created) == 3
        # Every refused request is in the ledger too, and consumed no slot.
        refused = [r for r in ledger["requests"] if r["status"] == 429]
        assert refused and all(r["limit"] is None for r in refused)
        assert ledger["counters"]["rate_limited.cps"] == len(refused)
        sim.reset()


async def test_other_requests_limited_at_rps(make_sim, receiver: Receiver) -> None:
    async with make_sim(rps=15) as sim:
        app = sim.create_application()
        headers = {"Authorization": f"Bearer {app.jwt()}"}
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            rs = await asyncio.gather(*(c.get("/v1/calls", headers=headers) for _ in range(40)))
        codes = [r.status_code for r in rs]
        assert codes.count(200) == 15
        assert codes.count(429) == 25
        # Creating calls is on its own budget.
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            r = await c.post("/v1/calls", json=body(receiver, 1), headers=headers)
        assert r.status_code == 201


async def test_update_too_early_then_ok(make_sim, receiver: Receiver) -> None:
    prof = only("human", timing={"setup": 0.1, "ring": 0.5, "talk": 60.0})
    async with make_sim(profile=prof, time_scale=5.0) as sim:
        app = sim.create_application()
        headers = {"Authorization": f"Bearer {app.jwt()}"}
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            long_call = body(receiver, 2)
            long_call["ncco"] = [{"action": "talk", "text": "hold music", "loop": 0}]
            r = await c.post("/v1/calls", json=long_call, headers=headers)
            uuid = r.json()["uuid"]
            early = await c.put(f"/v1/calls/{uuid}", json={"action": "hangup"}, headers=headers)
            assert early.status_code == 400
            assert early.json()["title"] == "Bad Request"
            await asyncio.sleep(1.6 / 5.0 + 0.05)  # the window is 1.5 simulated seconds
            ok = await c.put(f"/v1/calls/{uuid}", json={"action": "hangup"}, headers=headers)
            assert ok.status_code == 204
            assert ok.content == b""
            async with asyncio.timeout(10):
                await sim.wait_idle()
            gone = await c.put(f"/v1/calls/{uuid}", json={"action": "hangup"}, headers=headers)
            assert gone.status_code == 404
        statuses = receiver.statuses("/webhooks/event/c2")
        assert statuses[-1] == "completed"
        assert sim.ledger()["counters"]["too_early"] == 1


async def test_bad_and_expired_tokens_are_401(make_sim) -> None:
    async with make_sim() as sim:
        app = sim.create_application()
        other = sim.create_application("other")
        other_key = other.private_key_pem
        assert other_key is not None
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            cases = {
                "none": {},
                "garbage": {"Authorization": "Bearer not.a.jwt"},
                "expired": {"Authorization": f"Bearer {app.jwt(ttl=-120)}"},
                # signed with the other application's key, but claiming this one's id
                "wrong key": {"Authorization": f"Bearer {mint_application_jwt(app.id, other_key)}"},
                "basic": {"Authorization": "Basic c2ltOnNpbQ=="},
            }
            for name, headers in cases.items():
                r = await c.get("/v1/calls", headers=headers)
                assert r.status_code == 401, name
                assert r.json()["type"].endswith("#unauthorized"), name
                assert r.json()["title"] == "Unauthorized"
        refused = [r for r in sim.ledger()["requests"] if r["status"] == 401]
        assert len(refused) == len(cases)
        assert all(r["auth_ok"] is False and r["reason"] for r in refused)
