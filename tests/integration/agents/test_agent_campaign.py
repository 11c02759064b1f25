"""Agent campaigns end to end on Apache Kafka and the Voice API simulator.

The campaign dials through the real dispatcher; the simulator answers (humans and machines, AMD
always right) and posts signed webhooks through the real ingress and worker; the controller asks
the agents app for an agent per human answer; the agent's leg is a real call to the agent's
number that joins the callee's conversation. Checks read the simulator's ledger and the topics.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from contracts.campaign import CampaignStatus
from contracts.topics import VOICE_COMMANDS
from orchestrator.localbroker import LocalBroker
from tests.integration.agents.harness import (
    agent_spec,
    available,
    check_bridges,
    legs_of,
    login_agents,
    sim_profile,
    wait_pool,
    write_contacts,
)
from tests.integration.campaign.harness import local_env, raw_records, results_raw

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(240)
async def test_progressive_campaign_bridges_every_human_to_one_agent(
    broker: LocalBroker, tmp_path: Path
) -> None:
    n = 10
    contacts = write_contacts(tmp_path, n)
    async with local_env(
        broker.bootstrap, cps=20, time_scale=10, clock_scale=1, seed=3, sim_profile=sim_profile(3)
    ) as env:
        await login_agents(env.settings, 3)
        await wait_pool(env.settings, lambda p: available(p) == 3, 30, "3 agents available")
        spec = agent_spec("agc", contacts)
        await env.start(spec, total=n)
        p = await env.wait_for("agc", lambda p: p.status == CampaignStatus.COMPLETED, within=180)
        await asyncio.sleep(1.0)
        results = await results_raw(env.settings)
        commands = [v for _, v in await raw_records(env.settings, VOICE_COMMANDS.name)]
        ledger = env.sim.ledger()

    latest = {r["contact_id"]: r for r in results}
    assert len(latest) == n and p.finished == n
    legs = legs_of(ledger, "agc")
    per_callee = check_bridges(legs)
    callees = {leg.call_ref: leg for leg in legs if not leg.agent_leg}
    humans = {ref for ref, leg in callees.items() if leg.outcome == "human"}
    assert humans and len(humans) < n, "the profile gives both humans and machines"
    # Every human answer was bridged to exactly one agent (3 agents, progressive: nobody waits).
    for ref in humans:
        assert len(per_callee.get(ref, [])) == 1, (ref, per_callee.get(ref))
    # The topics agree: agent legs were only ever asked for human answers.
    agent_creates = [
        c for c in commands if c.get("kind") == "create_call" and ".a" in (c.get("call_ref") or "")
    ]
    assert {c["call_ref"].rsplit(".", 1)[0] for c in agent_creates} <= humans
    # Results: humans answered with their agent and wait; machines are machines.
    by_ref = {r["call_refs"][-1]: r for r in latest.values()}
    for ref in humans:
        r = by_ref[ref]
        assert r["disposition"] == "answered" and r["agent_id"] and r["agent_wait_s"] >= 0, r
    assert Counter(r["disposition"] for r in latest.values())["machine"] == n - len(humans)
    assert p.agents is not None and p.agents.connected == len(humans)
    assert p.agents.abandoned == 0 and p.agents.live_answers == len(humans)
