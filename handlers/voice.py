"""The voice machine: everything about one flow key (a call we placed, or an inbound call): its
legs, conversations and dial attempts.

Two pure functions, no I/O and no clock (time comes from the events, or as an argument):

``transition(state, event) -> (state, emits)``
    Applies one record from ``voice.events``: an ``EventEnvelope`` (a Vonage webhook) or a
    ``CommandResult`` (the dispatcher's result), as a pydantic object or its JSON dict (the worker
    passes dicts: it avoids validating twice on the hot path). It updates the leg, conversation
    and attempt machines (``handlers.legs``, ``handlers.conversations``), all joins, so any order
    and any duplicates give the same state. It emits **commands** only, never outcomes.

``settle(state, idle_s, config) -> Settled``
    Emits the **outcomes** of whatever is final and not yet reported: one per leg, one per
    conversation, one per failed dial attempt; each exactly once (the state remembers what it
    emitted) and with a deterministic id (``Outcome.make_id``), so a replay after a crash
    re-produces the same id. The worker calls it when the flow key has been quiet for a short
    *settle window* (default 1 s): a final leg's late facts (an AMD result or a recording that
    Vonage delivered after ``completed``), and the legs of a conversation that arrive late, are
    then part of the outcome, so its content does not depend on arrival order either.
    ``idle_s`` (how long the flow key has been quiet, measured by the caller) also drives the two
    time-outs: a leg with ``completed`` but no reason is reported as ``completed`` after
    ``completed_grace_s``; a flow key with no end in sight is closed as ``unknown`` after
    ``abandon_after_s`` (longer than Vonage's maximum call length, 24 h). The outcomes of a
    campaign's call (its call_ref says which campaign, ``contracts.call_refs``) go to the
    campaign's partition of ``campaign.control`` too, so the controller needs no relay.

**Policy (data-driven, per flow key).** The create-call ``CommandResult`` may carry *hints* (the
command's, echoed by the dispatcher):

====================  ==========================================================================
hint                  effect
====================  ==========================================================================
``on_machine``        ``continue`` (default: nothing), ``hangup`` (send a ``hangup`` command for a
                      leg whose AMD result is ``machine``), ``message`` (send ``talk_start`` with
                      ``machine_message``: voicemail drop)
``wait_for_beep``     with ``message``: wait for AMD ``sub_state`` ``beep_start``/``beep_timeout``
``machine_message``   text for ``message``; ``language`` and ``style`` are passed to Vonage
``account``           rate-limit scope for the commands (default ``default``)
``role``              ``moderator`` / ``attendee``: the created leg's role in a named conversation
``conversation_name`` the conference the created leg is transferred into (reported as ``detail``)
``agents``            ``bridge``: an agent campaign's call (below)
====================  ==========================================================================

**Agent campaigns** (``contracts.agent_calls``). A call whose create-call carried the ``agents``
hint gets, live (in ``transition``, not at settle), one ``LegMilestone`` per AMD result of its
leg on ``campaign.control`` (the controller reserves an agent for a human), or ``ended`` when
the leg ends with no AMD result (the controller stops counting it as ringing), and, once a human
milestone went out, an ``AgentCall`` ``callee_ended`` on ``agents.control`` when the leg ends.
A flow whose key is an agent leg's reference (``{call_ref}.a{n}``) reports its leg to
``agents.control`` the same way: ``agent_answered``, then ``agent_ended``; or ``agent_failed``
with the failure status (busy, unanswered, failed, timeout, cancelled, rejected), sent as soon
as one is seen (such a leg is never answered); ``settle`` sends what a forced disposition adds.
Each once (marked in ``commands``, like the policy's commands). What an agentless call pays: a
dict lookup and a substring test of its flow key's last five characters per record (an agent
leg's reference ends in ``.a{n}``), nothing else.

Commands are emitted once per (leg, reason), with ids from ``stable_id`` so a re-emission after a
crash is deduplicated downstream. With standard AMD, Vonage can hang up by itself
(``machine_detection: hangup``); the ``hangup`` hint is for flows that need to act themselves.

The state's shape is :class:`contracts.voice_state.VoiceState`; its outcomes are
:data:`contracts.envelopes.OutcomeRecord` and its commands :class:`contracts.envelopes.CommandRecord`.
Bad input raises :class:`InvalidEvent` (and nothing else); the worker dead-letters it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from contracts.call_refs import campaign_of, parse_agent_leg_ref
from contracts.envelopes import CommandRecord, Outcome, OutcomeRecord, stable_id
from contracts.topics import AGENTS_CONTROL, CAMPAIGN_CONTROL, VOICE_COMMANDS, VOICE_OUTCOMES
from contracts.voice_state import (
    VOICE_STATE_VERSION,
    CommandOutcome,
    ConversationState,
    DialAttempt,
    ErrorEvent,
    LegState,
    OtherEvent,
    Policy,
    VoiceState,
)
from handlers import conversations, legs
from handlers._voice_common import (
    EPOCH,
    InvalidEvent,
    canon_ts,
    capped_put,
    opt_str,
    req_str,
)

__all__ = [
    "AGENTS_TOPIC",
    "CAMPAIGN_TOPIC",
    "COMMANDS_TOPIC",
    "OUTCOMES_TOPIC",
    "Emit",
    "InvalidEvent",
    "SettleConfig",
    "Settled",
    "describe",
    "new_voice_state",
    "settle",
    "transition",
]

#: Logical topic names (``contracts.topics``); the worker adds the prefix.
OUTCOMES_TOPIC = VOICE_OUTCOMES.name
COMMANDS_TOPIC = VOICE_COMMANDS.name
CAMPAIGN_TOPIC = CAMPAIGN_CONTROL.name
AGENTS_TOPIC = AGENTS_CONTROL.name


class Emit(NamedTuple):
    """One output record: a logical topic, its Kafka key and the JSON value.

    ``value`` is an ``Outcome`` (topics ``voice.outcomes`` and ``campaign.control``), a
    ``CommandEnvelope`` (``voice.commands``), a ``LegMilestone`` (``campaign.control``) or an
    ``AgentCall`` (``agents.control``), in JSON form; it validates against those models.
    """

    topic: str
    key: str
    value: OutcomeRecord | CommandRecord | dict[str, Any]


@dataclass(frozen=True, slots=True)
class SettleConfig:
    #: A leg with ``completed`` and no reason (no answered, no failure status) is reported as
    #: ``completed`` after the state has been quiet this long: the reason may still be in flight.
    completed_grace_s: float = 30.0
    #: A state quiet this long is closed: open legs and unresolved attempts become ``unknown``.
    abandon_after_s: float = 25 * 3600.0


class Settled(NamedTuple):
    #: The flow key's voice state after settling.
    flow: VoiceState
    emits: list[Emit]
    #: Everything known has been reported: the state may be evicted after the retention period.
    finished: bool
    #: Call ``settle`` again after this many more quiet seconds (None: nothing pending).
    next_check_s: float | None


_ERR_CAP = 20
_OTHER_CAP = 50
_RESULTS_CAP = 50
_ON_MACHINE = ("continue", "hangup", "message")
_RESULT_RANK = {"unknown": 0, "failed": 1, "succeeded": 2}
_AMD = ("human", "machine")
_OTHER_TYPES = frozenset({"notify", "fallback", "payment", "success", "failure"})


def new_voice_state(flow_key: str, call_ref: str | None = None) -> VoiceState:
    """The voice state of a flow key before its first record."""
    return {
        "version": VOICE_STATE_VERSION,
        "flow_key": flow_key,
        "call_ref": call_ref,
        "legs": {},
        "convs": {},
        "attempts": {},
        "policy": {},
        "commands": {},
        "errors": {},
        "other_events": {},
        "command_results": {},
    }


# --------------------------------------------------------------------------------------------
# transition


def transition(state: VoiceState | None, event: Any) -> tuple[VoiceState, list[Emit]]:
    """Apply one ``voice.events`` record; return the new state and the commands to send."""
    if not isinstance(event, dict):
        if isinstance(event, Mapping):
            event = dict(event)
        else:
            dump = getattr(event, "model_dump", None)
            if dump is None:
                raise InvalidEvent(f"event: expected an envelope, got {type(event).__name__}")
            event = dump(mode="json", by_alias=True, exclude_none=True)
    key = req_str(event, "flow_key", "envelope")
    ref = event.get("call_ref")
    if ref is not None and not isinstance(ref, str):
        raise InvalidEvent("envelope: call_ref must be a string")
    if state is None:
        state = new_voice_state(key, ref)
    elif state["flow_key"] != key:
        raise InvalidEvent("envelope: flow_key does not match the state")
    elif ref is not None and state["call_ref"] != ref:
        cur = state["call_ref"]
        state = {**state, "call_ref": ref if cur is None else min(cur, ref)}
    etype = event.get("type")
    if etype == "vonage.webhook":
        state, emits = _webhook(state, event)
    elif etype == "dispatcher.result":
        state, emits = _result(state, event)
    else:
        raise InvalidEvent(f"type: unknown envelope type {str(etype)[:40]!r}")
    if state["policy"].get("agents") is not None or ".a" in key[-5:]:
        state, more = _agent_facts(state, event)
        emits += more
    return state, emits


def _put_leg(state: VoiceState, leg: LegState) -> VoiceState:
    return {**state, "legs": {**state["legs"], leg["uuid"]: leg}}


def _leg(state: VoiceState, uuid: str) -> LegState:
    leg = state["legs"].get(uuid)
    return leg if leg is not None else legs.new_leg(uuid)


def _webhook(state: VoiceState, event: dict[str, Any]) -> tuple[VoiceState, list[Emit]]:
    payload = event.get("payload")
    if not isinstance(payload, dict):
        raise InvalidEvent("payload: must be a JSON object")
    et = req_str(event, "event_type", "envelope")
    ts = canon_ts(payload.get("timestamp")) or canon_ts(event.get("occurred_at")) or EPOCH

    if et in legs.CALL_STATUSES:
        uuid = req_str(payload, "uuid", f"{et} event")
        leg = legs.apply_status(_leg(state, uuid), et, payload, ts)
        return _put_leg(state, leg), []

    if et in _AMD:
        amd_leg = opt_str(payload, "call_uuid") or opt_str(payload, "uuid")
        if amd_leg is None:
            raise InvalidEvent(f"{et} event: call_uuid (or uuid) is required")
        sub = opt_str(payload, "sub_state")
        leg = legs.apply_amd(_leg(state, amd_leg), et, sub, payload, ts)
        state = _put_leg(state, leg)
        return _policy_commands(state, [amd_leg])

    if et == "input":
        uuid = req_str(payload, "uuid", "input event")
        evt_id = req_str(event, "id", "envelope")
        mark = event.get("flow")
        leg = legs.apply_input(
            _leg(state, uuid), evt_id, payload, ts, mark if isinstance(mark, dict) else None
        )
        return _put_leg(state, leg), []

    if et in ("record", "recording"):
        rec_uuid = req_str(payload, "recording_uuid", "record event")
        url = req_str(payload, "recording_url", "record event")
        conv_uuid = req_str(payload, "conversation_uuid", "record event")
        size = payload.get("size")
        conv = conversations.apply_record(
            _conv(state, conv_uuid),
            rec_uuid,
            url,
            start=canon_ts(payload.get("start_time")),
            end=canon_ts(payload.get("end_time")),
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            leg_uuid=opt_str(payload, "uuid"),
        )
        return {**state, "convs": {**state["convs"], conv_uuid: conv}}, []

    if et == "transcribed":
        rec_uuid = req_str(payload, "recording_uuid", "transcription event")
        url = req_str(payload, "transcription_url", "transcription event")
        conv_uuid = req_str(payload, "conversation_uuid", "transcription event")
        conv = conversations.apply_transcription(_conv(state, conv_uuid), rec_uuid, url)
        return {**state, "convs": {**state["convs"], conv_uuid: conv}}, []

    if et == "transfer":
        uuid = req_str(payload, "uuid", "transfer event")
        conv_from = req_str(payload, "conversation_uuid_from", "transfer event")
        conv_to = req_str(payload, "conversation_uuid_to", "transfer event")
        leg = legs.apply_transfer(_leg(state, uuid), conv_from, conv_to, ts)
        return _put_leg(state, leg), []

    if et == "answer":
        uuid = req_str(payload, "uuid", "answer webhook")
        req_str(payload, "conversation_uuid", "answer webhook")
        return _put_leg(state, legs.apply_answer(_leg(state, uuid), payload, ts)), []

    if et == "error":
        evt_id = req_str(event, "id", "envelope")
        reason = payload.get("reason")
        error: ErrorEvent = {"at": ts, "reason": str(reason)[:500] if reason else None}
        err_leg = opt_str(payload, "uuid")
        if err_leg is not None:
            error["uuid"] = err_leg
        return {**state, "errors": capped_put(state["errors"], evt_id, error, _ERR_CAP)}, []

    if et in _OTHER_TYPES:
        evt_id = req_str(event, "id", "envelope")
        other: OtherEvent = {"at": ts, "type": et}
        other_leg = opt_str(payload, "uuid") or opt_str(payload, "call_uuid")
        if other_leg is not None:
            other["uuid"] = other_leg
        status = payload.get("status")
        if isinstance(status, str):
            other["status"] = status[:40]
        others = capped_put(state["other_events"], evt_id, other, _OTHER_CAP)
        return {**state, "other_events": others}, []

    raise InvalidEvent(f"event_type: unknown {et[:40]!r}")


def _conv(state: VoiceState, uuid: str) -> ConversationState:
    conv = state["convs"].get(uuid)
    return conv if conv is not None else conversations.new_conversation(uuid)


def _hints(event: dict[str, Any]) -> Policy:
    hints = event.get("hints")
    if hints is None:
        return {}
    if not isinstance(hints, dict):
        raise InvalidEvent("hints: must be a JSON object")
    out: Policy = {}
    on_machine = hints.get("on_machine")
    if on_machine is not None:
        if on_machine not in _ON_MACHINE:
            raise InvalidEvent(f"hints.on_machine: must be one of {', '.join(_ON_MACHINE)}")
        out["on_machine"] = on_machine
    for name in _TEXT_HINTS:
        value = hints.get(name)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise InvalidEvent(f"hints.{name}: must be a non-empty string")
            out[name] = value
    if isinstance(hints.get("style"), int) and not isinstance(hints["style"], bool):
        out["style"] = hints["style"]
    if isinstance(hints.get("wait_for_beep"), bool):
        out["wait_for_beep"] = hints["wait_for_beep"]
    return out


_TEXT_HINTS: tuple[
    Literal["machine_message", "language", "account", "role", "conversation_name", "agents"], ...
] = ("machine_message", "language", "account", "role", "conversation_name", "agents")


def _result(state: VoiceState, event: dict[str, Any]) -> tuple[VoiceState, list[Emit]]:
    cmd_id = req_str(event, "command_id", "result")
    kind = req_str(event, "kind", "result")
    status = req_str(event, "status", "result")
    if status not in _RESULT_RANK:
        raise InvalidEvent(f"result: unknown status {status[:40]!r}")
    ts = canon_ts(event.get("occurred_at")) or EPOCH
    response = event.get("response")
    response = response if isinstance(response, dict) else {}

    if kind != "create_call":
        cur = state["command_results"].get(cmd_id)
        if cur is not None and _RESULT_RANK[cur["status"]] >= _RESULT_RANK[status]:
            return state, []
        entry: CommandOutcome = {"kind": kind, "status": status, "at": ts}
        http = event.get("http_status")
        if isinstance(http, int) and not isinstance(http, bool):
            entry["http_status"] = http
        results = dict(state["command_results"])
        results.pop(cmd_id, None)
        return {
            **state,
            "command_results": capped_put(results, cmd_id, entry, _RESULTS_CAP),
        }, []

    hints = _hints(event)
    uuid = opt_str(event, "call_uuid") or opt_str(response, "uuid")
    conv_uuid = opt_str(event, "conversation_uuid") or opt_str(response, "conversation_uuid")
    known = state["attempts"].get(cmd_id)
    attempt: DialAttempt = (
        known.copy() if known is not None else {"status": status, "at": ts, "reported": False}
    )
    if _RESULT_RANK[status] > _RESULT_RANK[attempt["status"]]:
        attempt["status"] = status
    attempt["at"] = min(attempt["at"], ts)
    if uuid is not None:
        cur_uuid = attempt.get("uuid")
        attempt["uuid"] = uuid if cur_uuid is None else max(cur_uuid, uuid)
    error = event.get("error")
    if status == "failed" and isinstance(error, dict):
        reason = _error_reason(error, event.get("http_status"))
        cur_error = attempt.get("error")
        if cur_error is None or reason > cur_error:
            attempt["error"] = reason
    if hints:
        attempt["hints"] = _join_hints(attempt.get("hints") or {}, hints)
    state = {**state, "attempts": {**state["attempts"], cmd_id: attempt}}
    if hints:
        state["policy"] = _effective_policy(state["attempts"])
    touched: list[str] = []
    if uuid is not None:
        leg = legs.apply_created(_leg(state, uuid), cmd_id, conv_uuid)
        role = hints.get("role")
        if role is not None and (leg.get("role") is None or role > leg["role"]):
            leg = {**leg, "role": role}
        name = hints.get("conversation_name")
        if name is not None and (
            leg.get("conversation_name") is None or name > leg["conversation_name"]
        ):
            leg = {**leg, "conversation_name": name}
        state = _put_leg(state, leg)
        touched.append(uuid)
    if hints:
        touched = sorted(state["legs"])
    return _policy_commands(state, touched)


def _join_hints(cur: Policy, new: Policy) -> Policy:
    """Per hint, the greater value (as text): the same hints in any order give the same join."""
    merged: dict[str, Any] = dict(cur)
    for name, value in new.items():
        if name not in merged or str(value) > str(merged[name]):
            merged[name] = value
    return merged  # type: ignore[return-value]


def _error_reason(error: dict[str, Any], http_status: Any) -> str:
    for name in ("reason", "title", "detail", "type"):
        value = error.get(name)
        if isinstance(value, str) and value:
            return value[:200]
    return f"http {http_status}" if http_status is not None else "failed"


def _effective_policy(attempts: dict[str, DialAttempt]) -> Policy:
    for cmd_id in sorted(attempts):
        hints = attempts[cmd_id].get("hints")
        if hints:
            return hints.copy()
    return {}


def _policy_commands(state: VoiceState, uuids: list[str]) -> tuple[VoiceState, list[Emit]]:
    """Commands the state's policy asks for, for legs whose AMD result is ``machine``."""
    policy = state["policy"]
    action = policy.get("on_machine", "continue")
    if action == "continue" or not uuids:
        return state, []
    emits: list[Emit] = []
    sent = state["commands"]
    for uuid in uuids:
        leg = state["legs"].get(uuid)
        if leg is None or "machine" not in leg["amd"]:
            continue
        beeped = bool({"beep_start", "beep_timeout"} & leg["amd_sub_states"].keys())
        if action == "message" and policy.get("wait_for_beep") and not beeped:
            continue
        kind = "hangup" if action == "hangup" else "talk_start"
        cmd_id = stable_id("cmd", state["flow_key"], uuid, "on_machine", kind)
        if cmd_id in sent:
            continue
        if kind == "hangup":
            body: dict[str, Any] = {"action": "hangup"}
        else:
            body = {"text": policy.get("machine_message") or "Sorry we missed you."}
            if "language" in policy:
                body["language"] = policy["language"]
            if "style" in policy:
                body["style"] = policy["style"]
        cmd: CommandRecord = {
            "id": cmd_id,
            "schema_version": 1,
            "type": "voice.command",
            "occurred_at": leg["amd"]["machine"],
            "flow_key": state["flow_key"],
            "kind": kind,
            "call_uuid": uuid,
            "account": policy.get("account", "default"),
            "body": body,
            "origin": "worker",
        }
        call_ref = state["call_ref"]
        if call_ref is not None:
            cmd["call_ref"] = call_ref
        region = legs.field(leg, "region_url")
        if region is not None:
            cmd["region_url"] = region
        sent = {**sent, cmd_id: 1}
        emits.append(Emit(COMMANDS_TOPIC, state["flow_key"], cmd))
    if emits:
        state = {**state, "commands": sent}
    return state, emits


# --------------------------------------------------------------------------------------------
# agent campaigns


def _agent_facts(state: VoiceState, event: dict[str, Any] | None) -> tuple[VoiceState, list[Emit]]:
    """The agent campaign records the flow's legs call for, each once (module docstring).

    ``event`` None: from ``settle``, where a leg's reported (possibly forced) disposition counts.
    """
    key = state["flow_key"]
    agent_leg = parse_agent_leg_ref(key)
    campaign = campaign_of(key)
    if agent_leg is None and (campaign is None or state["policy"].get("agents") is None):
        return state, []
    seen = _seen_at(state, event)
    sent = state["commands"]
    emits: list[Emit] = []
    for uuid in sorted(state["legs"]):
        leg = state["legs"][uuid]
        if agent_leg is not None:
            facts = _agent_leg_facts(key, agent_leg.call_ref, leg, seen, settled=event is None)
        else:
            assert campaign is not None
            facts = _callee_facts(state, campaign, leg, seen, sent)
        for emit_id, emit in facts:
            if emit_id not in sent:
                sent = {**sent, emit_id: 1}
                emits.append(emit)
    if emits:
        state = {**state, "commands": sent}
    return state, emits


def _seen_at(state: VoiceState, event: dict[str, Any] | None) -> str:
    """When we learned it: the ingress's receipt of the webhook (our clock), else the record's
    time (a dispatcher result), else the leg's last Vonage timestamp (settle)."""
    if event is not None:
        for name in ("received_at", "occurred_at"):
            value = canon_ts(event.get(name))
            if value is not None:
                return value
    stamps = [legs.last_ts(leg) for leg in state["legs"].values()]
    return max(stamps) if stamps else EPOCH


def _agent_call(
    kind: str, campaign: str, call_ref: str, at: str, emit_id: str, **fields: Any
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": emit_id,
        "schema_version": 1,
        "type": "agent.call",
        "occurred_at": at,
        "kind": kind,
        "campaign": campaign,
        "call_ref": call_ref,
    }
    rec.update({k: v for k, v in fields.items() if v is not None})
    return rec


def _callee_facts(
    state: VoiceState, campaign: str, leg: LegState, seen: str, sent: Mapping[str, int]
) -> list[tuple[str, Emit]]:
    key = state["flow_key"]
    call_ref = state["call_ref"] or key
    uuid = leg["uuid"]
    out: list[tuple[str, Emit]] = []
    human_id = stable_id("ms", key, uuid, "human")

    def milestone(status: str, **fields: Any) -> None:
        emit_id = stable_id("ms", key, uuid, status)
        rec: dict[str, Any] = {
            "id": emit_id,
            "schema_version": 1,
            "type": "voice.milestone",
            "occurred_at": seen,
            "flow_key": key,
            "call_ref": call_ref,
            "campaign": campaign,
            "uuid": uuid,
            "status": status,
        }
        rec.update({k: v for k, v in fields.items() if v is not None})
        out.append((emit_id, Emit(CAMPAIGN_TOPIC, campaign, rec)))

    for status in ("human", "machine"):
        stamp = leg["amd"].get(status)
        if stamp is None:
            continue
        conv = legs.field(leg, "conversation_uuid") or (
            min(leg["conversations"]) if leg["conversations"] else None
        )
        milestone(
            status,
            amd_at=stamp,
            conversation_uuid=conv,
            region_url=legs.field(leg, "region_url"),
        )
    # The callee's end matters to the pool only if an agent may have been reserved for them.
    human = "human" in leg["amd"] or human_id in sent
    ended = (
        "completed" in leg["statuses"]
        or "rejected" in leg["statuses"]
        or bool(legs.FAILURE_SET.intersection(leg["statuses"]))
    )
    if not leg["amd"] and ("rejected" in leg["statuses"] or legs.failure(leg) is not None):
        # Never answered (busy, unanswered, failed...): no person will come, and the line is
        # free again for the pacing a settle window before the outcome says so. A plain
        # "completed" is not enough: an answered leg's AMD webhook may still be on its way.
        milestone("ended")
    if human and (ended or leg["reported"]):
        emit_id = stable_id("agc", key, uuid, "callee_ended")
        rec = _agent_call("callee_ended", campaign, call_ref, seen, emit_id, uuid=uuid)
        out.append((emit_id, Emit(AGENTS_TOPIC, call_ref, rec)))
    return out


def _agent_leg_facts(
    key: str, call_ref: str, leg: LegState, seen: str, *, settled: bool
) -> list[tuple[str, Emit]]:
    campaign = campaign_of(call_ref)
    if campaign is None:  # pragma: no cover - parse_agent_leg_ref requires a campaign ref
        return []
    uuid = leg["uuid"]
    out: list[tuple[str, Emit]] = []

    def fact(kind: str, **fields: Any) -> None:
        emit_id = stable_id("agc", key, uuid, kind)
        rec = _agent_call(kind, campaign, call_ref, seen, emit_id, leg_ref=key, uuid=uuid, **fields)
        out.append((emit_id, Emit(AGENTS_TOPIC, call_ref, rec)))

    statuses = leg["statuses"]
    if legs.is_answered(leg):
        fact("agent_answered")
        if "completed" in statuses or (settled and leg["reported"]):
            fact("agent_ended")
        return out
    failure = "rejected" if "rejected" in statuses else legs.failure(leg)
    if failure is None and settled and leg["reported"]:
        failure = leg.get("disposition") or "failed"  # e.g. completed with no reason, forced
    if failure is not None:
        fact("agent_failed", status=failure[:40])
    return out


# --------------------------------------------------------------------------------------------
# settle


def settle(state: VoiceState, idle_s: float, config: SettleConfig | None = None) -> Settled:
    """Emit the outcomes of everything final and not yet reported (see the module docstring)."""
    cfg = config or SettleConfig()
    key = state["flow_key"]
    ref = state["call_ref"]
    grace = idle_s >= cfg.completed_grace_s
    abandon = idle_s >= cfg.abandon_after_s
    flow_legs = state["legs"]
    convs = state["convs"]
    emits: list[Emit] = []
    new_legs: dict[str, LegState] | None = None
    dispositions: dict[str, str] = {}
    waiting_grace = False

    for uuid in sorted(flow_legs):
        leg = flow_legs[uuid]
        if leg["reported"]:
            dispositions[uuid] = leg.get("disposition", "unknown")
            continue
        disp = legs.disposition(leg)
        if disp is None and "completed" in leg["statuses"]:
            if grace or abandon:
                disp = legs.disposition(leg, force=True)
            else:
                waiting_grace = True
        if disp is None and abandon:
            disp = legs.disposition(leg, force=True)
        if disp is None:
            continue
        detail = "no final status received" if disp == "unknown" else None
        urls: list[str] = []
        for conv_uuid in sorted(leg["conversations"]):
            urls.extend(conversations.recording_urls(convs.get(conv_uuid), leg_uuid=uuid))
        rec = legs.outcome(
            leg,
            outcome_id=Outcome.make_id("leg", key, uuid),
            flow_key=key,
            call_ref=ref,
            disposition=disp,
            recording_urls=sorted(set(urls)),
            detail=detail,
        )
        emits.append(Emit(OUTCOMES_TOPIC, key, rec))
        if new_legs is None:
            new_legs = dict(flow_legs)
        new_legs[uuid] = {**leg, "reported": True, "disposition": disp}
        dispositions[uuid] = disp
    if new_legs is not None:
        flow_legs = new_legs

    attempts = state["attempts"]
    new_attempts: dict[str, DialAttempt] | None = None
    for cmd_id in sorted(attempts):
        attempt = attempts[cmd_id]
        if attempt["reported"]:
            continue
        outcome_disp: str | None
        if attempt["status"] == "succeeded":
            outcome_disp = None  # the leg reports it
        elif attempt["status"] == "failed" and attempt.get("uuid") is None:
            outcome_disp = "failed"
        elif abandon:
            outcome_disp = "unknown" if attempt.get("uuid") is None else None
        else:
            continue
        if outcome_disp is not None:
            unresolved = "create_call result never resolved"
            record: OutcomeRecord = {
                "id": Outcome.make_id("leg", key, cmd_id),
                "schema_version": 1,
                "type": "voice.outcome",
                "occurred_at": attempt["at"],
                "flow_key": key,
                "scope": "leg",
                "disposition": outcome_disp,
                "detail": attempt.get("error")
                or (unresolved if outcome_disp == "unknown" else "failed"),
                "recording_urls": [],
                "legs": [],
                "captures": {},
            }
            if ref is not None:
                record["call_ref"] = ref
            emits.append(Emit(OUTCOMES_TOPIC, key, record))
        if new_attempts is None:
            new_attempts = dict(attempts)
        new_attempts[cmd_id] = {**attempt, "reported": True}
    if new_attempts is not None:
        attempts = new_attempts

    conv_ids: set[str] = set(convs)
    for leg in flow_legs.values():
        conv_ids.update(leg["conversations"])
    new_convs: dict[str, ConversationState] | None = None
    pending_conv = False
    primary_uuids = {a["uuid"] for a in attempts.values() if a.get("uuid")}
    for conv_uuid in sorted(conv_ids):
        known_conv = convs.get(conv_uuid)
        if known_conv is not None and known_conv["reported"]:
            continue
        member_legs = conversations.members(conv_uuid, flow_legs)
        if not member_legs:
            continue
        if not conversations.is_ended(member_legs):
            pending_conv = True
            continue
        conv = _conference_facts(
            known_conv if known_conv is not None else conversations.new_conversation(conv_uuid),
            member_legs,
        )
        primary = _primary(member_legs, primary_uuids)
        rec = conversations.outcome(
            conv,
            conv_uuid,
            member_legs,
            outcome_id=Outcome.make_id("conversation", key, conv_uuid),
            flow_key=key,
            call_ref=ref,
            primary=primary,
            dispositions=dispositions,
        )
        emits.append(Emit(OUTCOMES_TOPIC, key, rec))
        if new_convs is None:
            new_convs = dict(convs)
        new_convs[conv_uuid] = {**conv, "reported": True}
    if new_convs is not None:
        convs = new_convs

    if emits:
        state = {**state, "legs": flow_legs, "attempts": attempts, "convs": convs}
        campaign = campaign_of(key)
        if campaign is not None:
            # A campaign call: each outcome goes to its campaign too, keyed by campaign.
            emits += [Emit(CAMPAIGN_TOPIC, campaign, e.value) for e in emits]
        if state["policy"].get("agents") is not None or ".a" in key[-5:]:
            # What a forced disposition adds (a leg that only ever sent ``completed``...).
            state, more = _agent_facts(state, None)
            emits += more
    open_legs = any(not leg["reported"] for leg in flow_legs.values())
    open_attempts = any(not a["reported"] for a in attempts.values())
    finished = not (open_legs or open_attempts or pending_conv)
    if finished:
        next_check: float | None = None
    elif waiting_grace:
        next_check = max(cfg.completed_grace_s - idle_s, 0.0)
    else:
        next_check = max(cfg.abandon_after_s - idle_s, 0.0)
    return Settled(state, emits, finished, next_check)


def _primary(member_legs: list[LegState], created: set[str]) -> LegState:
    """The leg a conversation is reported from: the one we created, else the first to start."""
    ours = [leg for leg in member_legs if leg["uuid"] in created]
    pool = ours or member_legs
    return min(pool, key=lambda leg: (legs.first_ts(leg), leg["uuid"]))


def _conference_facts(conv: ConversationState, member_legs: list[LegState]) -> ConversationState:
    """Name and roles of a named conversation, from the hints of the legs transferred into it."""
    uuid = conv["uuid"]
    roles: dict[str, str] = {}
    for leg in member_legs:
        if not any(k.endswith(f">{uuid}") for k in leg["transfers"]):
            continue
        name = leg.get("conversation_name")
        if name is not None:
            conv = conversations.apply_name(conv, name)
        role = leg.get("role")
        if role is not None:
            roles[leg["uuid"]] = role
    if roles:
        conv = {**conv, "roles": roles}
    return conv


# --------------------------------------------------------------------------------------------
# views


def describe(state: VoiceState) -> dict[str, Any]:
    """A compact, stable view of a state for the control API (``GET /v1/calls/{flow_key}``)."""
    described_legs = {}
    for uuid in sorted(state["legs"]):
        leg = state["legs"][uuid]
        described_legs[uuid] = {
            "status": legs.status(leg),
            "statuses": sorted(leg["statuses"]),
            "disposition": leg.get("disposition") or legs.disposition(leg),
            "amd": legs.amd_result(leg),
            "conversations": sorted(leg["conversations"]),
            "inputs": [leg["inputs"][k] for k in sorted(leg["inputs"])],
            "reported": bool(leg["reported"]),
        }
    return {
        "flow_key": state["flow_key"],
        "call_ref": state["call_ref"],
        "legs": described_legs,
        "conversations": {
            cuuid: {
                "recordings": conversations.recording_urls(conv),
                "name": conv.get("name"),
                "roles": conv.get("roles", {}),
                "reported": bool(conv["reported"]),
            }
            for cuuid, conv in sorted(state["convs"].items())
        },
        "attempts": {
            cid: {"status": a["status"], "uuid": a.get("uuid")}
            for cid, a in state["attempts"].items()
        },
        "errors": [state["errors"][k] for k in sorted(state["errors"])],
    }
