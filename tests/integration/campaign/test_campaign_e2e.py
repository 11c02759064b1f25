"""Campaigns end to end against the Voice API simulator: every promise checked from the outside.

The controller runs on a simulated clock (``clock_scale`` simulated seconds per real second, from a
Tuesday 13:50 UTC) so calling hours open and close during the test; the simulator runs its calls
time-scaled with reorderings, duplicates and injected 429/5xx (and dropped responses). Checks read
the simulator's ledger and the topics afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from contracts.campaign import CampaignStatus
from handlers.calling_hours import is_open, zones_for
from handlers.campaign import UNACKED_SECONDS
from orchestrator.localbroker import LocalBroker
from orchestrator.sandbox.checker.checks import concurrency, duplicate_dials, rate_windows
from orchestrator.sandbox.checker.collect import history_from
from tests.integration.campaign.harness import (
    ANCHOR,
    campaign_spec,
    create_commands,
    local_env,
    results_raw,
    write_contacts,
)

pytestmark = [pytest.mark.integration]

_RETRY_CLASS = {
    "busy": "busy",
    "unanswered": "unanswered",
    "cancelled": "unanswered",
    "timeout": "timeout",
    "failed": "failed",
    "rejected": "failed",
}


def _one_result_per_contact(results: list[dict], n: int) -> dict[str, dict]:
    by_contact: dict[str, set[tuple[str, str]]] = defaultdict(set)
    latest: dict[str, dict] = {}
    for r in results:
        by_contact[r["contact_id"]].add((r["id"], r["disposition"]))
        latest[r["contact_id"]] = r
    assert len(by_contact) == n, f"{n - len(by_contact)} contacts without a final result"
    doubled = {c: v for c, v in by_contact.items() if len(v) > 1}
    assert not doubled, f"contacts with different final results: {list(doubled.items())[:3]}"
    return latest


async def _run_big(broker: LocalBroker, tmp_path: Path, n: int, cps: float, cap: int) -> None:
    contacts, dnc, dnc_numbers, region = write_contacts(tmp_path, n)
    async with local_env(broker.bootstrap, cps=cps, time_scale=20, clock_scale=60, seed=5) as env:
        spec = campaign_spec("big", contacts, dnc, cap=cap, stop_at=ANCHOR + timedelta(minutes=150))
        await env.start(spec, total=n)
        p = await env.wait_for(
            "big", lambda p: p.status == CampaignStatus.COMPLETED, within=60 + n / cps * 2.5
        )
        await asyncio.sleep(1.0)  # late duplicates, if any, would land now
        results = await results_raw(env.settings)
        commands = await create_commands(env.settings)
        ledger = env.sim.ledger()

    latest = _one_result_per_contact(results, n)
    disp = Counter(r["disposition"] for r in latest.values())
    assert p.finished == n and sum(p.dispositions.values()) == n
    # Injected 429s on create-call happened, and (below) changed nothing: retried, dialled once.
    assert ledger["counters"].get("faults.throttled", 0) > 0, ledger["counters"]
    # A realistic mix came out, and every class of contact was handled.
    for d in ("answered", "machine", "busy", "dnc", "invalid_number", "expired"):
        assert disp[d] > 0, disp

    calls = [c for c in ledger["calls"] if (c.get("call_ref") or "").startswith("big.")]
    # No DNC number dialed (matched after normalisation), and DNC contacts say so.
    dialed_numbers = {"+" + c["to"].lstrip("+") for c in calls}
    assert not dialed_numbers & dnc_numbers
    for r in latest.values():
        if r["number"] in dnc_numbers:
            assert r["disposition"] == "dnc" and r["attempts"] == 0

    # No call outside the contact's calling hours, on the controller's (simulated) clock.
    hours = spec.calling_hours
    assert hours is not None
    for cmd in commands:
        to = "+" + cmd["body"]["to"][0]["number"]
        at = datetime.fromisoformat(cmd["occurred_at"])
        assert is_open(hours, zones_for(to, None), at), (to, at)
    # New York opened during the run (its contacts waited, then were called); LA never did.
    regions = {r["contact_id"]: region[r["index"]] for r in latest.values()}
    ny = [r for r in latest.values() if regions[r["contact_id"]] == "ny" and r["attempts"]]
    assert ny and all(
        datetime.fromisoformat(r["first_attempt_at"]) >= ANCHOR + timedelta(minutes=10) for r in ny
    )
    la = [r for r in latest.values() if regions[r["contact_id"]] == "la"]
    assert la and all(r["disposition"] in ("expired", "dnc") for r in la)

    # The ledger: no call_ref created twice, CPS never above the limit in any rolling second,
    # never more calls in flight than the cap.
    hist = history_from(ledger, {}, time_scale=20)
    dials = [d for d in hist.dials if d.call_ref and d.call_ref.startswith("big.")]
    assert not duplicate_dials(hist)
    assert not rate_windows(hist.requests, cps=cps, rps=max(60.0, cps * 3))
    assert not concurrency(dials, cap)
    assert len({d.call_ref for d in dials}) == len(dials)
    # Every created call is accounted for in exactly one contact's result.
    refs = [ref for r in latest.values() for ref in r["call_refs"]]
    assert len(refs) == len(set(refs))
    assert {d.call_ref for d in dials} <= set(refs)

    # Retries: after their delay (controller clock) and within max attempts.
    status_of = {c["call_ref"]: c.get("status") for c in calls}
    by_contact: dict[str, list[dict]] = defaultdict(list)
    for cmd in commands:
        contact = cmd["call_ref"].rsplit(".", 2)[0] + "." + cmd["call_ref"].split(".")[2]
        by_contact[contact].append(cmd)
    retried = 0
    for cmds in by_contact.values():
        seen: dict[int, dict] = {}
        for c in cmds:
            seen.setdefault(int(c["call_ref"].rsplit(".", 1)[1]), c)
        ordered = [seen[k] for k in sorted(seen)]
        assert sorted(seen) == list(range(1, len(seen) + 1))
        for prev, nxt in itertools.pairwise(ordered):
            retried += 1
            rclass = _RETRY_CLASS.get(status_of.get(prev["call_ref"]) or "failed", "failed")
            rule = spec.retry.rule(rclass)
            assert rule is not None and int(nxt["call_ref"].rsplit(".", 1)[1]) <= rule.max_attempts
            gap = datetime.fromisoformat(nxt["occurred_at"]) - datetime.fromisoformat(
                prev["occurred_at"]
            )
            assert gap >= timedelta(seconds=rule.delay), (prev["call_ref"], gap)
    assert retried > 0
    assert max(r["attempts"] for r in latest.values()) <= 3


@pytest.mark.timeout(240)
async def test_campaign_end_to_end(broker: LocalBroker, tmp_path: Path) -> None:
    await _run_big(broker, tmp_path, n=1000, cps=40, cap=50)


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.timeout(600)
async def test_campaign_5000_contacts(broker: LocalBroker, tmp_path: Path) -> None:
    await _run_big(broker, tmp_path, n=5000, cps=60, cap=80)


#: A pause or cancel stops new dials at once; what was already handed to the dispatcher (at most
#: UNACKED_SECONDS of the CPS) still goes out, and the command takes up to a second to arrive.
SETTLE_S = UNACKED_SECONDS + 1.0


@pytest.mark.timeout(240)
async def test_pause_resume_cancel(broker: LocalBroker, tmp_path: Path) -> None:
    n = 400
    contacts, dnc, _, _ = write_contacts(tmp_path, n, mix=(0.0, 0.0))
    async with local_env(
        broker.bootstrap, cps=10, time_scale=20, clock_scale=1, seed=9, faults=False
    ) as env:
        spec = campaign_spec("prc", contacts, dnc, cap=15, hours=False)
        await env.start(spec, total=n)
        await env.wait_for("prc", lambda p: p.dialed >= 30, within=60)

        await env.control("prc", "pause")
        paused_at = time.time()
        await env.wait_for("prc", lambda p: p.status == CampaignStatus.PAUSED, within=10)
        await asyncio.sleep(SETTLE_S + 2.0)
        late = [r for r in env.creates() if r["t"] > paused_at + SETTLE_S]
        assert not late, f"{len(late)} calls created more than {SETTLE_S} s after pause"
        # Calls in flight finish while paused.
        p = await env.wait_for("prc", lambda p: p.in_flight == 0, within=60)
        dialed_paused = p.dialed

        await env.control("prc", "resume")
        await env.wait_for("prc", lambda p: p.dialed >= dialed_paused + 20, within=60)

        await env.control("prc", "cancel")
        cancelled_at = time.time()
        p = await env.wait_for("prc", lambda p: p.status == CampaignStatus.CANCELLED, within=90)
        late = [r for r in env.creates() if r["t"] > cancelled_at + SETTLE_S]
        assert not late, f"{len(late)} calls created more than {SETTLE_S} s after cancel"
        results = await results_raw(env.settings)

    latest = _one_result_per_contact(results, n)
    disp = Counter(r["disposition"] for r in latest.values())
    assert disp["cancelled"] > 0 and disp["answered"] > 0
    # Contacts cancelled were never dialed after the cancel; the rest kept their real outcome.
    assert all(r["attempts"] == 0 for r in latest.values() if r["disposition"] == "cancelled"
               and not r["call_refs"])  # fmt: skip
    assert p.finished == n


@pytest.mark.timeout(240)
async def test_restart_of_every_role_mid_campaign_loses_nothing(
    broker: LocalBroker, tmp_path: Path
) -> None:
    n = 300
    contacts, dnc, _, _ = write_contacts(tmp_path, n, mix=(0.0, 0.0))
    async with local_env(broker.bootstrap, cps=20, time_scale=20, clock_scale=60, seed=13) as env:
        # Webhooks sent while the ingress is down may be lost for good (the simulator, like
        # Vonage, gives up after a few retries): such attempts end as failed/no_outcome after
        # attempt_timeout (10 campaign minutes = 10 s here), never redialed.
        spec = campaign_spec("rst", contacts, dnc, cap=30, hours=False, attempt_timeout=600.0)
        await env.start(spec, total=n)
        await env.wait_for("rst", lambda p: p.dialed >= 80, within=60)
        await env.restart_roles()
        await env.wait_for("rst", lambda p: p.status == CampaignStatus.COMPLETED, within=150)
        await asyncio.sleep(1.0)
        results = await results_raw(env.settings)
        ledger = env.sim.ledger()

    latest = _one_result_per_contact(results, n)
    hist = history_from(ledger, {}, time_scale=20)
    assert not duplicate_dials(hist)
    dials = {d.call_ref for d in hist.dials if d.call_ref and d.call_ref.startswith("rst.")}
    refs = [ref for r in latest.values() for ref in r["call_refs"]]
    assert len(refs) == len(set(refs))
    assert dials <= set(refs), f"{len(dials - set(refs))} created calls missing from results"


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_controller_crash_replays_without_double_dials(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """The controller dies without its final checkpoint; a new one replays from the changelog."""
    from orchestrator.campaign.main import ControllerService

    n = 300
    contacts, dnc, _, _ = write_contacts(tmp_path, n, mix=(0.0, 0.0))
    async with local_env(broker.bootstrap, cps=20, time_scale=20, clock_scale=60, seed=17) as env:
        spec = campaign_spec("crash", contacts, dnc, cap=30, hours=False, attempt_timeout=600.0)
        await env.start(spec, total=n)
        await env.wait_for("crash", lambda p: p.dialed >= 80, within=60)

        old = env.stack.controller
        rt = old.runtime

        async def crash() -> None:  # leave without draining, checkpointing or committing
            for client in (rt._consumer, rt._restorer, rt._producer):
                if client is not None:
                    await client.stop()

        rt.close = crash  # type: ignore[method-assign]
        old.stop()
        await asyncio.sleep(1.0)
        new = ControllerService(env.settings, health_port=None, clock=env.clock)
        env.stack.controller = new
        task = asyncio.create_task(new.run(), name="controller")
        env.stack._tasks.append(task)
        await env.wait_for("crash", lambda p: p.status == CampaignStatus.COMPLETED, within=150)
        await asyncio.sleep(1.0)
        results = await results_raw(env.settings)
        ledger = env.sim.ledger()

    latest = _one_result_per_contact(results, n)
    hist = history_from(ledger, {}, time_scale=20)
    assert not duplicate_dials(hist)
    dials = {d.call_ref for d in hist.dials if d.call_ref and d.call_ref.startswith("crash.")}
    assert dials <= {ref for r in latest.values() for ref in r["call_refs"]}
