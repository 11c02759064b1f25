"""The leg and conversation machines on hand-written cases from DIGEST §4.2, §4.5 and §7."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pytest

from contracts.envelopes import CommandEnvelope, Outcome, stable_id
from handlers import conversations as convm
from handlers import legs as legm
from handlers import voice

T = "2026-01-05T09:00:0{}.000Z"


def ev(
    event_type: str, payload: dict[str, Any], *, key: str = "ref-1", n: int = 0, **env: Any
) -> dict[str, Any]:
    base = {
        "id": f"evt-{event_type}-{n}-{payload.get('uuid') or payload.get('call_uuid')}",
        "schema_version": 1,
        "occurred_at": T.format(n),
        "flow_key": key,
        "type": "vonage.webhook",
        "webhook": "event",
        "call_ref": key,
        "event_type": event_type,
        "received_at": T.format(n),
        "payload": payload,
    }
    base.update(env)
    return base


def status(
    s: str, uuid: str = "leg-a", conv: str = "CON-1", n: int = 0, **extra: Any
) -> dict[str, Any]:
    return ev(
        s,
        {"uuid": uuid, "conversation_uuid": conv, "status": s, "timestamp": T.format(n), **extra},
        n=n,
    )


def result(
    status_: str, *, uuid: str | None = None, hints: dict[str, Any] | None = None, error: Any = None
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "id": "res-1",
        "occurred_at": T.format(0),
        "flow_key": "ref-1",
        "type": "dispatcher.result",
        "command_id": "cmd-create",
        "kind": "create_call",
        "status": status_,
        "call_ref": "ref-1",
    }
    if uuid:
        res["call_uuid"] = uuid
        res["conversation_uuid"] = "CON-1"
    if hints:
        res["hints"] = hints
    if error:
        res["error"] = error
    return res


def fold(
    events: list[dict[str, Any]], idle: float = 1.0
) -> tuple[dict[str, Any], list[voice.Emit]]:
    flow = None
    emits: list[voice.Emit] = []
    for e in events:
        flow, out = voice.transition(flow, e)
        emits += out
    assert flow is not None
    res = voice.settle(flow, idle)
    return res.flow, emits + res.emits


def outcomes(emits: list[voice.Emit]) -> dict[str, dict[str, Any]]:
    return {
        e.value.get("uuid") or e.value.get("conversation_uuid") or "attempt": e.value
        for e in emits
        if e.topic == voice.OUTCOMES_TOPIC
    }


COMPLETED = {
    "duration": "12",
    "price": "0.0009",
    "rate": "0.0045",
    "start_time": T.format(1),
    "end_time": T.format(9),
    "network": "GB-FIXED",
}


@pytest.mark.parametrize(
    "failure,detail",
    [
        ("busy", None),
        ("unanswered", "unavailable"),
        ("timeout", None),
        ("failed", "cannot_route"),
        ("cancelled", None),
    ],
)
def test_failure_then_completed_in_either_order(failure: str, detail: str | None) -> None:
    extra = {"detail": detail} if detail else {}
    events = [
        status("started"),
        status(failure, n=3, **extra),
        status("completed", n=4, duration="0"),
    ]
    for order in permutations(events):
        _, emits = fold(list(order))
        leg = outcomes(emits)["leg-a"]
        assert leg["disposition"] == failure
        assert leg.get("detail") == detail
        assert outcomes(emits)["CON-1"]["disposition"] == failure


def test_failure_without_completed_is_not_final_yet() -> None:
    flow, emits = fold([status("started"), status("busy", n=2)])
    assert emits == []
    assert not voice.settle(flow, 3600).emits  # still waiting for completed after an hour
    late = voice.settle(flow, 10**6)  # abandoned after a day: the failure is the best answer
    assert outcomes(late.emits)["leg-a"]["disposition"] == "busy"


def test_rejected_is_final_without_completed() -> None:
    _, emits = fold([status("rejected", detail="restricted")])
    leg = outcomes(emits)["leg-a"]
    assert (leg["disposition"], leg["detail"]) == ("rejected", "restricted")


def test_completed_alone_waits_for_its_reason_then_gives_up_after_grace() -> None:
    flow, emits = fold([status("started"), status("completed", n=5, duration="0")])
    assert emits == []
    res = voice.settle(flow, 1.0)
    assert res.emits == [] and not res.finished and res.next_check_s == pytest.approx(29.0)
    # The reason arrives late: the normal outcome.
    flow2, _ = voice.transition(flow, status("unanswered", n=4))
    assert outcomes(voice.settle(flow2, 1.0).emits)["leg-a"]["disposition"] == "unanswered"
    # It never arrives: reported as completed after the grace period.
    late = voice.settle(flow, 31.0)
    assert outcomes(late.emits)["leg-a"]["disposition"] == "completed" and late.finished


def test_answered_leg_takes_billing_from_completed_and_amd_from_call_uuid() -> None:
    events = [
        status("answered", n=1, start_time=None, rate=None, network=None),
        status("completed", n=9, **COMPLETED),
        ev(
            "machine",
            {
                "call_uuid": "leg-a",
                "conversation_uuid": "CON-1",
                "status": "machine",
                "timestamp": T.format(3),
            },
        ),
    ]
    for order in permutations(events):
        _, emits = fold(list(order))
        leg = outcomes(emits)["leg-a"]
        assert leg["disposition"] == "answered"
        assert (leg["duration_s"], leg["price"], leg["rate"], leg["network"]) == (
            12,
            "0.0009",
            "0.0045",
            "GB-FIXED",
        )
        assert leg["amd"] == "machine"
        Outcome.model_validate(leg)


def test_create_call_failed_reports_one_failed_attempt() -> None:
    _, emits = fold([result("failed", error={"title": "Bad Request"})])
    (rec,) = [e.value for e in emits]
    assert rec["id"] == Outcome.make_id("leg", "ref-1", "cmd-create")
    assert (rec["disposition"], rec["detail"], rec["scope"]) == ("failed", "Bad Request", "leg")


def test_unknown_result_stays_open_until_resolved() -> None:
    flow, emits = fold([result("unknown")])
    assert emits == []
    assert not voice.settle(flow, 3600).finished
    flow, _ = voice.transition(flow, result("succeeded", uuid="leg-a"))
    assert not voice.settle(flow, 3600).finished  # now waiting for the leg itself


def test_unresolved_flow_is_abandoned_as_unknown_after_a_day() -> None:
    flow, _ = fold([result("unknown")])
    res = voice.settle(flow, voice.SettleConfig().abandon_after_s)
    assert [e.value["disposition"] for e in res.emits] == ["unknown"] and res.finished


@pytest.mark.parametrize("machine_first", [True, False])
def test_hangup_on_machine_is_sent_once_whatever_arrives_first(machine_first: bool) -> None:
    machine = ev(
        "machine", {"call_uuid": "leg-a", "conversation_uuid": "CON-1", "status": "machine"}
    )
    res = result("succeeded", uuid="leg-a", hints={"on_machine": "hangup"})
    events = [machine, res, machine, res] if machine_first else [res, machine, res, machine]
    _, emits = fold(events)
    cmds = [e.value for e in emits if e.topic == voice.COMMANDS_TOPIC]
    assert len(cmds) == 1
    cmd = CommandEnvelope.model_validate(cmds[0])
    assert (cmd.kind, cmd.call_uuid, cmd.body) == ("hangup", "leg-a", {"action": "hangup"})
    assert cmd.id == stable_id("cmd", "ref-1", "leg-a", "on_machine", "hangup")


def test_voicemail_drop_waits_for_the_beep() -> None:
    hints = {"on_machine": "message", "machine_message": "Call us back", "wait_for_beep": True}
    flow, emits = fold(
        [
            result("succeeded", uuid="leg-a", hints=hints),
            ev(
                "machine", {"call_uuid": "leg-a", "conversation_uuid": "CON-1", "status": "machine"}
            ),
        ]
    )
    assert [e for e in emits if e.topic == voice.COMMANDS_TOPIC] == []
    beep = ev(
        "machine",
        {
            "call_uuid": "leg-a",
            "conversation_uuid": "CON-1",
            "status": "machine",
            "sub_state": "beep_start",
        },
        n=1,
    )
    _, out = voice.transition(flow, beep)
    assert [(e.value["kind"], e.value["body"]["text"]) for e in out] == [
        ("talk_start", "Call us back")
    ]


def test_human_needs_no_command() -> None:
    _, emits = fold(
        [
            result("succeeded", uuid="leg-a", hints={"on_machine": "hangup"}),
            ev("human", {"call_uuid": "leg-a", "conversation_uuid": "CON-1", "status": "human"}),
        ]
    )
    assert [e for e in emits if e.topic == voice.COMMANDS_TOPIC] == []


def test_conversation_ends_with_its_last_leg_and_sums_prices() -> None:
    a_done = status("completed", "leg-a", n=8, **{**COMPLETED, "price": "0.10"})
    events = [
        status("answered", "leg-a", n=1),
        status("answered", "leg-b", n=2),
        a_done,
    ]
    flow, emits = fold(events)
    assert set(outcomes(emits)) == {"leg-a"}  # leg-b still talking: the conversation is open
    flow, _ = voice.transition(
        flow, status("completed", "leg-b", n=9, **{**COMPLETED, "price": "0.05"})
    )
    conv = outcomes(voice.settle(flow, 1.0).emits)["CON-1"]
    assert conv["legs"] == ["leg-a", "leg-b"]
    assert conv["price"] == "0.15"
    assert conv["disposition"] == "answered"


def test_transfer_into_named_conversation_with_roles_and_recording() -> None:
    hints = {"role": "moderator", "conversation_name": "standup"}
    events = [
        result("succeeded", uuid="leg-a", hints=hints),
        status("answered", "leg-a", n=1),
        ev(
            "transfer",
            {
                "uuid": "leg-a",
                "conversation_uuid_from": "CON-1",
                "conversation_uuid_to": "CON-room",
                "timestamp": T.format(2),
            },
        ),
        status("answered", "leg-b", conv="CON-room", n=2),
        ev(
            "record",
            {
                "recording_uuid": "rec-1",
                "recording_url": "https://x/rec-1",
                "conversation_uuid": "CON-room",
                "start_time": T.format(2),
                "end_time": T.format(9),
            },
        ),
        ev(
            "transcribed",
            {
                "recording_uuid": "rec-1",
                "transcription_url": "https://x/tx-1",
                "conversation_uuid": "CON-room",
                "status": "transcribed",
            },
        ),
        status("completed", "leg-a", conv="CON-room", n=8, **COMPLETED),
        status("completed", "leg-b", conv="CON-room", n=9, **COMPLETED),
    ]
    flow, emits = fold(events)
    outs = outcomes(emits)
    assert outs["CON-room"]["detail"] == "standup"
    assert outs["CON-room"]["recording_urls"] == ["https://x/rec-1"]
    assert outs["CON-room"]["legs"] == ["leg-a", "leg-b"]
    assert outs["CON-1"]["legs"] == ["leg-a"]
    assert flow["convs"]["CON-room"]["roles"] == {"leg-a": "moderator"}
    assert flow["convs"]["CON-room"]["recs"]["rec-1"]["tx"] == "https://x/tx-1"
    assert flow["legs"]["leg-a"]["left"] == {"CON-1": 1}
    assert voice.describe(flow)["conversations"]["CON-room"]["name"] == "standup"


def test_record_before_or_after_transcription_merges() -> None:
    conv = convm.new_conversation("CON-1")
    a = convm.apply_record(conv, "r", "https://x/r", start=None, end=None, size=3, leg_uuid=None)
    a = convm.apply_transcription(a, "r", "https://x/t")
    b = convm.apply_transcription(conv, "r", "https://x/t")
    b = convm.apply_record(b, "r", "https://x/r", start=None, end=None, size=3, leg_uuid=None)
    assert a == b


def test_leg_status_rank_and_lattice() -> None:
    leg = legm.new_leg("u")
    for s in ("ringing", "started", "answered"):
        leg = legm.apply_status(leg, s, {}, None)
    assert legm.status(leg) == "answered"
    assert not legm.is_final(leg)
    leg = legm.apply_status(leg, "completed", {"duration": 5}, None)
    assert legm.is_final(leg) and legm.disposition(leg) == "answered"


def test_transition_generic_entries() -> None:
    leg, out = legm.transition(
        None, {"kind": "status", "uuid": "u", "status": "rejected", "payload": {}}
    )
    assert legm.is_final(leg) and out == []
    conv, out = convm.transition(None, {"kind": "named", "conversation_uuid": "CON-1", "name": "x"})
    assert conv["name"] == "x" and out == []
    with pytest.raises(voice.InvalidEvent):
        legm.transition(None, {"kind": "nope", "uuid": "u"})


def test_flow_key_mismatch_is_invalid() -> None:
    flow, _ = voice.transition(None, status("started"))
    with pytest.raises(voice.InvalidEvent):
        voice.transition(flow, {**status("ringing"), "flow_key": "other"})
