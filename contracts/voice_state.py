"""The voice state: what the worker knows about one call flow, as the JSON it stores.

``handlers.voice`` builds these (every update a join, see ``handlers._voice_common``), the worker
writes them to the compacted ``voice.state`` changelog as they are and restores them from it, and
the history checker reads them. They are plain JSON-ready dicts rather than models because the
worker updates one on every webhook: the shapes are ``TypedDict`` so that mypy checks every key
the machines read and write, at no cost at run time.

Versions. Version 1 used short keys (``st``, ``att``, ``pol``, ``ctl``, ``disp``...); version 2
spells them out. A worker restoring from a changelog that an older worker wrote meets version 1
records, so :func:`upgrade_voice_state` renames their keys on load (and is a no-op for version 2):
a rolling upgrade keeps every flow. Keys whose names tests and operators already read (``legs``,
``convs``, ``recs``, ``tx``, ``left``, ``amd``, ``roles``) kept their names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

__all__ = [
    "VOICE_STATE_VERSION",
    "CommandOutcome",
    "ConversationState",
    "DialAttempt",
    "ErrorEvent",
    "InputResult",
    "LegState",
    "OtherEvent",
    "Policy",
    "Recording",
    "VoiceState",
    "upgrade_voice_state",
]

VOICE_STATE_VERSION = 2


class Policy(TypedDict, total=False):
    """What the flow does on an AMD ``machine`` result (hints of its create-call command)."""

    on_machine: str  # continue | hangup | message
    machine_message: str
    language: str
    style: int
    wait_for_beep: bool
    account: str  # rate-limit scope of the commands the policy sends
    role: str  # moderator | attendee, in a named conversation
    conversation_name: str
    agents: str  # "bridge": an agent campaign's call (AMD milestones, the callee's end to agents)


class InputResult(TypedDict):
    """One ``input`` webhook of a leg (DTMF and/or speech)."""

    at: str
    digits: NotRequired[str]
    timed_out: NotRequired[bool]
    speech: NotRequired[str]
    speech_timeout: NotRequired[str]
    #: from the envelope's flow mark: the capture name and the step the flow went to
    name: NotRequired[str]
    goto: NotRequired[str]


class LegState(TypedDict):
    """Everything known about one Vonage leg, as a join of facts (``handlers.legs``)."""

    uuid: str
    #: status -> earliest timestamp seen
    statuses: dict[str, str]
    #: field -> [priority of its source, value]: the most authoritative source wins
    fields: dict[str, list[Any]]
    #: status -> its ``detail``
    details: dict[str, str]
    #: conversations the leg has been in (a set: uuid -> 1)
    conversations: dict[str, int]
    #: conversations it was transferred out of
    left: dict[str, int]
    #: human | machine -> earliest timestamp
    amd: dict[str, str]
    #: AMD sub-states seen (beep_start, beep_timeout)
    amd_sub_states: dict[str, int]
    #: input results by event id
    inputs: dict[str, InputResult]
    #: transfers ``"{from}>{to}"`` -> timestamp
    transfers: dict[str, str]
    #: the leg's outcome has been emitted
    reported: bool
    disposition: NotRequired[str]
    #: id of the create-call command that created the leg
    created: NotRequired[str]
    role: NotRequired[str]
    conversation_name: NotRequired[str]


class Recording(TypedDict, total=False):
    url: str
    start: str
    end: str
    size: int
    leg: str
    #: the transcription's URL
    tx: str


class ConversationState(TypedDict):
    """What a conversation holds beyond its legs (``handlers.conversations``)."""

    uuid: str
    recs: dict[str, Recording]
    reported: bool
    name: NotRequired[str]
    roles: NotRequired[dict[str, str]]


class DialAttempt(TypedDict):
    """One create-call command of the flow, from the dispatcher's results."""

    #: unknown | failed | succeeded (the highest seen)
    status: str
    at: str
    reported: bool
    uuid: NotRequired[str]
    error: NotRequired[str]
    hints: NotRequired[Policy]


class CommandOutcome(TypedDict):
    """The result of a command other than create-call (hangup, talk, transfer...)."""

    kind: str
    status: str
    at: str
    http_status: NotRequired[int]


class ErrorEvent(TypedDict):
    at: str
    reason: str | None
    uuid: NotRequired[str]


class OtherEvent(TypedDict):
    """A notify, fallback or payment event, kept for the record."""

    at: str
    type: str
    uuid: NotRequired[str]
    status: NotRequired[str]


class VoiceState(TypedDict):
    """One call flow (one flow key): its legs, conversations and dial attempts."""

    version: int
    flow_key: str
    call_ref: str | None
    legs: dict[str, LegState]
    convs: dict[str, ConversationState]
    attempts: dict[str, DialAttempt]
    #: the effective hints (see ``handlers.voice``)
    policy: Policy
    #: ids of the commands emitted (a set: id -> 1)
    commands: dict[str, int]
    #: Vonage error events by event id
    errors: dict[str, ErrorEvent]
    other_events: dict[str, OtherEvent]
    #: results of other commands by command id
    command_results: dict[str, CommandOutcome]


# --- version 1 -------------------------------------------------------------------------------

_FLOW_V1 = {
    "key": "flow_key",
    "ref": "call_ref",
    "att": "attempts",
    "pol": "policy",
    "cmds": "commands",
    "errs": "errors",
    "misc": "other_events",
    "ctl": "command_results",
}
_LEG_V1 = {
    "st": "statuses",
    "f": "fields",
    "det": "details",
    "conv": "conversations",
    "sub": "amd_sub_states",
    "inp": "inputs",
    "xfer": "transfers",
    "out": "reported",
    "disp": "disposition",
}
_ATTEMPT_V1 = {"st": "status", "out": "reported", "err": "error"}
_CONTROL_V1 = {"st": "status", "http": "http_status"}
_CONVERSATION_V1 = {"out": "reported"}
_FLAGS = ("reported",)


def _renamed(raw: Any, names: Mapping[str, str]) -> Any:
    if not isinstance(raw, dict):
        return raw
    out = {names.get(k, k): v for k, v in raw.items()}
    for flag in _FLAGS:
        if flag in out:
            out[flag] = bool(out[flag])
    return out


def _each(raw: Any, names: Mapping[str, str]) -> Any:
    if not isinstance(raw, dict):
        return raw
    return {k: _renamed(v, names) for k, v in raw.items()}


def upgrade_voice_state(raw: Mapping[str, Any]) -> VoiceState:
    """A stored flow state in the current version (version 1 keys renamed; version 2 as is).

    Tolerant of partial records (the history checker reads what it finds): only the keys
    present are renamed.
    """
    if raw.get("version") == VOICE_STATE_VERSION:
        return cast(VoiceState, raw)
    flow = {_FLOW_V1.get(k, k): v for k, v in raw.items() if k != "v"}
    flow["version"] = VOICE_STATE_VERSION
    if "legs" in flow:
        flow["legs"] = _each(flow["legs"], _LEG_V1)
    if "convs" in flow:
        flow["convs"] = _each(flow["convs"], _CONVERSATION_V1)
    if "attempts" in flow:
        flow["attempts"] = _each(flow["attempts"], _ATTEMPT_V1)
    if "command_results" in flow:
        flow["command_results"] = _each(flow["command_results"], _CONTROL_V1)
    return cast(VoiceState, flow)
