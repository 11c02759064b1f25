"""Retry rows that need a server to answer a certain way, over real HTTP against the simulator:
a 401 for an expired JWT (one fresh token, then success), and a 404 from a host where the call
does not live (retried at the call's ``region_url``).

These run the executor directly (no Kafka: ``voice.commands`` plays no part in these rows); its
results land in a list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.envelopes import CommandEnvelope, CommandKind, CommandResult, DeadLetter
from orchestrator.dispatcher.auth import JwtMinter, basic_auth_header
from orchestrator.dispatcher.budgets import Budgets
from orchestrator.dispatcher.client import VonageClient
from orchestrator.dispatcher.executor import Executor, Work
from orchestrator.dispatcher.metrics import DispatcherMetrics
from orchestrator.dispatcher.retry import POLICIES, Backoff
from orchestrator.sandbox.simulator import Simulator
from tests.integration.dispatcher.conftest import create_command

pytestmark = [pytest.mark.integration]

LIVE = {
    "webhooks": {"event_attempts": 1},
    "overrides": [{"match": ".*", "outcome": "human", "ring": 0.2, "talk": 60}],
}


class ListSink:
    def __init__(self) -> None:
        self.results: list[CommandResult] = []
        self.letters: list[DeadLetter] = []

    async def result(self, work: Work, result: CommandResult, *, final: bool) -> None:
        self.results.append(result)

    async def dead_letter(self, letter: DeadLetter, trace: str | None = None) -> None:
        self.letters.append(letter)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(cps=3, rps=15, seed=9, time_scale=1, profile=LIVE) as s:
        yield s


def work(cmd: CommandEnvelope) -> Work:
    return Work(cmd=cmd, topic="t", partition=0, offset=0, key=None, value=cmd.to_bytes())


def executor(client: VonageClient, sink: ListSink) -> Executor:
    return Executor(client, Budgets(3, 15), None, sink, DispatcherMetrics())


async def not_found_server() -> tuple[asyncio.Server, str]:
    """A host where no call lives: every request is a 404 (like a wrong Vonage region)."""

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:") and int(line.split(b":")[1]):
                await reader.readexactly(int(line.split(b":")[1]))
        body = b'{"title":"Not found","type":"https://developer.nexmo.com/api-errors#not-found"}'
        writer.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def live_call(sim: Simulator, app: Any) -> str:
    client = VonageClient(sim.base_url, jwt=JwtMinter(app.id, app.private_key_pem))
    sink = ListSink()
    create = create_command("route-0", "447711100000")
    body = {**create.body, "ncco": [{"action": "talk", "text": "please hold", "loop": 0}]}
    await executor(client, sink).execute(work(create.model_copy(update={"body": body})))
    await client.aclose()
    uuid = sink.results[-1].call_uuid
    assert uuid
    await asyncio.sleep(2.6)  # past Vonage's "too early" window
    return uuid


async def test_wrong_region_404_is_retried_at_region_url(sim: Simulator) -> None:
    app = sim.create_application("route")
    uuid = await live_call(sim, app)
    server, wrong_host = await not_found_server()
    try:
        for routing, attempts in (("fallback", 2), ("direct", 1)):
            client = VonageClient(
                wrong_host,
                jwt=JwtMinter(app.id, app.private_key_pem),
                region_routing=routing,  # type: ignore[arg-type]
            )
            sink = ListSink()
            cmd = CommandEnvelope(
                id=f"get-{routing}",
                occurred_at=datetime.now(UTC),
                flow_key="route-0",
                kind=CommandKind.GET_CALL,
                call_uuid=uuid,
                region_url=sim.base_url,  # the call's region, as the answer webhook gives it
            )
            await executor(client, sink).execute(work(cmd))
            await client.aclose()
            res = sink.results[-1]
            assert res.status == "succeeded", res
            assert res.attempts == attempts and res.response and res.response["uuid"] == uuid
        # Without a region_url a 404 is final, with Vonage's error body in the result.
        client = VonageClient(wrong_host, jwt=JwtMinter(app.id, app.private_key_pem))
        sink = ListSink()
        cmd = CommandEnvelope(
            id="get-none",
            occurred_at=datetime.now(UTC),
            flow_key="route-0",
            kind=CommandKind.GET_CALL,
            call_uuid=uuid,
        )
        await executor(client, sink).execute(work(cmd))
        await client.aclose()
        res = sink.results[-1]
        assert res.status == "failed" and res.http_status == 404
        assert res.error and res.error["title"] == "Not found"
        assert sink.letters == []  # a refusal is not an exhausted command
    finally:
        server.close()


async def test_401_gets_one_fresh_jwt(sim: Simulator) -> None:
    app = sim.create_application("auth")
    uuid = await live_call(sim, app)
    # The first token was minted an hour ago (expired); the refresh uses the real clock.
    clock = iter([time.time() - 3600])
    minter = JwtMinter(app.id, app.private_key_pem, clock=lambda: next(clock, time.time()))
    client = VonageClient(sim.base_url, jwt=minter)
    sink = ListSink()
    cmd = CommandEnvelope(
        id="hangup-1",
        occurred_at=datetime.now(UTC),
        flow_key="route-0",
        kind=CommandKind.HANGUP,
        call_uuid=uuid,
    )
    await executor(client, sink).execute(work(cmd))
    await client.aclose()
    res = sink.results[-1]
    assert res.status == "succeeded" and res.attempts == 2, res
    assert minter.minted == 2
    statuses = [r["status"] for r in sim.ledger()["requests"] if r["op"] == "update_call"]
    assert statuses == [401, 204]

    # A key the simulator does not know: one fresh token, still 401, then a failed result.
    other = sim.create_application("other")
    client = VonageClient(sim.base_url, jwt=JwtMinter("no-such-app", other.private_key_pem))
    sink = ListSink()
    await executor(client, sink).execute(work(cmd.model_copy(update={"id": "hangup-2"})))
    await client.aclose()
    res = sink.results[-1]
    assert res.status == "failed" and res.http_status == 401 and res.attempts == 2


async def test_application_api_with_basic_auth(sim: Simulator) -> None:
    client = VonageClient(
        sim.base_url, jwt=None, basic=basic_auth_header("simkey01", "sim-api-secret")
    )
    sink = ListSink()
    ex = executor(client, sink)

    def cmd(i: int, kind: CommandKind, body: dict[str, Any]) -> CommandEnvelope:
        return CommandEnvelope(
            id=f"app-{i}",
            occurred_at=datetime.now(UTC),
            flow_key="provisioning",
            kind=kind,
            body=body,
        )

    await ex.execute(work(cmd(1, CommandKind.APPLICATION_CREATE, {"name": "from-dispatcher"})))
    created = sink.results[-1]
    assert created.status == "succeeded" and created.http_status == 201, created
    assert created.response is not None
    app_id = created.response["id"]
    await ex.execute(work(cmd(2, CommandKind.APPLICATION_GET, {"id": app_id})))
    assert sink.results[-1].response is not None
    assert sink.results[-1].response["name"] == "from-dispatcher"
    await ex.execute(work(cmd(3, CommandKind.APPLICATION_LIST, {"page_size": 100})))
    listed = sink.results[-1].response
    assert listed is not None
    assert app_id in {a["id"] for a in listed["_embedded"]["applications"]}
    await ex.execute(work(cmd(4, CommandKind.APPLICATION_DELETE, {"id": app_id})))
    assert sink.results[-1].http_status == 204
    await ex.execute(work(cmd(5, CommandKind.APPLICATION_GET, {"id": app_id})))
    gone = sink.results[-1]
    assert gone.status == "failed" and gone.http_status == 404 and gone.attempts == 1
    await client.aclose()


async def test_exhausted_retries_go_to_the_dlq_with_a_failed_result() -> None:
    profile = {"faults": {"endpoints": {"get_call": {"error_rate": 1.0, "error_status": 503}}}}
    async with Simulator(cps=3, rps=15, seed=4, profile=profile) as failing:
        app = failing.create_application("exhaust")
        client = VonageClient(failing.base_url, jwt=JwtMinter(app.id, app.private_key_pem))
        sink = ListSink()
        cmd = CommandEnvelope(
            id="get-exhausted",
            occurred_at=datetime.now(UTC),
            flow_key="f-x",
            kind=CommandKind.GET_CALL,
            call_uuid="00000000-0000-0000-0000-000000000000",
        )
        ex = Executor(
            client, Budgets(3, 15), None, sink, DispatcherMetrics(), backoff=Backoff(0.05, 0.2)
        )
        await ex.execute(work(cmd))
        await client.aclose()
        res = sink.results[-1]
        assert (
            res.status == "failed" and res.attempts == POLICIES[CommandKind.GET_CALL].max_attempts
        )
        assert res.error is not None and res.error["reason"] == "max_attempts"
        assert [d.reason for d in sink.letters] == ["max_attempts"]
        gets = [r for r in failing.ledger()["requests"] if r["op"] == "get_call"]
        assert len(gets) == res.attempts and {r["status"] for r in gets} == {503}
