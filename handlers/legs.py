"""The leg machine: everything known about one Vonage leg (``uuid``), as a join of facts.

Vonage does not keep order (``started``/``ringing`` swap, a failure status and ``completed`` swap,
DIGEST §4.5) and retries webhooks, so the leg is not a cursor moving through states. It is the set of
statuses seen (each with its earliest timestamp) plus fields merged by a fixed rule: the value from
the most authoritative status wins (``completed`` carries the billing fields and beats ``answered``,
which carries them empty), ties broken by value. Every update is therefore commutative and
idempotent: any order of the same events, with any duplicates, gives the same leg.

The leg's *outcome* is derived from that set, never from arrival order (DIGEST §7):

===========================================  ===============================================
statuses seen                                outcome
===========================================  ===============================================
``rejected``                                 final, ``rejected`` (Vonage sends no completed)
``completed`` + answered evidence            final, ``answered`` (``amd`` = human/machine)
``completed`` + busy/cancelled/unanswered/   final, that status (its ``detail`` kept)
timeout/failed
``completed`` alone                          final only when forced (``completed``), because
                                             the failure status may still be on its way
none of the above                            not final; when abandoned: the failure status
                                             if one was seen, else ``unknown``
===========================================  ===============================================

Answered evidence is ``answered``, an AMD result, an ``input`` from the leg, or a non-zero duration.
Functions here are pure: they return new dicts and never mutate their arguments. The leg's shape
is :class:`contracts.voice_state.LegState`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from contracts.call_refs import parse_campaign_call_ref
from contracts.envelopes import OutcomeRecord
from contracts.voice_state import InputResult, LegState
from handlers._voice_common import (
    EPOCH,
    InvalidEvent,
    canon_ts,
    capped_put,
    min_ts,
    opt_str,
    sort_key,
)

__all__ = [
    "CALL_STATUSES",
    "FAILURE_SET",
    "FAILURE_STATUSES",
    "apply_amd",
    "apply_answer",
    "apply_created",
    "apply_input",
    "apply_status",
    "apply_transfer",
    "captures",
    "disposition",
    "failure",
    "is_answered",
    "is_final",
    "new_leg",
    "outcome",
    "status",
    "transition",
]

#: Failure statuses, each followed by ``completed``; the order is the precedence if several appear.
FAILURE_STATUSES: tuple[str, ...] = ("failed", "timeout", "unanswered", "busy", "cancelled")
_FAILURES = frozenset(FAILURE_STATUSES)
FAILURE_SET = _FAILURES

CALL_STATUSES = frozenset(
    {
        "started",
        "ringing",
        "answered",
        "busy",
        "cancelled",
        "unanswered",
        "rejected",
        "failed",
        "timeout",
        "disconnected",
        "completed",
    }
)

#: Display rank: the leg's current ``status`` is the highest-ranked status seen.
RANK: dict[str, int] = {
    "created": 0,
    "started": 1,
    "ringing": 2,
    "answered": 3,
    "human": 4,
    "machine": 4,
    "disconnected": 5,
    "busy": 6,
    "cancelled": 6,
    "unanswered": 6,
    "timeout": 6,
    "failed": 6,
    "rejected": 7,
    "completed": 8,
}

#: Field authority by source: billing/timing fields from ``completed`` beat everything else.
_PRIO: dict[str, int] = {
    "completed": 9,
    "rejected": 8,
    "failed": 7,
    "timeout": 7,
    "unanswered": 7,
    "busy": 7,
    "cancelled": 7,
    "answered": 6,
    "human": 4,
    "machine": 4,
    "disconnected": 3,
    "ringing": 2,
    "started": 2,
    "answer": 1,
    "input": 1,
    "transfer": 0,
    "created": 0,
}

_INPUT_CAP = 50
#: The leg's fields an outcome reports as they are.
_REPORTED_FIELDS: tuple[
    Literal["direction", "to", "from", "start_time", "end_time", "rate", "price", "network"], ...
] = ("direction", "to", "from", "start_time", "end_time", "rate", "price", "network")
_XFER_CAP = 50


def new_leg(uuid: str) -> LegState:
    return {
        "uuid": uuid,
        "statuses": {},
        "fields": {},
        "details": {},
        "conversations": {},
        "left": {},
        "amd": {},
        "amd_sub_states": {},
        "inputs": {},
        "transfers": {},
        "reported": False,
    }


def _money(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() and number >= 0 else None
    return None


def _lenient_str(payload: dict[str, Any], name: str) -> str | None:
    try:
        return opt_str(payload, name)
    except InvalidEvent:
        return None


def _norm_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


#: How each leg field found in a payload is normalised before it is merged.
_FIELD_NORM: dict[str, Callable[[Any], Any]] = {
    "direction": _norm_str,
    "to": _norm_str,
    "from": _norm_str,
    "network": _norm_str,
    "disconnected_by": _norm_str,
    "region_url": _norm_str,
    "conversation_uuid": _norm_str,
    "rate": _money,
    "price": _money,
    "start_time": canon_ts,
    "end_time": canon_ts,
    "duration": _int,
    "sip_code": _int,
}


def _merge_common(leg: LegState, source: str, payload: dict[str, Any]) -> None:
    """Merge the fields a leg event carries into ``leg`` (already a private copy).

    On the worker's hot path: one pass over the payload, and the field dict is copied only when a
    value actually changes (a duplicate webhook changes nothing).
    """
    prio = _PRIO.get(source, 0)
    old = leg["fields"]
    fields: dict[str, list[Any]] | None = None
    norms = _FIELD_NORM
    for name, raw in payload.items():
        norm = norms.get(name)
        if norm is None or raw is None:
            continue
        value = norm(raw)
        if value is None:
            continue
        cur = (old if fields is None else fields).get(name)
        if cur is not None:
            cur_prio, cur_val = cur
            if prio < cur_prio or cur_val == value:
                if prio <= cur_prio:
                    continue
            elif prio == cur_prio and sort_key(value) <= sort_key(cur_val):
                continue
        if fields is None:
            fields = dict(old)
        fields[name] = [prio, value]
    if fields is not None:
        leg["fields"] = fields
    conv = payload.get("conversation_uuid")
    if isinstance(conv, str) and conv and conv not in leg["conversations"]:
        leg["conversations"] = {**leg["conversations"], conv: 1}


def apply_status(leg: LegState, status: str, payload: dict[str, Any], ts: str | None) -> LegState:
    """A call status event (``started`` ... ``completed``) for this leg."""
    if status not in CALL_STATUSES:
        raise InvalidEvent(f"status: unknown call status {status[:40]!r}")
    leg = leg.copy()
    seen = leg["statuses"].get(status)
    stamp = ts or EPOCH
    if seen is None or stamp < seen:
        leg["statuses"] = {**leg["statuses"], status: stamp}
    detail = _lenient_str(payload, "detail")
    if detail is not None:
        cur = leg["details"].get(status)
        if cur is None or detail > cur:
            leg["details"] = {**leg["details"], status: detail}
    _merge_common(leg, status, payload)
    return leg


def apply_amd(
    leg: LegState, result: str, sub_state: str | None, payload: dict[str, Any], ts: str | None
) -> LegState:
    """An answering-machine-detection result (``human``/``machine``, with ``sub_state``)."""
    if result not in ("human", "machine"):
        raise InvalidEvent(f"status: unknown AMD result {result[:40]!r}")
    leg = leg.copy()
    stamp = ts or EPOCH
    seen = leg["amd"].get(result)
    if seen is None or stamp < seen:
        leg["amd"] = {**leg["amd"], result: stamp}
    if sub_state and sub_state not in leg["amd_sub_states"]:
        leg["amd_sub_states"] = {**leg["amd_sub_states"], sub_state: 1}
    _merge_common(leg, result, payload)
    return leg


def apply_input(
    leg: LegState,
    event_id: str,
    payload: dict[str, Any],
    ts: str | None,
    mark: Mapping[str, Any] | None = None,
) -> LegState:
    """An ``input`` result (DTMF and/or speech): kept by event id (a retry has the same id).

    ``mark`` is the envelope's flow mark (``contracts.envelopes.FlowMark``): the name the answer
    is captured under and the step the flow went to.
    """
    dtmf = payload.get("dtmf")
    speech = payload.get("speech")
    entry: InputResult = {"at": ts or EPOCH}
    if mark is not None:
        name, goto = mark.get("capture"), mark.get("goto")
        if isinstance(name, str) and name:
            entry["name"] = name[:64]
        if isinstance(goto, str) and goto:
            entry["goto"] = goto[:64]
    if isinstance(dtmf, dict):
        digits = dtmf.get("digits")
        if isinstance(digits, str | int) and not isinstance(digits, bool):
            entry["digits"] = str(digits)
        if isinstance(dtmf.get("timed_out"), bool):
            entry["timed_out"] = dtmf["timed_out"]
    if isinstance(speech, dict):
        results = speech.get("results")
        if isinstance(results, list) and results and isinstance(results[0], dict):
            text = results[0].get("text")
            if isinstance(text, str):
                entry["speech"] = text
        reason = speech.get("timeout_reason")
        if isinstance(reason, str):
            entry["speech_timeout"] = reason
    leg = leg.copy()
    leg["inputs"] = capped_put(leg["inputs"], event_id, entry, _INPUT_CAP)
    _merge_common(leg, "input", payload)
    return leg


def apply_transfer(leg: LegState, conv_from: str, conv_to: str, ts: str | None) -> LegState:
    """The leg moved between conversations: it was in both, and left ``conv_from``."""
    leg = leg.copy()
    leg["conversations"] = {**leg["conversations"], conv_from: 1, conv_to: 1}
    if conv_from != conv_to and conv_from not in leg["left"]:
        leg["left"] = {**leg["left"], conv_from: 1}
    leg["transfers"] = capped_put(
        leg["transfers"], f"{conv_from}>{conv_to}", ts or EPOCH, _XFER_CAP
    )
    return leg


def apply_answer(leg: LegState, payload: dict[str, Any], ts: str | None) -> LegState:
    """The answer webhook for this leg (inbound calls, or outbound with an answer_url)."""
    leg = leg.copy()
    _merge_common(leg, "answer", payload)
    return leg


def apply_created(leg: LegState, command_id: str, conversation_uuid: str | None) -> LegState:
    """The dispatcher created this leg (``POST /v1/calls`` returned its uuid)."""
    if leg.get("created") == command_id and (
        conversation_uuid is None or conversation_uuid in leg["conversations"]
    ):
        return leg
    leg = leg.copy()
    cur = leg.get("created")
    leg["created"] = command_id if cur is None else min(cur, command_id)
    if conversation_uuid and conversation_uuid not in leg["conversations"]:
        leg["conversations"] = {**leg["conversations"], conversation_uuid: 1}
    return leg


def transition(leg: LegState | None, fact: dict[str, Any]) -> tuple[LegState, list[Any]]:
    """Generic entry: apply one normalised fact (``kind`` = status|amd|input|transfer|answer|created).

    The leg emits nothing by itself: its outcome is produced by the flow's ``settle`` once it is
    final, and commands depend on the flow's policy (``handlers.voice``).
    """
    uuid = fact.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise InvalidEvent("leg fact: uuid is required")
    state = leg if leg is not None else new_leg(uuid)
    kind = fact.get("kind")
    payload = fact.get("payload") or {}
    ts = fact.get("ts")
    if kind == "status":
        return apply_status(state, str(fact.get("status")), payload, ts), []
    if kind == "amd":
        return apply_amd(state, str(fact.get("status")), fact.get("sub_state"), payload, ts), []
    if kind == "input":
        return apply_input(state, str(fact.get("event_id")), payload, ts), []
    if kind == "transfer":
        return apply_transfer(state, str(fact.get("from")), str(fact.get("to")), ts), []
    if kind == "answer":
        return apply_answer(state, payload, ts), []
    if kind == "created":
        return apply_created(state, str(fact.get("command_id")), fact.get("conversation_uuid")), []
    raise InvalidEvent(f"leg fact: unknown kind {kind!r}")


# --------------------------------------------------------------------------------------------
# derived views


def field(leg: LegState, name: str) -> Any:
    """The merged value of a field the leg's events carried (``to``, ``price``...), or None."""
    value = leg["fields"].get(name)
    return None if value is None else value[1]


def status(leg: LegState) -> str:
    """The most advanced status seen (for display; decisions use the whole set)."""
    best = "created"
    for name in leg["statuses"]:
        if RANK.get(name, 0) > RANK[best] or (RANK.get(name, 0) == RANK[best] and name > best):
            best = name
    for name in leg["amd"]:
        if RANK[name] > RANK[best]:
            best = name
    return best


def is_answered(leg: LegState) -> bool:
    if "answered" in leg["statuses"] or leg["amd"] or leg["inputs"]:
        return True
    duration = field(leg, "duration")
    return isinstance(duration, int) and duration > 0


def failure(leg: LegState) -> str | None:
    """The leg's failure status, if one was seen (by precedence)."""
    return _failure(leg)


def _failure(leg: LegState) -> str | None:
    seen = leg["statuses"]
    if not _FAILURES.intersection(seen):
        return None
    for name in FAILURE_STATUSES:
        if name in seen:
            return name
    return None  # pragma: no cover


def is_final(leg: LegState) -> bool:
    seen = leg["statuses"]
    if "rejected" in seen:
        return True
    if "completed" not in seen:
        return False
    return is_answered(leg) or _failure(leg) is not None


def disposition(leg: LegState, *, force: bool = False) -> str | None:
    """The leg's disposition if final (or ``force``-d: after a grace period / abandonment)."""
    seen = leg["statuses"]
    if "rejected" in seen:
        return "rejected"
    if "completed" in seen:
        if is_answered(leg):
            return "answered"
        fail = _failure(leg)
        if fail is not None:
            return fail
        return "completed" if force else None
    if not force:
        return None
    # Forced (abandoned): a failure status without its completed is still the best answer.
    return _failure(leg) or "unknown"


def last_ts(leg: LegState) -> str:
    stamps = [*leg["statuses"].values(), *leg["amd"].values()]
    end = field(leg, "end_time")
    if isinstance(end, str):
        stamps.append(end)
    return max(stamps) if stamps else EPOCH


def first_ts(leg: LegState) -> str:
    first: str | None = None
    for stamp in leg["statuses"].values():
        first = min_ts(first, stamp)
    return first or "~"  # legs with no status sort last


def amd_result(leg: LegState) -> str | None:
    if "machine" in leg["amd"]:
        return "machine"
    if "human" in leg["amd"]:
        return "human"
    return None


def captures(leg: LegState, recording_urls: Sequence[str] = ()) -> dict[str, str]:
    """What the flow collected on the leg, for the outcome's ``captures``.

    Inputs are taken in time order (event id breaks ties, so the result does not depend on the
    order the webhooks arrived in). An input without a flow name is ``input``, ``input_2``...
    by its position among the unnamed ones; a named one keeps its last answer, so a re-prompt
    that was answered replaces the timeout before it, and a later timeout never blanks an answer.
    """
    out: dict[str, str] = {}
    unnamed = 0
    for key in sorted(leg["inputs"], key=lambda k: (leg["inputs"][k]["at"], k)):
        entry = leg["inputs"][key]
        name = entry.get("name")
        if name is None:
            unnamed += 1
            name = "input" if unnamed == 1 else f"input_{unnamed}"
        value = entry.get("digits") or entry.get("speech")
        if value:
            out[name] = value
        goto = entry.get("goto")
        if goto:
            out[f"{name}.branch"] = goto
    for i, url in enumerate(recording_urls):
        out["recording_url" if i == 0 else f"recording_url_{i + 1}"] = url
    return out


def outcome(
    leg: LegState,
    *,
    outcome_id: str,
    flow_key: str,
    call_ref: str | None,
    disposition: str,
    recording_urls: list[str],
    detail: str | None = None,
) -> OutcomeRecord:
    """The leg's ``Outcome`` record (JSON form of ``contracts.envelopes.Outcome``)."""
    rec: OutcomeRecord = {
        "id": outcome_id,
        "schema_version": 1,
        "type": "voice.outcome",
        "occurred_at": last_ts(leg),
        "flow_key": flow_key,
        "scope": "leg",
        "uuid": leg["uuid"],
        "disposition": disposition,
        "recording_urls": recording_urls,
        "legs": [],
        "captures": captures(leg, recording_urls),
    }
    if call_ref is not None:
        rec["call_ref"] = call_ref
        placed = parse_campaign_call_ref(call_ref)
        if placed is not None:  # a campaign's call: say whose, without the reader decoding it
            rec["campaign"] = placed.campaign
            rec["contact_index"] = placed.row
    conv = field(leg, "conversation_uuid")
    if conv is None and leg["conversations"]:
        conv = min(leg["conversations"])
    if conv is not None:
        rec["conversation_uuid"] = conv
    detail = detail if detail is not None else leg["details"].get(disposition)
    if detail is not None:
        rec["detail"] = detail
    for name in _REPORTED_FIELDS:
        value = field(leg, name)
        if value is not None:
            rec[name] = value
    duration = field(leg, "duration")
    if duration is not None:
        rec["duration_s"] = duration
    amd = amd_result(leg)
    if amd is not None:
        rec["amd"] = amd
    return rec
