"""The dispatcher in-process against the real broker and the real simulator over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.envelopes import CommandEnvelope, CommandKind, command_key
from orchestrator.config import Settings
from orchestrator.dispatcher.service import DispatcherOptions, DispatcherService
from orchestrator.sandbox.simulator import Simulator
from tests.integration.dispatcher.conftest import (
    Reader,
    accepted_create_times,
    creates,
    dial_counts,
    produce,
    window_anomalies,
    with_vonage,
)

pytestmark = [pytest.mark.integration]


class Running:
    def __init__(self, service: DispatcherService, task: asyncio.Task[None]) -> None:
        self.service = service
        self.task = task

    async def stop(self) -> None:
        self.service.stop()
        await asyncio.wait_for(self.task, 30)


async def start_dispatcher(settings: Settings, **opts: Any) -> Running:
    options = DispatcherOptions(health_port=0, seed=1, **opts)
    service = DispatcherService(settings, options)
    task = asyncio.create_task(service.run())
    return Running(service, task)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(cps=3, rps=15, seed=11, time_scale=30) as s:
        yield s


async def test_creates_use_the_budget_without_exceeding_it(
    kafka_settings: Settings, sim: Simulator
) -> None:
    app = sim.create_application("dispatch")
    settings = with_vonage(kafka_settings, sim, app)
    cmds = creates("s", 24)
    async with Reader(settings) as reader:
        running = await start_dispatcher(settings, cps=3)
        try:
            await produce(settings, cmds)
            got = await reader.wait_finals({c.id for c in cmds}, within=60)
        finally:
            await running.stop()
    assert got.statuses() == {"succeeded": 24}
    for c in cmds:
        res = got.finals(c.id)[0]
        assert res["call_uuid"] and res["conversation_uuid"] and res["http_status"] == 201
        assert res["flow_key"] == c.flow_key and res["call_ref"] == c.call_ref
    ledger = sim.ledger()
    assert window_anomalies(ledger, cps=3, rps=15) == []
    assert max(dial_counts(ledger).values()) == 1
    times = accepted_create_times(ledger)
    assert len(times) == 24
    # How much of the budget is used is test_budget's claim (60 creates, past the limiter's
    # warm-up, where the first RTT_SAMPLES round trips hold their slot for the whole trip).
    assert not [r for r in ledger["requests"] if r["status"] == 429]


#: Every callee answers and stays on the line for a minute (control commands need a live call).
LIVE = {"overrides": [{"match": ".*", "outcome": "human", "ring": 0.5, "talk": 60}]}


async def test_control_commands_keep_per_call_order_and_map_results(
    kafka_settings: Settings,
) -> None:
    async with Simulator(cps=3, rps=15, seed=3, time_scale=1, profile=LIVE) as live:
        await _control_commands(kafka_settings, live)


async def _control_commands(kafka_settings: Settings, sim: Simulator) -> None:
    app = sim.create_application("dispatch")
    settings = with_vonage(kafka_settings, sim, app)
    # A looping talk keeps the call up (for the profile's 60 s) until the hangup: a one-shot talk
    # ended it after ~2 s, and on a loaded machine the hangup then found the call over (404).
    first = creates("o", 1)[0]
    hold = [{"action": "talk", "text": "please hold", "loop": 0}]
    create = first.model_copy(update={"body": {**first.body, "ncco": hold}})
    async with Reader(settings) as reader:
        running = await start_dispatcher(settings, cps=3)
        try:
            await produce(settings, [create])
            got = await reader.wait_finals({create.id}, within=30)
            uuid = got.finals(create.id)[0]["call_uuid"]

            def control(
                i: int, kind: CommandKind, body: dict[str, Any] | None = None
            ) -> CommandEnvelope:
                return CommandEnvelope(
                    id=f"ctl-{i}",
                    occurred_at=datetime.now(UTC),
                    flow_key=create.flow_key,
                    kind=kind,
                    call_ref=create.call_ref,
                    call_uuid=uuid,
                    body=body or {},
                    hints={"seq": i},
                )

            ctl = [
                control(1, CommandKind.TALK_START, {"text": "one moment please", "loop": 0}),
                control(2, CommandKind.MUTE),
                control(3, CommandKind.UNMUTE),
                control(4, CommandKind.GET_CALL),
                control(5, CommandKind.HANGUP),
                control(6, CommandKind.DTMF, {"digits": "bad!"}),  # invalid: fails before sending
            ]
            for c in ctl:
                assert command_key(c) == create.flow_key.encode()
            await produce(settings, ctl)
            got = await reader.wait_finals({c.id for c in ctl}, within=30)
        finally:
            await running.stop()
    finals = {c.id: got.finals(c.id)[0] for c in ctl}
    assert finals["ctl-1"]["status"] == "succeeded", finals["ctl-1"]
    # Hints are opaque to the dispatcher and echoed on the result for the state machine.
    assert all(finals[c.id]["hints"] == {"seq": int(c.id[4:])} for c in ctl)
    # The talk came within Vonage's "too early" window after the create: a 400, then a retry.
    too_early = [r for r in sim.ledger()["requests"] if r.get("reason") == "too_early"]
    assert too_early and finals["ctl-1"]["attempts"] >= 2
    assert finals["ctl-4"]["response"]["uuid"] == uuid
    assert finals["ctl-5"]["status"] == "succeeded"
    assert finals["ctl-6"]["status"] == "failed"
    assert finals["ctl-6"]["error"]["reason"] == "invalid_command"
    # The simulator saw them in command order (one call's commands are never reordered).
    ops = [
        (r["op"], r["method"])
        for r in sim.ledger()["requests"]
        if r.get("call_uuid") == uuid or f"/v1/calls/{uuid}" in r["path"]
    ]
    ops = [o for o in ops if o[0] != "create_call"]
    order = [o[0] for o in ops if o[0] in ("start_talk", "update_call", "get_call")]
    first = {name: order.index(name) for name in set(order)}
    assert first["start_talk"] < first["get_call"]
