"""Agents and the bridge over real HTTP: the simulator plays both the callee and the agent side.

The product bridges a person who answered to an agent: the callee's NCCO puts them in a named
conversation, a second created call puts the agent in the same one, both with ``endOnExit``.
These tests play the product's part by hand and check the legs' webhooks and the ledger a
checker would read (pairing, stays, AMD results), as a checker would, without trusting anyone.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver
from tests.integration.simulator.test_websocket import WsServer

pytestmark = pytest.mark.integration

AGENT_NUMBER = "447700900500"
AGENT_SIP = "sip:agent-1@pbx.example.com"
CALLEE = "447700900321"


def bridge_ncco(name: str) -> list[dict[str, Any]]:
    """The callee's side and the agent's side alike (startOnEnter defaults to true)."""
    return [{"action": "conversation", "name": name, "endOnExit": True}]


def profile(callee: str = "human", talk: float = 3.0, **agent: Any) -> dict[str, Any]:
    """Callees all ``callee`` staying ``talk`` s; destinations starting 4477009005 or
    ``sip:agent-`` are agents with ``agent``'s keys."""
    prof = only(
        callee,
        agents=[{"match": r"^4477009005|^sip:agent-", **agent}],
        limits={"too_early_seconds": 0},
    )
    prof["timing"] = {**prof["timing"], "talk": talk, "machine_talk": talk}
    return prof


def body(receiver: Receiver, ref: str, to: dict[str, Any], ncco: list[Any]) -> dict[str, Any]:
    return {
        "to": [to],
        "from": {"type": "phone", "number": "447700900000"},
        "ncco": ncco,
        "event_url": [receiver.url(f"/webhooks/event/{ref}")],
    }


def phone(number: str) -> dict[str, Any]:
    return {"type": "phone", "number": number}


async def create(sim: Any, token: str, payload: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=sim.base_url) as c:
        r = await c.post("/v1/calls", json=payload, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return str(r.json()["uuid"])


async def settle(sim: Any) -> None:
    async with asyncio.timeout(30):
        await sim.wait_idle()


def events(receiver: Receiver, ref: str) -> list[dict[str, Any]]:
    return [r.data for r in receiver.under(f"/webhooks/event/{ref}")]


def statuses(receiver: Receiver, ref: str) -> list[str]:
    return [str(e["status"]) for e in events(receiver, ref) if "status" in e]


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def by_ref(sim: Any) -> dict[str, dict[str, Any]]:
    return {c["call_ref"]: c for c in sim.ledger()["calls"]}


def overlap(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Seconds two stays (ledger ``conversations[].legs[]``) were in the conversation together."""
    start = max(ts(a["joined"]), ts(b["joined"]))
    end = min(ts(a["left"]), ts(b["left"]))
    return max(0.0, end - start)


# --- the agent side on its own -------------------------------------------------------------------


async def test_agent_answers_after_its_span_and_hangs_up_after_its_handle(
    make_sim: Any, receiver: Receiver
) -> None:
    # Callees would be voicemails answering after 1 s with AMD 100 % wrong: none of it for agents.
    prof = {**profile("machine", answer=6, handle=12), "amd": {"accuracy": 0}}
    async with make_sim(profile=prof) as sim:
        app = sim.create_application()
        payload = body(receiver, "ag", {"type": "sip", "uri": AGENT_SIP}, bridge_ncco("b-solo"))
        payload["machine_detection"] = "continue"
        await create(sim, app.jwt(), payload)
        await settle(sim)
        assert statuses(receiver, "ag") == ["started", "ringing", "answered", "human", "completed"]
        done = events(receiver, "ag")[-1]
        assert done["disconnected_by"] == "user"  # the agent hung up: its handle time was up
        assert 12 <= int(done["duration"]) <= 18
        leg = by_ref(sim)["ag"]
        assert leg["agent"] is True and leg["outcome"] == "human" and leg["amd_result"] == "human"
        ring = ts(leg["times"]["answered"]) - ts(leg["times"]["ringing"])
        assert 6 <= ring < 12


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ({"busy": 1}, ["started", "ringing", "busy", "completed"]),
        ({"unreachable": 1}, ["started", "failed", "completed"]),
        ({"unanswered": 1}, ["started", "ringing", "unanswered", "completed"]),
    ],
)
async def test_failing_agents_end_as_such(
    make_sim: Any, receiver: Receiver, behaviour: dict[str, float], expected: list[str]
) -> None:
    async with make_sim(profile=profile("human", **behaviour)) as sim:
        app = sim.create_application()
        await create(sim, app.jwt(), body(receiver, "af", phone(AGENT_NUMBER), bridge_ncco("x")))
        await settle(sim)
        assert statuses(receiver, "af") == expected
        leg = by_ref(sim)["af"]
        assert leg["agent"] is True and leg["outcome"] == expected[-2]
        assert sim.ledger()["conversations"] == []  # it never got to the conversation


# --- the bridge -----------------------------------------------------------------------------------


async def test_agent_hanging_up_ends_the_callee_who_stays_past_their_patience(
    make_sim: Any, receiver: Receiver
) -> None:
    """A person alone would leave after 15 s; bridged, they talk until the agent (40 s) is done."""
    async with make_sim(profile=profile("human", talk=15, answer=1, handle=40), cps=100) as sim:
        app = sim.create_application()
        callee = await create(
            sim, app.jwt(), body(receiver, "c1", phone(CALLEE), bridge_ncco("b1"))
        )
        agent = await create(
            sim, app.jwt(), body(receiver, "a1", phone(AGENT_NUMBER), bridge_ncco("b1"))
        )
        await settle(sim)
        c_events, a_events = events(receiver, "c1"), events(receiver, "a1")
        assert statuses(receiver, "c1") == ["started", "ringing", "answered", "completed"]
        assert statuses(receiver, "a1") == ["started", "ringing", "answered", "completed"]
        assert a_events[-1]["disconnected_by"] == "user"
        assert c_events[-1]["disconnected_by"] == "platform"  # ended by the agent's endOnExit
        assert int(c_events[-1]["duration"]) >= 30  # alone: 15 at most
        (conv,) = sim.ledger()["conversations"]
        # every event after joining carries the named conversation's uuid, for both legs
        for evs in (c_events, a_events):
            (transfer,) = [e for e in evs if "conversation_uuid_to" in e]
            assert transfer["conversation_uuid_to"] == conv["uuid"]
            assert evs[-1]["conversation_uuid"] == conv["uuid"]
        assert {leg["uuid"] for leg in conv["legs"]} == {callee, agent}


async def test_callee_who_loses_patience_leaves_before_the_agent_arrives(
    make_sim: Any, receiver: Receiver
) -> None:
    async with make_sim(profile=profile("human", talk=3, answer=25, handle=4), cps=100) as sim:
        app = sim.create_application()
        await create(sim, app.jwt(), body(receiver, "c2", phone(CALLEE), bridge_ncco("b2")))
        await create(sim, app.jwt(), body(receiver, "a2", phone(AGENT_NUMBER), bridge_ncco("b2")))
        await settle(sim)
        callee_done = events(receiver, "c2")[-1]
        assert callee_done["disconnected_by"] == "user" and int(callee_done["duration"]) < 10
        first, second = sim.ledger()["conversations"]
        assert [leg["agent"] for leg in first["legs"]] == [False]  # nobody came
        assert [leg["agent"] for leg in second["legs"]] == [True]  # the agent, too late, alone
        assert ts(first["ended"]) <= ts(second["created"])


async def test_callee_hung_up_by_rest_ends_the_agent(make_sim: Any, receiver: Receiver) -> None:
    async with make_sim(profile=profile("human", talk=600, answer=1, handle=600), cps=100) as sim:
        app = sim.create_application()
        callee = await create(
            sim, app.jwt(), body(receiver, "c3", phone(CALLEE), bridge_ncco("b3"))
        )
        await create(sim, app.jwt(), body(receiver, "a3", phone(AGENT_NUMBER), bridge_ncco("b3")))

        # the agent's transfer event is posted once it has joined the callee
        await receiver.wait_for(
            lambda: any("conversation_uuid_to" in e for e in events(receiver, "a3"))
        )
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            r = await c.put(
                f"/v1/calls/{callee}",
                json={"action": "hangup"},
                headers={"Authorization": f"Bearer {app.jwt()}"},
            )
        assert r.status_code == 204, r.text
        await settle(sim)
        agent_done = events(receiver, "a3")[-1]
        assert agent_done["status"] == "completed"
        assert agent_done["disconnected_by"] == "platform" and int(agent_done["duration"]) < 60
        (conv,) = sim.ledger()["conversations"]
        callee_stay, agent_stay = conv["legs"]
        assert (callee_stay["uuid"], callee_stay["agent"], agent_stay["agent"]) == (
            callee,
            False,
            True,
        )
        assert agent_stay["left"] == callee_stay["left"] == conv["ended"]  # out at the same instant


async def test_voicemail_bridged_to_an_agent_ends_it_and_the_ledger_shows_it(
    make_sim: Any, receiver: Receiver
) -> None:
    """A product bug a checker must catch: a machine-answered callee put through to an agent."""
    async with make_sim(profile=profile("machine", talk=8, answer=1, handle=600), cps=100) as sim:
        app = sim.create_application()
        payload = body(receiver, "c4", phone(CALLEE), bridge_ncco("b4"))
        payload["advanced_machine_detection"] = {"behavior": "continue", "mode": "detect"}
        await create(sim, app.jwt(), payload)
        await create(sim, app.jwt(), body(receiver, "a4", phone(AGENT_NUMBER), bridge_ncco("b4")))
        await settle(sim)
        agent_done = events(receiver, "a4")[-1]
        assert agent_done["disconnected_by"] == "platform" and int(agent_done["duration"]) < 60
        calls = by_ref(sim)
        assert calls["c4"]["amd_result"] == "machine" and calls["c4"]["agent"] is False
        (conv,) = sim.ledger(call_ref="c4")["conversations"]
        machine_with_agent = [
            (m["uuid"], a["uuid"])
            for m in conv["legs"]
            if m["amd_result"] == "machine"
            for a in conv["legs"]
            if a["agent"] and overlap(m, a) > 0
        ]
        assert machine_with_agent == [(calls["c4"]["uuid"], calls["a4"]["uuid"])]


async def test_ledger_gives_pairs_talk_time_and_double_booking(
    make_sim: Any, receiver: Receiver
) -> None:
    """Two callees bridged at once to the same agent number: the checker's sums, from the ledger."""
    prof = profile("human", talk=600, answer=1, handle=[20, 30])
    async with make_sim(profile=prof, cps=100) as sim:
        app = sim.create_application()
        for i in (1, 2):
            await create(
                sim, app.jwt(), body(receiver, f"c5{i}", phone(CALLEE), bridge_ncco(f"m{i}"))
            )
            await create(
                sim, app.jwt(), body(receiver, f"a5{i}", phone(AGENT_NUMBER), bridge_ncco(f"m{i}"))
            )
        await settle(sim)
        ledger = sim.ledger()
        calls = {c["uuid"]: c for c in ledger["calls"]}
        pairs: list[tuple[str, str]] = []
        talk: dict[str, float] = {}
        stays: dict[str, list[dict[str, Any]]] = {}
        for conv in ledger["conversations"]:
            assert conv["ended"] is not None
            for a in (leg for leg in conv["legs"] if leg["agent"]):
                stays.setdefault(a["to"], []).append(a)
                for c in (leg for leg in conv["legs"] if not leg["agent"]):
                    together = overlap(a, c)
                    if together > 0:
                        pairs.append((calls[c["uuid"]]["call_ref"], calls[a["uuid"]]["call_ref"]))
                        talk[a["to"]] = talk.get(a["to"], 0.0) + together
        assert sorted(pairs) == [("c51", "a51"), ("c52", "a52")]
        agent_durations = sum(int(c["duration"]) for c in calls.values() if c["agent"])
        assert agent_durations - 10 < talk[AGENT_NUMBER] <= agent_durations + 1
        assert all(
            leg["seconds"] == pytest.approx(ts(leg["left"]) - ts(leg["joined"]), abs=0.01)
            for conv in ledger["conversations"]
            for leg in conv["legs"]
        )
        first, second = stays[AGENT_NUMBER]
        assert overlap(first, second) > 0  # one agent in two conversations at once: double-booked
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            one = (await c.get("/_sim/ledger?call_ref=a52&requests=0")).json()
            assert [conv["name"] for conv in one["conversations"]] == ["m2"]
            assert "conversations" not in (await c.get("/_sim/ledger?conversations=0")).json()


async def test_websocket_agent_hangs_up_after_its_handle_only_when_asked(
    make_sim: Any, receiver: Receiver
) -> None:
    async with WsServer() as server:  # a bot that never closes the socket itself
        prof = profile("human")
        prof["agents"] = [{"match": "^ws://127\\.0\\.0\\.1", "handle": 8, "websocket_handle": True}]
        async with make_sim(profile=prof, cps=100) as sim:
            app = sim.create_application()
            ws = {"type": "websocket", "uri": server.url(), "content-type": "audio/l16;rate=16000"}
            await create(sim, app.jwt(), body(receiver, "w1", ws, bridge_ncco("bw")))
            await settle(sim)
            assert statuses(receiver, "w1") == ["started", "answered", "completed"]
            done = events(receiver, "w1")[-1]
            assert done["disconnected_by"] == "user" and 8 <= int(done["duration"]) < 14
            leg = by_ref(sim)["w1"]
            assert leg["agent"] is True and leg["websocket"]["closed_by"] == "simulator"
