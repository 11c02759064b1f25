"""The named-conversation record behind the ledger's ``conversations``: stays, ends, bounds."""

from __future__ import annotations

from orchestrator.sandbox.simulator.calls import Call
from orchestrator.sandbox.simulator.conversations import ConversationRegistry
from orchestrator.sandbox.simulator.engine import SimEngine
from orchestrator.sandbox.simulator.profile import load_profile


def t(s: float) -> float:
    return 1_700_000_000.0 + s


def _legs(*numbers: str) -> list[Call]:
    engine = SimEngine(profile=load_profile({"agents": [{"match": "^4477009005"}]}), seed=1)
    return [
        engine.new_leg(
            app_id="app",
            to={"type": "phone", "number": n},
            from_={"type": "phone", "number": "447700900000"},
            event_url=None,
            event_method="POST",
        )
        for n in numbers
    ]


async def test_conversation_record_keeps_each_stay_after_the_conversation_is_forgotten() -> None:
    callee, agent_leg = _legs("447700900100", "447700900501")
    reg = ConversationRegistry(max_records=2)
    conv = reg.join("app", "bridge-1", callee, start_on_enter=True, end_on_exit=True, now_sim=t(0))
    same = reg.join(
        "app", "bridge-1", agent_leg, start_on_enter=True, end_on_exit=True, now_sim=t(5)
    )
    assert same is conv
    assert reg.leave(conv, agent_leg, now_sim=t(65)) == [callee]  # endOnExit: the callee goes
    assert reg.leave(conv, callee, now_sim=t(66)) == []
    assert reg.get("app", "bridge-1") is None
    (rec,) = [r.to_json() for r in reg.log]
    assert rec["name"] == "bridge-1" and rec["uuid"] == conv.uuid
    assert rec["started"].startswith("2023-11-14T22:13:20") and rec["ended"] is not None
    legs = {leg["uuid"]: leg for leg in rec["legs"]}
    assert legs[agent_leg.uuid]["agent"] is True and legs[agent_leg.uuid]["seconds"] == 60.0
    # the callee was out when the platform hung it up, not when its task got round to leaving
    assert legs[callee.uuid]["agent"] is False and legs[callee.uuid]["seconds"] == 65.0
    for i in range(3):
        c = reg.join("app", f"n{i}", callee, start_on_enter=True, end_on_exit=False, now_sim=t(i))
        reg.leave(c, callee, now_sim=t(i + 1))
    assert [r.name for r in reg.log] == ["n1", "n2"]  # bounded: the oldest are dropped
    reg.clear()
    assert len(reg.log) == 0
