"""Realistic synthetic call flows for ``voice.events``: used by the worker's tests and its benchmark.

Each :class:`Scenario` is one call flow as Vonage and our dispatcher would report it (payload
shapes from ``vonage/examples``, DIGEST §4.2/§7): the create-call result, the leg statuses with a
failure status followed by ``completed`` (or ``rejected`` alone), AMD results with ``call_uuid``,
inputs, recordings, a ``connect``-ed second leg, a transfer into a named conversation, an inbound
call keyed by its ``conversation_uuid``, and create-call results that fail or stay unknown. It also
says which outcomes (ids and dispositions) and commands the worker must produce for it, so a test
can check the worker's output exactly.

:func:`stream` turns many scenarios into the record sequence a topic would hold: calls overlap,
deliveries are jittered (so ``started``/``ringing`` and a failure/``completed`` swap, as Vonage
does) and some webhooks are delivered twice (a retry carries the same body, hence the same id).
Everything is driven by a ``random.Random``, so a seed reproduces a stream exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from contracts.envelopes import CommandResult, EventEnvelope, Outcome, stable_id

__all__ = ["KINDS", "Scenario", "make_scenario", "stream"]

BASE_TIME = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
FROM = "442079460000"

KINDS: tuple[str, ...] = (
    "human",
    "machine",
    "busy",
    "unanswered",
    "timeout",
    "failed",
    "cancelled",
    "rejected",
    "create_failed",
    "unknown_then_created",
    "unknown_then_failed",
    "connect",
    "transfer",
    "inbound",
)

#: Relative weights for :func:`stream` (roughly a dialer's outcome mix).
WEIGHTS: dict[str, float] = {
    "human": 30,
    "machine": 12,
    "busy": 8,
    "unanswered": 10,
    "timeout": 4,
    "failed": 3,
    "cancelled": 2,
    "rejected": 3,
    "create_failed": 2,
    "unknown_then_created": 2,
    "unknown_then_failed": 1,
    "connect": 10,
    "transfer": 5,
    "inbound": 8,
}

_DETAILS = {
    "unanswered": ("unavailable", "timeout"),
    "failed": ("cannot_route", "number_out_of_service"),
    "rejected": ("restricted", "invalid_number", "declined"),
}


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class Scenario:
    """One call flow: its events in natural order (with delivery times) and what it must produce."""

    flow_key: str
    kind: str
    #: ``(delivery offset in seconds, envelope JSON dict)``, in the order Vonage would send them.
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    #: Expected outcome id -> disposition.
    outcomes: dict[str, str] = field(default_factory=dict)
    #: Expected command ids.
    commands: set[str] = field(default_factory=set)

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return [e for _, e in self.events]


class _Builder:
    def __init__(self, rng: random.Random, flow_key: str, call_ref: str | None, t0: datetime):
        self.rng = rng
        self.key = flow_key
        self.ref = call_ref
        self.t0 = t0
        self.events: list[tuple[float, dict[str, Any]]] = []

    def uuid(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def webhook(self, at: float, kind: str, event_type: str, payload: dict[str, Any]) -> None:
        t = self.t0 + timedelta(seconds=at)
        env: dict[str, Any] = {
            "id": EventEnvelope.make_id(kind, self.key, orjson.dumps(payload)),
            "schema_version": 1,
            "occurred_at": _iso(t),
            "flow_key": self.key,
            "type": "vonage.webhook",
            "webhook": kind,
            "event_type": event_type,
            "received_at": _iso(t + timedelta(milliseconds=5)),
            "payload": payload,
        }
        if self.ref is not None:
            env["call_ref"] = self.ref
        self.events.append((at, env))

    def status(self, at: float, uuid: str, conv: str, status: str, to: str, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "from": FROM,
            "to": to,
            "uuid": uuid,
            "conversation_uuid": conv,
            "status": status,
            "direction": extra.pop("direction", "outbound"),
            "timestamp": _ts(self.t0 + timedelta(seconds=at)),
        }
        payload.update(extra)
        self.webhook(at, "event", status, payload)

    def completed(
        self, at: float, uuid: str, conv: str, to: str, answered_at: float | None
    ) -> None:
        start = self.t0 + timedelta(seconds=answered_at if answered_at is not None else at)
        end = self.t0 + timedelta(seconds=at)
        duration = int((end - start).total_seconds()) if answered_at is not None else 0
        self.status(
            at,
            uuid,
            conv,
            "completed",
            to,
            start_time=_ts(start),
            end_time=_ts(end),
            duration=str(duration),
            rate="0.00450000",
            price=f"{duration * 0.0045 / 60:.8f}",
            network="GB-FIXED",
        )

    def amd(self, at: float, uuid: str, conv: str, result: str, to: str, sub: str | None) -> None:
        payload: dict[str, Any] = {
            "call_uuid": uuid,
            "from": FROM,
            "to": to,
            "status": result,
            "conversation_uuid": conv,
            "timestamp": _ts(self.t0 + timedelta(seconds=at)),
        }
        if sub is not None:
            payload["sub_state"] = sub
        self.webhook(at, "event", result, payload)

    def result(
        self,
        at: float,
        command_id: str,
        status: str,
        *,
        uuid: str | None = None,
        conv: str | None = None,
        error: dict[str, Any] | None = None,
        hints: dict[str, Any] | None = None,
    ) -> None:
        t = self.t0 + timedelta(seconds=at)
        res: dict[str, Any] = {
            "id": CommandResult.make_id(command_id),
            "schema_version": 1,
            "occurred_at": _iso(t),
            "flow_key": self.key,
            "type": "dispatcher.result",
            "command_id": command_id,
            "kind": "create_call",
            "status": status,
            "attempts": 1,
        }
        if self.ref is not None:
            res["call_ref"] = self.ref
        if uuid is not None:
            res["call_uuid"] = uuid
            res["conversation_uuid"] = conv
            res["http_status"] = 201
            res["response"] = {
                "uuid": uuid,
                "status": "started",
                "direction": "outbound",
                "conversation_uuid": conv,
            }
        if hints:
            res["hints"] = hints  # the command's hints, echoed by the dispatcher
        if error is not None:
            res["error"] = error
        self.events.append((at, res))


def _leg_id(key: str, subject: str) -> str:
    return Outcome.make_id("leg", key, subject)


def _conv_id(key: str, conv: str) -> str:
    return Outcome.make_id("conversation", key, conv)


def make_scenario(
    rng: random.Random, flow_key: str, kind: str | None = None, t0: datetime = BASE_TIME
) -> Scenario:
    """One realistic call flow of ``kind`` (random when None), keyed ``flow_key``."""
    kind = kind or rng.choices(KINDS, weights=[WEIGHTS[k] for k in KINDS])[0]
    to = f"4477009{rng.randrange(10**5):05d}"
    inbound = kind == "inbound"
    b = _Builder(rng, flow_key, None if inbound else flow_key, t0)
    sc = Scenario(flow_key=flow_key, kind=kind)
    cmd_id = stable_id("cmd", flow_key, "create")
    leg = b.uuid()
    conv = "CON-" + b.uuid()
    if inbound:
        sc.flow_key = flow_key = conv
        b.key = conv

    if kind == "create_failed":
        b.result(
            0.0,
            cmd_id,
            "failed",
            error={
                "type": "https://developer.nexmo.com/api-errors#bad-request",
                "title": "Bad Request",
                "detail": "Invalid number",
            },
        )
        sc.outcomes[_leg_id(flow_key, cmd_id)] = "failed"
        sc.events = b.events
        return sc
    if kind == "unknown_then_failed":
        b.result(0.0, cmd_id, "unknown")
        b.result(5.0, cmd_id, "failed", error={"reason": "not_created_verified"})
        sc.outcomes[_leg_id(flow_key, cmd_id)] = "failed"
        sc.events = b.events
        return sc

    hints: dict[str, Any] | None = None
    if kind == "machine":
        hints = {"on_machine": "hangup"}
        sc.commands.add(stable_id("cmd", flow_key, leg, "on_machine", "hangup"))
    if kind == "transfer":
        hints = {"role": "moderator", "conversation_name": f"room-{flow_key}"}
    if not inbound:
        if kind == "unknown_then_created":
            b.result(0.0, cmd_id, "unknown")
            b.result(4.0, cmd_id, "succeeded", uuid=leg, conv=conv, hints=hints)
        else:
            b.result(0.0, cmd_id, "succeeded", uuid=leg, conv=conv, hints=hints)

    direction = "inbound" if inbound else "outbound"
    if inbound:
        b.webhook(
            0.05,
            "answer",
            "answer",
            {
                "to": to,
                "from": FROM,
                "uuid": leg,
                "conversation_uuid": conv,
                "region_url": "https://api-eu-1.nexmo.com",
            },
        )
    b.status(0.1, leg, conv, "started", to, direction=direction)
    if kind == "rejected":
        b.status(0.3, leg, conv, "rejected", to, detail=rng.choice(_DETAILS["rejected"]))
        sc.outcomes[_leg_id(flow_key, leg)] = "rejected"
        sc.outcomes[_conv_id(flow_key, conv)] = "rejected"
        sc.events = b.events
        return sc
    if kind != "failed":
        b.status(0.1, leg, conv, "ringing", to, direction=direction)

    if kind in ("busy", "unanswered", "timeout", "failed", "cancelled"):
        extra: dict[str, Any] = {}
        if kind in _DETAILS:
            extra["detail"] = rng.choice(_DETAILS[kind])
        at = 0.5 if kind == "failed" else rng.uniform(3, 30)
        b.status(at, leg, conv, kind, to, **extra)
        b.completed(at + 0.05, leg, conv, to, None)
        sc.outcomes[_leg_id(flow_key, leg)] = kind
        sc.outcomes[_conv_id(flow_key, conv)] = kind
        sc.events = b.events
        return sc

    answered = rng.uniform(2, 12)
    b.status(
        answered,
        leg,
        conv,
        "answered",
        to,
        direction=direction,
        start_time=None,
        rate=None,
        network=None,
    )
    end = answered + rng.uniform(5, 60)
    if kind == "machine":
        b.amd(answered + 2.5, leg, conv, "machine", to, None)
        if rng.random() < 0.5:
            b.amd(answered + 4.0, leg, conv, "machine", to, "beep_start")
        end = answered + 5
    elif kind in ("human", "connect", "transfer", "unknown_then_created") and not inbound:
        b.amd(answered + 2.0, leg, conv, "human", to, None)
    if kind in ("human", "inbound") and rng.random() < 0.6:
        b.webhook(
            answered + 4,
            "input",
            "input",
            {
                "speech": {"results": []},
                "dtmf": {"digits": str(rng.randrange(10)), "timed_out": False},
                "from": FROM,
                "to": to,
                "uuid": leg,
                "conversation_uuid": conv,
                "timestamp": _ts(t0 + timedelta(seconds=answered + 4)),
            },
        )
    final_conv = conv
    if kind == "connect":
        agent = b.uuid()
        agent_to = "447700900999"
        b.status(answered + 3, agent, conv, "started", agent_to)
        b.status(answered + 3, agent, conv, "ringing", agent_to)
        b.status(answered + 6, agent, conv, "answered", agent_to)
        b.completed(end + 0.2, agent, conv, agent_to, answered + 6)
        sc.outcomes[_leg_id(flow_key, agent)] = "answered"
    if kind == "transfer":
        room = "CON-" + b.uuid()
        b.webhook(
            answered + 3,
            "event",
            "transfer",
            {
                "conversation_uuid_from": conv,
                "conversation_uuid_to": room,
                "uuid": leg,
                "timestamp": _ts(t0 + timedelta(seconds=answered + 3)),
            },
        )
        attendee = b.uuid()
        att_to = "447700900888"
        b.status(answered + 1, attendee, room, "started", att_to)
        b.status(answered + 2, attendee, room, "answered", att_to)
        b.completed(end + 0.1, attendee, room, att_to, answered + 2)
        rec_t = t0 + timedelta(seconds=end + 1)
        b.webhook(
            end + 1,
            "recording",
            "record",
            {
                "start_time": _ts(t0 + timedelta(seconds=answered + 3)),
                "recording_url": f"https://api.nexmo.com/v1/files/{b.uuid()}",
                "size": 12222,
                "recording_uuid": b.uuid(),
                "end_time": _ts(rec_t),
                "conversation_uuid": room,
                "timestamp": _ts(rec_t),
            },
        )
        sc.outcomes[_leg_id(flow_key, attendee)] = "answered"
        sc.outcomes[_conv_id(flow_key, room)] = "answered"
        final_conv = room
    b.completed(end, leg, final_conv, to, answered)
    if kind == "human" and rng.random() < 0.3:
        rec_t = t0 + timedelta(seconds=end + 0.5)
        b.webhook(
            end + 0.5,
            "recording",
            "record",
            {
                "start_time": _ts(t0 + timedelta(seconds=answered)),
                "recording_url": f"https://api.nexmo.com/v1/files/{b.uuid()}",
                "size": 4096,
                "recording_uuid": b.uuid(),
                "end_time": _ts(rec_t),
                "conversation_uuid": conv,
                "timestamp": _ts(rec_t),
            },
        )
    sc.outcomes[_leg_id(flow_key, leg)] = "answered"
    sc.outcomes[_conv_id(flow_key, conv)] = "answered"
    sc.events = b.events
    return sc


def stream(
    rng: random.Random,
    n_calls: int,
    *,
    calls_per_s: float = 20.0,
    jitter_s: float = 1.5,
    dup_p: float = 0.05,
    kinds: tuple[str, ...] | None = None,
    key_prefix: str = "call",
) -> tuple[list[Scenario], list[tuple[bytes, bytes]]]:
    """``n_calls`` overlapping flows as ``(key, value)`` records in delivery order.

    Call *i* starts at ``i / calls_per_s``; each delivery is delayed by up to ``jitter_s`` (which
    reorders close events, as Vonage does) and a fraction ``dup_p`` is delivered again later.
    """
    scenarios: list[Scenario] = []
    timed: list[tuple[float, int, bytes, bytes]] = []
    seq = 0
    for i in range(n_calls):
        kind = rng.choice(kinds) if kinds else None
        sc = make_scenario(rng, f"{key_prefix}-{i:07d}", kind)
        scenarios.append(sc)
        start = i / calls_per_s
        key = sc.flow_key.encode()
        for at, env in sc.events:
            value = orjson.dumps(env)
            when = start + at + rng.uniform(0, jitter_s)
            timed.append((when, seq, key, value))
            seq += 1
            if rng.random() < dup_p:
                timed.append((when + rng.uniform(0.5, 4), seq, key, value))
                seq += 1
    timed.sort()
    return scenarios, [(k, v) for _, _, k, v in timed]


def iter_values(records: list[tuple[bytes, bytes]]) -> Iterator[dict[str, Any]]:
    for _, value in records:
        yield orjson.loads(value)
