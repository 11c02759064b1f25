"""Agents over the control API: ``PUT /v1/agents/{id}/state`` and ``GET /v1/agents``.

The ingress app runs in-process with a control token; the agents role runs in-process too (its
runtime on the test broker), so a login written by the API shows up in ``GET /v1/agents`` only
after the real agents app applied it and checkpointed ``agents.state``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from contracts.agents import AgentCommand
from orchestrator.agents.main import AgentsService
from tests.integration.ingress.conftest import TOKEN, AppFactory, read_topic

pytestmark = [pytest.mark.integration]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROFILE = {"endpoint": {"type": "phone", "number": "447700900001"}, "skills": ["fr"]}


async def _agents(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/v1/agents", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


async def _wait(client: httpx.AsyncClient, pred: Any, within: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = await _agents(client)
        if pred(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached in {within}s: {body}")


async def test_put_state_and_list_agents(make_ingress: AppFactory) -> None:
    async with make_ingress() as ing:
        service = AgentsService(ing.settings, health_port=None)
        task = asyncio.create_task(service.run())
        try:
            c = ing.client
            assert (await c.get("/v1/agents")).status_code == 401
            assert await _agents(c) == {"agents": [], "callers_waiting": 0, "refused": []}

            r = await c.put(
                "/v1/agents/ann@team/state",
                json={"action": "login", "profile": PROFILE},
                headers=AUTH,
            )
            assert r.status_code == 202, r.text
            accepted = r.json()
            assert accepted["agent_id"] == "ann@team" and accepted["action"] == "login"
            body = await _wait(c, lambda b: [a["state"] for a in b["agents"]] == ["available"])
            [rec] = body["agents"]
            assert rec["agent"]["skills"] == ["fr"] and rec["agent"]["wrap_up_seconds"] == 30.0

            r = await c.put("/v1/agents/ann@team/state", json={"action": "offline"}, headers=AUTH)
            assert r.status_code == 202, r.text
            await _wait(c, lambda b: [a["state"] for a in b["agents"]] == ["offline"])

            # Refusals, each with its reason.
            r = await c.put("/v1/agents/bob/state", json={"action": "available"}, headers=AUTH)
            assert r.status_code == 404 and "no agent 'bob'" in r.text
            r = await c.put("/v1/agents/-bad/state", json={"action": "logout"}, headers=AUTH)
            assert r.status_code == 400 and "agent id" in r.text
            r = await c.put("/v1/agents/ann@team/state", content=b"{", headers=AUTH)
            assert r.status_code == 400 and "not valid JSON" in r.text
            r = await c.put("/v1/agents/ann@team/state", json={"action": "login"}, headers=AUTH)
            assert r.status_code == 422 and "profile" in r.text
            r = await c.put("/v1/agents/ann@team/state", json={"action": "dance"}, headers=AUTH)
            assert r.status_code == 422 and "action" in r.text
            bad = {"action": "login", "profile": {"endpoint": {"type": "phone", "number": "x"}}}
            r = await c.put("/v1/agents/ann@team/state", json=bad, headers=AUTH)
            assert r.status_code == 422 and "endpoint" in r.text, r.text
            r = await c.put(
                "/v1/agents/ann@team/state",
                json={"action": "offline", "profile": PROFILE},
                headers=AUTH,
            )
            assert r.status_code == 422 and "only with action login" in r.text
        finally:
            service.stop()
            await task

    # What the API wrote: AgentCommands keyed by the agent's id, each with a fresh event id.
    records = await read_topic(ing.settings, f"{ing.settings.topic_prefix}agents.control", expect=2)
    commands = [
        AgentCommand.model_validate(v) for k, v in records if v and v.get("type") == "agent.command"
    ]
    assert [(c.agent_id, c.action.value) for c in commands] == [
        ("ann@team", "login"),
        ("ann@team", "offline"),
    ]
    assert len({c.id for c in commands}) == 2
    assert {k for k, v in records if v and v.get("type") == "agent.command"} == {b"ann@team"}
