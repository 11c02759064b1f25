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
from typing import Any

import pytest

from contracts.agents import AgentAction, AgentState
from contracts.call_refs import parse_agent_leg_ref
from contracts.campaign import CampaignStatus
from contracts.topics import VOICE_COMMANDS
from orchestrator.localbroker import LocalBroker
from tests.integration.agents.harness import (
    AgentsProcess,
    Leg,
    RoleProcess,
    agent_number,
    agent_spec,
    available,
    check_bridges,
    check_conversations,
    legs_of,
    login_agents,
    set_state,
    sim_profile,
    wait_pool,
    write_contacts,
)
from tests.integration.campaign.harness import local_env, raw_records, results_raw

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["progressive", "predictive"])
async def test_agent_campaign_bridges_every_human_to_one_agent(
    broker: LocalBroker, tmp_path: Path, mode: str
) -> None:
    n = 10
    contacts = write_contacts(tmp_path, n)
    async with local_env(
        broker.bootstrap, cps=20, time_scale=10, clock_scale=1, seed=3, sim_profile=sim_profile(3)
    ) as env:
        await login_agents(env.settings, 3)
        await wait_pool(env.settings, lambda p: available(p) == 3, 30, "3 agents available")
        spec = agent_spec("agc", contacts, mode=mode)
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
    pairs = check_conversations(ledger, "agc")
    callees = {leg.call_ref: leg for leg in legs if not leg.agent_leg}
    humans = {ref for ref, leg in callees.items() if leg.outcome == "human"}
    assert humans and len(humans) < n, "the profile gives both humans and machines"
    # Every human answer was bridged to exactly one agent (3 agents, progressive: nobody waits).
    for ref in humans:
        assert len(per_callee.get(ref, [])) == 1, (ref, per_callee.get(ref))
    assert pairs == len(humans), "each human really shared a conversation with one agent"
    # The topics agree: agent legs were only ever asked for human answers.
    agent_creates = [
        leg
        for c in commands
        if c.get("kind") == "create_call" and (leg := parse_agent_leg_ref(c.get("call_ref")))
    ]
    assert agent_creates and {leg.call_ref for leg in agent_creates} <= humans
    # Results: humans answered with their agent and wait; machines are machines.
    by_ref = {r["call_refs"][-1]: r for r in latest.values()}
    for ref in humans:
        r = by_ref[ref]
        assert r["disposition"] == "answered" and r["agent_id"] and r["agent_wait_s"] >= 0, r
    assert Counter(r["disposition"] for r in latest.values())["machine"] == n - len(humans)
    assert p.agents is not None and p.agents.connected == len(humans)
    assert p.agents.abandoned == 0 and p.agents.live_answers == len(humans)
    # Predictive bets nothing before it has seen 20 live answers: it dialled progressively.
    assert p.agents.mode == mode and p.agents.phase == ("warmup" if mode == "predictive" else mode)


@pytest.mark.timeout(180)
async def test_with_no_agent_free_humans_are_abandoned_with_the_message(
    broker: LocalBroker, tmp_path: Path
) -> None:
    n = 2
    contacts = write_contacts(tmp_path, n)
    # Contacts ring for 2-3 s (real): time to take both agents off before anyone answers.
    prof = sim_profile(5, machine_share=0, ring=(20, 30))
    async with local_env(
        broker.bootstrap, cps=20, time_scale=10, clock_scale=1, seed=5, sim_profile=prof
    ) as env:
        await login_agents(env.settings, 2)
        await wait_pool(env.settings, lambda p: available(p) == 2, 30, "2 agents available")
        await env.start(agent_spec("abn", contacts, connect_within=2.0), total=n)
        deadline = asyncio.get_running_loop().time() + 30
        while len([c for c in env.creates()]) < n:
            assert asyncio.get_running_loop().time() < deadline, "the two dials"
            await asyncio.sleep(0.05)
        for agent in ("agent-0", "agent-1"):
            await set_state(env.settings, agent, AgentAction.OFFLINE)
        await wait_pool(env.settings, lambda p: available(p) == 0, 10, "nobody available")
        p = await env.wait_for("abn", lambda p: p.status == CampaignStatus.COMPLETED, within=120)
        await asyncio.sleep(0.5)
        results = await results_raw(env.settings)
        commands = [v for _, v in await raw_records(env.settings, VOICE_COMMANDS.name)]
        ledger = env.sim.ledger()

    legs = legs_of(ledger, "abn")
    assert not [leg for leg in legs if leg.agent_leg], "no agent leg while nobody is free"
    callees = {leg.call_ref: leg for leg in legs}
    uuids = {c["call_ref"]: c["uuid"] for c in ledger["calls"] if c.get("call_ref") in callees}
    # The ledger: each callee was transferred (PUT /v1/calls/{uuid}) after the human answer...
    transfers = {
        r["call_uuid"]
        for r in ledger["requests"]
        if r.get("op") == "update_call" and r["status"] == 204
    }
    assert set(uuids.values()) <= transfers
    for c in ledger["calls"]:
        if c.get("call_ref") in callees:
            # Into the bridge on answer, then out of it to the message.
            moves = [w for w in c.get("webhooks", []) if w["status"] == "transfer"]
            assert len(moves) >= 2, (c["call_ref"], c.get("webhooks"))
    # ... to the abandon message, with the contact's name (the command, on voice.commands).
    abandons = [c for c in commands if c.get("kind") == "transfer" and c["call_ref"] in callees]
    assert len(abandons) == n
    for c in abandons:
        [talk] = c["body"]["destination"]["ncco"]
        assert talk["action"] == "talk" and talk["text"].startswith("This was Acme calling Person")
    # The results: abandoned (their retry rule here: 1 attempt), waited connect_within.
    assert {r["disposition"] for r in results} == {"abandoned"} and len(results) == n
    for r in results:
        assert 2.0 <= r["agent_wait_s"] < 6.0, r  # decided at the deadline (plus the tick's trip)
    assert p.agents is not None and p.agents.abandoned == n and p.agents.abandon_rate == 1.0


@pytest.mark.timeout(240)
async def test_a_failing_agent_goes_offline_and_the_callee_gets_the_next_agent(
    broker: LocalBroker, tmp_path: Path
) -> None:
    from orchestrator.localbroker import free_port

    n = 4
    contacts = write_contacts(tmp_path, n)
    # agent-0's phone is busy; agent-1 is a voice bot whose WebSocket refuses the connection.
    # One agent takes all four calls in turn: the last callee waits three calls and wrap-ups
    # (over 200 simulated seconds on a loaded machine), so callees here wait patiently.
    prof = sim_profile(
        7, machine_share=0, agent_outcomes={agent_number(0): "busy"}, patience=(3000, 3000)
    )
    closed = f"ws://127.0.0.1:{free_port()}/bot"
    endpoints = {1: {"type": "websocket", "uri": closed, "content-type": "audio/l16;rate=16000"}}
    async with local_env(
        broker.bootstrap, cps=20, time_scale=10, clock_scale=1, seed=7, sim_profile=prof
    ) as env:
        await login_agents(env.settings, 3, endpoints=endpoints)
        await wait_pool(env.settings, lambda p: available(p) == 3, 30, "3 agents available")
        await env.start(agent_spec("nxt", contacts, connect_within=60.0), total=n)
        p = await env.wait_for("nxt", lambda p: p.status == CampaignStatus.COMPLETED, within=200)
        await asyncio.sleep(0.5)
        pool = await wait_pool(env.settings, lambda p: True, 10, "the pool")
        results = await results_raw(env.settings)
        ledger = env.sim.ledger()

    legs = legs_of(ledger, "nxt")
    per_callee = check_bridges(legs)
    assert check_conversations(ledger, "nxt") == n
    state = {r.agent.id: r for r in pool.agents}
    assert state["agent-0"].state == AgentState.OFFLINE
    assert state["agent-0"].offline_reason == "leg_busy"
    assert state["agent-1"].state == AgentState.OFFLINE
    assert state["agent-1"].offline_reason == "leg_failed"
    # agent-0's and agent-1's legs never answered; agent-2 took every call.
    agent_legs = [leg for leg in legs if leg.agent_leg]
    failed = [leg for leg in agent_legs if leg.answered is None]
    assert {leg.to for leg in failed} >= {agent_number(0)}
    assert any(leg.to.startswith("ws://") for leg in failed)
    assert {leg.to for leg in agent_legs if leg.answered} == {agent_number(2)}
    # The callees whose first agent failed were put through to the next one (a2, a3...).
    moved = {leg.callee_ref for leg in failed}
    assert moved
    for ref in moved:
        assert len(per_callee.get(ref, [])) == 1, ref
        assert not per_callee[ref][0].call_ref.endswith(".a1")
    assert {r["disposition"] for r in results} == {"answered"}
    assert {r["agent_id"] for r in results} == {"agent-2"}
    assert p.agents is not None and p.agents.connected == n


@pytest.mark.timeout(300)
async def test_kill9_of_the_agents_process_loses_no_agent_and_double_books_none(
    broker: LocalBroker, tmp_path: Path
) -> None:
    n = 12
    contacts = write_contacts(tmp_path, n)
    async with _kill_env(broker, 11, with_agents=False) as env:
        first = AgentsProcess(env.settings, "first")
        second: AgentsProcess | None = None
        try:
            before = await _start_with_three_agents(env, "kil", contacts, n, connected=3)
            first.kill9()
            await asyncio.sleep(1.0)
            second = AgentsProcess(env.settings, "second")
            p, after, results, ledger = await _when_completed(env, "kil", within=220)
        finally:
            first.stop()
            if second is not None:
                second.stop()

    check_after_kills(ledger, "kil", before, after, results, n, p.finished)


@pytest.mark.timeout(360)
async def test_kill9_of_the_controller_and_a_worker_loses_no_agent_and_double_books_none(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """The issue's own case: the campaign controller, then the worker, killed mid-campaign
    (each a process of its own, restarted after); the pool's agents, their calls and every
    callee's bridge are checked from the simulator's ledger and the topics."""
    n = 12
    contacts = write_contacts(tmp_path, n)
    async with _kill_env(broker, 13, with_worker=False, with_controller=False) as env:
        procs = [
            RoleProcess(env.settings, "w1", "worker"),
            RoleProcess(env.settings, "c1", "controller"),
        ]
        try:
            await wait_ready(procs, 60)
            before = await _start_with_three_agents(env, "kcw", contacts, n, connected=2)
            procs[1].kill9()  # the controller
            procs.append(RoleProcess(env.settings, "c2", "controller"))
            await env.wait_for(
                "kcw", lambda p: p.agents is not None and p.agents.connected >= 5, within=150
            )
            procs[0].kill9()  # the worker
            procs.append(RoleProcess(env.settings, "w2", "worker"))
            p, after, results, ledger = await _when_completed(env, "kcw", within=240)
        finally:
            for proc in procs:
                proc.stop()

    legs = check_after_kills(ledger, "kcw", before, after, results, n, p.finished)
    # Each contact dialled once per attempt: a restarted controller never dials twice.
    dialled = Counter(leg.call_ref for leg in legs if not leg.agent_leg)
    assert all(k == 1 for k in dialled.values()), dialled


def _kill_env(broker: LocalBroker, seed: int, **roles: bool) -> Any:
    """The kill tests' stack: the roles named False run as processes of the test's own."""
    return local_env(
        broker.bootstrap,
        cps=20,
        time_scale=10,
        clock_scale=1,
        seed=seed,
        sim_profile=sim_profile(seed, machine_share=10),
        **roles,
    )


async def _start_with_three_agents(
    env: Any, campaign: str, contacts: Path, n: int, *, connected: int
) -> Any:
    """Three agents logged in, the campaign started and ``connected`` calls bridged: the pool
    as it was before the kill."""
    await login_agents(env.settings, 3)
    await wait_pool(env.settings, lambda p: available(p) == 3, 60, "3 agents available")
    await env.start(agent_spec(campaign, contacts, connect_within=30.0), total=n)
    await env.wait_for(
        campaign,
        lambda p: p.agents is not None and p.agents.connected >= connected,
        within=120,
    )
    return await wait_pool(env.settings, lambda p: True, 10, "the pool")


async def _when_completed(
    env: Any, campaign: str, *, within: float
) -> tuple[Any, Any, list[dict[str, Any]], dict[str, Any]]:
    """The campaign's last progress, the pool after it, its results and the ledger."""
    p = await env.wait_for(campaign, lambda p: p.status == CampaignStatus.COMPLETED, within=within)
    await asyncio.sleep(0.5)
    after = await wait_pool(env.settings, lambda p: True, 10, "the pool")
    return p, after, await results_raw(env.settings), env.sim.ledger()


def check_after_kills(
    ledger: dict[str, Any],
    campaign: str,
    before: Any,
    after: Any,
    results: list[dict[str, Any]],
    n: int,
    finished: int,
) -> list[Leg]:
    """What a kill must not change, from the ledger, the pool's record and the results: no
    agent in two calls, the same three agents with call counts that only grew, none offline,
    every human with one agent or abandoned, one result per contact. Returns the legs."""
    legs = legs_of(ledger, campaign)
    per_callee = check_bridges(legs)
    check_conversations(ledger, campaign)
    calls_before = {r.agent.id: r.calls for r in before.agents}
    calls_after = {r.agent.id: r.calls for r in after.agents}
    assert set(calls_after) == {"agent-0", "agent-1", "agent-2"}
    assert all(calls_after[a] >= calls_before.get(a, 0) for a in calls_after)
    assert all(r.state != AgentState.OFFLINE for r in after.agents)
    latest = {r["contact_id"]: r for r in results}
    assert len(latest) == n and finished == n
    for r in latest.values():
        if r["amd"] == "human":
            assert r["disposition"] in ("answered", "abandoned"), r
            if r["disposition"] == "answered" and r.get("agent_id"):
                assert len(per_callee.get(r["call_refs"][-1], [])) == 1, r
    assert sum(calls_after.values()) == sum(len(v) for v in per_callee.values())
    return legs


async def wait_ready(procs: list[RoleProcess], within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not all(p.ready() for p in procs):
        for p in procs:
            assert p.proc.poll() is None, f"exited:\n{p.log()[-3000:]}"
        assert asyncio.get_running_loop().time() < deadline, "roles not ready"
        await asyncio.sleep(0.5)
