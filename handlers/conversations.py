"""The conversation machine: a Vonage conversation (``CON-...``) as seen from one flow.

A conversation holds legs (DIGEST §7): the first leg of a call, legs added by ``connect``, and legs
moved in or out by ``transfer`` (which is also how a leg joins a *named* conversation, i.e. a
conference). Membership is derived from the legs, never stored twice: a leg is a member of every
conversation it has been seen in, and it *left* a conversation it was transferred out of. The
conversation **ends when its last leg ends**: it has members, and every member has reached its
final outcome (a member transferred out is waited for too, so the report has its final facts).

What this module stores per conversation is only what legs do not: recordings (``record`` events,
and the transcription URL that may arrive before or after its recording), the conference name and
the moderator/attendee roles (from the flow's hints, see ``handlers.voice``). Every update is a join,
so the order of arrival does not matter.

A named conversation joined by several *flows* (several independent inbound calls) is seen by each
flow separately: each flow reports the legs it knows. The outcome id includes the flow key.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from contracts.call_refs import parse_campaign_call_ref
from contracts.envelopes import OutcomeRecord
from contracts.voice_state import ConversationState, LegState, Recording
from handlers import legs
from handlers._voice_common import EPOCH, InvalidEvent, canon_ts

__all__ = [
    "apply_name",
    "apply_record",
    "apply_transcription",
    "is_ended",
    "members",
    "new_conversation",
    "outcome",
    "recording_urls",
    "transition",
]

_REC_FIELDS: tuple[Literal["url", "start", "end", "size", "leg", "tx"], ...] = (
    "url",
    "start",
    "end",
    "size",
    "leg",
    "tx",
)


def new_conversation(uuid: str) -> ConversationState:
    return {"uuid": uuid, "recs": {}, "reported": False}


def _merge_rec(cur: Recording | None, new: Recording) -> Recording:
    """Join two facts about one recording: per field, the greater value (order-insensitive)."""
    if cur is None:
        return new
    out = cur.copy()
    for name in _REC_FIELDS:
        value = new.get(name)
        if value is None:
            continue
        old = out.get(name)
        if old is None or str(value) > str(old):
            out[name] = value
    return out


def apply_record(
    conv: ConversationState,
    recording_uuid: str,
    url: str,
    *,
    start: str | None,
    end: str | None,
    size: int | None,
    leg_uuid: str | None,
) -> ConversationState:
    rec: Recording = {"url": url}
    if start is not None:
        rec["start"] = start
    if end is not None:
        rec["end"] = end
    if size is not None:
        rec["size"] = size
    if leg_uuid is not None:
        rec["leg"] = leg_uuid
    merged = _merge_rec(conv["recs"].get(recording_uuid), rec)
    if merged == conv["recs"].get(recording_uuid):
        return conv
    return {**conv, "recs": {**conv["recs"], recording_uuid: merged}}


def apply_transcription(
    conv: ConversationState, recording_uuid: str, url: str
) -> ConversationState:
    merged = _merge_rec(conv["recs"].get(recording_uuid), {"tx": url})
    if merged == conv["recs"].get(recording_uuid):
        return conv
    return {**conv, "recs": {**conv["recs"], recording_uuid: merged}}


def apply_name(conv: ConversationState, name: str) -> ConversationState:
    cur = conv.get("name")
    if cur is not None and cur >= name:
        return conv
    return {**conv, "name": name}


def transition(
    conv: ConversationState | None, fact: dict[str, Any]
) -> tuple[ConversationState, list[Any]]:
    """Generic entry: ``kind`` = record|transcribed|named. Emits nothing by itself (see settle)."""
    uuid = fact.get("conversation_uuid")
    if not isinstance(uuid, str) or not uuid:
        raise InvalidEvent("conversation fact: conversation_uuid is required")
    state = conv if conv is not None else new_conversation(uuid)
    kind = fact.get("kind")
    if kind == "record":
        return (
            apply_record(
                state,
                str(fact["recording_uuid"]),
                str(fact["url"]),
                start=canon_ts(fact.get("start")),
                end=canon_ts(fact.get("end")),
                size=fact.get("size"),
                leg_uuid=fact.get("leg"),
            ),
            [],
        )
    if kind == "transcribed":
        return apply_transcription(state, str(fact["recording_uuid"]), str(fact["url"])), []
    if kind == "named":
        return apply_name(state, str(fact["name"])), []
    raise InvalidEvent(f"conversation fact: unknown kind {kind!r}")


# --------------------------------------------------------------------------------------------
# derived views


def members(uuid: str, flow_legs: dict[str, LegState]) -> list[LegState]:
    """The legs that have been in this conversation, by uuid."""
    return [flow_legs[k] for k in sorted(flow_legs) if uuid in flow_legs[k]["conversations"]]


def is_ended(member_legs: list[LegState]) -> bool:
    """Ended: it has members and every member has reached its outcome.

    A member transferred out (``leg["left"]``) still counts until it ends: the conversation is
    then reported with that leg's final facts, whatever the order of arrival, instead of early
    with half of them.
    """
    return bool(member_legs) and all(leg["reported"] for leg in member_legs)


def recording_urls(conv: ConversationState | None, *, leg_uuid: str | None = None) -> list[str]:
    """Recording URLs, ordered by (start time, url); only ``leg_uuid``'s own ones if given."""
    if conv is None:
        return []
    recs = [
        r
        for r in conv["recs"].values()
        if "url" in r and (leg_uuid is None or r.get("leg") in (None, leg_uuid))
    ]
    recs.sort(key=lambda r: (r.get("start") or "", r["url"]))
    return [r["url"] for r in recs]


#: The primary leg's fields a conversation's outcome reports.
_PRIMARY_FIELDS: tuple[Literal["direction", "to", "from", "network"], ...] = (
    "direction",
    "to",
    "from",
    "network",
)


def _sum_money(values: list[Any]) -> str | None:
    total = Decimal(0)
    seen = False
    for value in values:
        if value is None:
            continue
        try:
            total += Decimal(str(value))
        except InvalidOperation:
            continue
        seen = True
    return format(total, "f") if seen else None


def _seconds_between(start: str, end: str) -> int | None:
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except ValueError:
        return None
    seconds = int(delta.total_seconds())
    return seconds if seconds >= 0 else None


def outcome(
    conv: ConversationState | None,
    uuid: str,
    member_legs: list[LegState],
    *,
    outcome_id: str,
    flow_key: str,
    call_ref: str | None,
    primary: LegState | None,
    dispositions: dict[str, str],
) -> OutcomeRecord:
    """The conversation's ``Outcome`` (JSON form of ``contracts.envelopes.Outcome``).

    Disposition: ``answered`` if any member was answered, else the primary leg's disposition.
    Times span the members; price is the sum of the members' prices; ``detail`` is the
    conference name for a named conversation.
    """
    if any(dispositions.get(leg["uuid"]) == "answered" for leg in member_legs):
        disp = "answered"
    else:
        key = primary["uuid"] if primary is not None else member_legs[0]["uuid"]
        disp = dispositions.get(key, "unknown")
    starts = [s for leg in member_legs if (s := legs.field(leg, "start_time"))]
    ends = [e for leg in member_legs if (e := legs.field(leg, "end_time"))]
    rec: OutcomeRecord = {
        "id": outcome_id,
        "schema_version": 1,
        "type": "voice.outcome",
        "occurred_at": max([*ends, *(legs.last_ts(leg) for leg in member_legs)] or [EPOCH]),
        "flow_key": flow_key,
        "scope": "conversation",
        "conversation_uuid": uuid,
        "disposition": disp,
        "recording_urls": recording_urls(conv),
        "legs": [leg["uuid"] for leg in member_legs],
        "captures": {},
    }
    if call_ref is not None:
        rec["call_ref"] = call_ref
        placed = parse_campaign_call_ref(call_ref)
        if placed is not None:  # a campaign's call: say whose, without the reader decoding it
            rec["campaign"] = placed.campaign
            rec["contact_index"] = placed.row
    if conv is not None and conv.get("name"):
        rec["detail"] = conv["name"]
    if primary is not None:
        for name in _PRIMARY_FIELDS:
            value = legs.field(primary, name)
            if value is not None:
                rec[name] = value
        amd = legs.amd_result(primary)
        if amd is not None:
            rec["amd"] = amd
    if starts:
        rec["start_time"] = min(starts)
    if ends:
        rec["end_time"] = max(ends)
    if starts and ends:
        seconds = _seconds_between(min(starts), max(ends))
        if seconds is not None:
            rec["duration_s"] = seconds
    price = _sum_money([legs.field(leg, "price") for leg in member_legs])
    if price is not None:
        rec["price"] = price
    return rec
