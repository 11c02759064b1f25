"""Call legs as the simulated platform keeps them, and the bounded store behind GET /v1/calls.

One :class:`Call` per leg (API-created legs and the legs ``connect`` adds). It is deliberately a
plain ``__slots__`` object: the dispatcher benchmark keeps ~100k of them in memory.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.profile import Agent

__all__ = [
    "FINAL_STATUSES",
    "LIVE_STATUSES",
    "Call",
    "CallStore",
    "Interrupt",
    "SocketRecord",
    "call_ref_of",
    "endpoint_headers",
    "is_websocket",
]

FINAL_STATUSES = frozenset(
    {"completed", "busy", "cancelled", "failed", "rejected", "timeout", "unanswered"}
)
LIVE_STATUSES = frozenset({"started", "ringing", "answered", "human", "machine"})
ANSWERED_STATUSES = frozenset({"answered", "human", "machine"})

_REF_RE = re.compile(r"/webhooks/event/([^/?#]+)")


def call_ref_of(url: str | None) -> str | None:
    """The product's flow key: the path segment after ``/webhooks/event/`` in an event URL."""
    if not url:
        return None
    m = _REF_RE.search(url)
    return m.group(1) if m else None


_SPENT_RNG = random.Random(0)  # shared stand-in once a leg no longer draws (saves 2.5 KB a leg)


class Interrupt(Exception):
    """Base of the control-flow signals delivered to a running call lifecycle."""


class Hangup(Interrupt):
    def __init__(self, by: str) -> None:
        super().__init__(by)
        self.by = by  # "api" (REST hangup), "user" (callee hung up), "platform"


class Transfer(Interrupt):
    def __init__(self, ncco: list[Any] | None, urls: list[str] | None) -> None:
        super().__init__("transfer")
        self.ncco = ncco
        self.urls = urls


class WebhookRecord:
    """One webhook the simulator sent (or is still retrying) for a call; shown in the ledger."""

    __slots__ = (
        "attempts",
        "duplicate",
        "http_status",
        "kind",
        "ok",
        "signed",
        "status",
        "t",
        "url",
    )

    def __init__(self, t: float, kind: str, status: str | None, url: str, duplicate: bool) -> None:
        self.t = t
        self.kind = kind
        self.status = status
        self.url = url
        self.duplicate = duplicate
        self.attempts = 0
        self.http_status: int | None = None
        self.ok = False
        self.signed = False

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 6),
            "kind": self.kind,
            "status": self.status,
            "url": self.url,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "ok": self.ok,
            "signed": self.signed,
            "duplicate": self.duplicate,
        }


class SocketRecord:
    """One connection attempt, as the ledger shows it (``calls[].websocket``)."""

    __slots__ = (
        "close_code",
        "closed_by",
        "error",
        "frame_bytes",
        "frames_sent",
        "messages_received",
        "opened",
        "reason",
        "uri",
    )

    def __init__(self, uri: str, frame_size: int) -> None:
        self.uri = uri
        self.frame_bytes = frame_size
        self.opened = False
        self.reason: str | None = None  # why it did not open: refused, not_websocket, timeout...
        self.error: str | None = None  # the library's words for it
        self.frames_sent = 0
        self.messages_received = 0
        self.closed_by: str | None = None  # "server" or "simulator"
        self.close_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "opened": self.opened,
            "reason": self.reason,
            "error": self.error,
            "frame_bytes": self.frame_bytes,
            "frames_sent": self.frames_sent,
            "messages_received": self.messages_received,
            "closed_by": self.closed_by,
            "close_code": self.close_code,
        }


class Call:
    __slots__ = (
        "agent",
        "amd",
        "amd_result",
        "answer_method",
        "answer_url",
        "answered_sim",
        "app_id",
        "call_ref",
        "children",
        "conversation_name",
        "conversation_uuid",
        "created_mono",
        "created_sim",
        "created_wall",
        "deadline_by",
        "detail",
        "direction",
        "disconnected_by",
        "dtmf_subscription",
        "duration",
        "earmuffed",
        "end_sim",
        "ended_mono",
        "event_method",
        "event_url",
        "from_",
        "from_str",
        "hangup_at",
        "index",
        "input_rng",
        "leg",
        "length_timer",
        "machine_detection",
        "muted",
        "ncco",
        "network",
        "origin_conversation_uuid",
        "outcome",
        "override",
        "parent_uuid",
        "pending",
        "price",
        "rate",
        "recordings",
        "ringing_sim",
        "ringing_timer",
        "rng",
        "started_sim",
        "status",
        "sync_connect",
        "sync_reply",
        "task",
        "to",
        "to_str",
        "uuid",
        "waiter",
        "watchers",
        "webhooks",
        "websocket",
    )

    def __init__(
        self,
        *,
        uuid: str,
        conversation_uuid: str,
        app_id: str,
        to: dict[str, Any],
        from_: dict[str, Any],
        event_url: str | None,
        event_method: str,
        outcome: str,
        rng: random.Random,
        created_mono: float,
        created_wall: float,
        created_sim: float,
        leg: str = "api",
        parent_uuid: str | None = None,
        call_ref: str | None = None,
        input_rng: random.Random | None = None,
    ) -> None:
        self.uuid = uuid
        self.conversation_uuid = conversation_uuid
        self.origin_conversation_uuid = conversation_uuid
        self.app_id = app_id
        self.to = to
        self.from_ = from_
        self.to_str = endpoint_str(to)
        self.from_str = endpoint_str(from_)
        self.event_url = event_url
        self.event_method = event_method
        self.call_ref = call_ref if call_ref is not None else call_ref_of(event_url)
        self.outcome = outcome
        self.rng = rng
        #: the callee's answers to input actions (its own stream: see SimEngine.new_leg)
        self.input_rng = input_rng if input_rng is not None else random.Random(uuid)
        self.created_mono = created_mono
        self.created_wall = created_wall
        self.created_sim = created_sim
        self.leg = leg
        self.parent_uuid = parent_uuid
        self.direction = "outbound"
        self.status = "started"
        self.detail: str | None = None
        self.answer_url: list[str] | None = None
        self.answer_method = "GET"
        self.ncco: list[Any] | None = None
        self.machine_detection: str | None = None
        self.amd: dict[str, Any] | None = None
        self.length_timer = 7200
        self.ringing_timer = 60
        self.started_sim = created_sim
        self.ringing_sim: float | None = None
        self.answered_sim: float | None = None
        self.end_sim: float | None = None
        self.ended_mono: float | None = None
        self.duration: int | None = None
        self.price: str | None = None
        self.rate: str | None = None
        self.network: str | None = None
        self.disconnected_by: str | None = None
        self.conversation_name: str | None = None
        self.muted = False
        self.earmuffed = False
        self.dtmf_subscription: list[str] | None = None
        self.hangup_at: float | None = None  # monotonic deadline (callee hangs up / length timer)
        self.deadline_by = "user"  # who ends the call when hangup_at passes
        self.override: Any = None  # profile override matching this destination
        self.agent: Agent | None = None  # the profile's agent entry: this leg calls an agent
        self.amd_result: str | None = None  # what answering-machine detection reported
        self.watchers: list[asyncio.Future[None]] = []  # resolved on every status change
        self.sync_connect = False  # connect leg with eventType synchronous
        self.sync_reply: list[Any] | None = None  # NCCO its failure event returned
        self.recordings: list[tuple[float, dict[str, Any]]] = []  # background record actions
        self.pending: list[Interrupt] = []
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.children: list[Call] = []
        self.webhooks: list[WebhookRecord] = []
        self.websocket: SocketRecord | None = None  # a websocket leg's connection attempt
        self.index = 0

    # --- state ----------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.ended_mono is not None

    @property
    def answered(self) -> bool:
        return self.answered_sim is not None

    def release(self) -> None:
        """Drop what only a live leg needs: the ledger keeps ~100k ended legs in memory."""
        self.rng = _SPENT_RNG
        self.input_rng = _SPENT_RNG
        self.ncco = None
        self.task = None
        self.waiter = None
        self.pending = []
        self.children = []
        self.recordings = []
        self.override = None
        self.hangup_at = None

    def changed(self) -> None:
        """Wake whoever waits on this leg's state (a connect action waiting for its B leg)."""
        if self.watchers:
            for fut in self.watchers:
                if not fut.done():
                    fut.set_result(None)
            self.watchers.clear()

    def interrupt(self, signal: Interrupt) -> None:
        """Deliver a control signal; the lifecycle sees it at its next (or current) pause."""
        self.pending.append(signal)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    # --- views ----------------------------------------------------------------------------------
    def to_api(self) -> dict[str, Any]:
        """The call object of GET /v1/calls/{uuid} (money/duration only once completed)."""
        body: dict[str, Any] = {
            "_links": {"self": {"href": f"/v1/calls/{self.uuid}"}},
            "uuid": self.uuid,
            "conversation_uuid": self.conversation_uuid,
            "to": self.to,
            "from": self.from_,
            "status": self.status,
            "direction": self.direction,
        }
        if self.status == "completed":
            body["rate"] = self.rate or "0.00000000"
            body["price"] = self.price or "0.00000000"
            body["duration"] = str(self.duration or 0)
            from orchestrator.sandbox.simulator.clock import iso

            body["start_time"] = iso(self.answered_sim or self.started_sim)
            body["end_time"] = iso(self.end_sim or self.started_sim)
            if self.network:
                body["network"] = self.network
        return body

    def to_ledger(self, *, webhooks: bool = True) -> dict[str, Any]:
        from orchestrator.sandbox.simulator.clock import iso

        out: dict[str, Any] = {
            "index": self.index,
            "uuid": self.uuid,
            "conversation_uuid": self.origin_conversation_uuid,
            "current_conversation_uuid": self.conversation_uuid,
            "call_ref": self.call_ref,
            "to": self.to_str,
            "from": self.from_str,
            "to_endpoint": self.to,
            "leg": self.leg,
            "parent_uuid": self.parent_uuid,
            "app_id": self.app_id,
            "event_url": self.event_url,
            "outcome": self.outcome,
            "status": self.status,
            "detail": self.detail,
            "t": round(self.created_wall, 6),
            "ended_t": None,
            "times": {
                "created": iso(self.created_sim),
                "ringing": iso(self.ringing_sim) if self.ringing_sim else None,
                "answered": iso(self.answered_sim) if self.answered_sim else None,
                "ended": iso(self.end_sim) if self.end_sim else None,
            },
            "duration": self.duration,
            "rate": self.rate,
            "price": self.price,
            "disconnected_by": self.disconnected_by,
            "conversation_name": self.conversation_name,
            "agent": self.agent is not None,
            "amd_result": self.amd_result,
        }
        if self.websocket is not None:
            out["websocket"] = self.websocket.to_json()
        if webhooks:
            out["webhooks"] = [w.to_json() for w in self.webhooks]
        return out


def endpoint_str(ep: dict[str, Any]) -> str:
    for key in ("number", "uri", "user", "extension"):
        v = ep.get(key)
        if v:
            return str(v)
    return str(ep.get("type", ""))


def is_websocket(endpoint: dict[str, Any]) -> bool:
    return endpoint.get("type") == "websocket"


def endpoint_headers(endpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The endpoint's custom ``headers``: echoed in the first message and in the leg's events."""
    headers = endpoint.get("headers") if is_websocket(endpoint) else None
    return headers if isinstance(headers, dict) else None


class CallStore:
    """Every leg by uuid, in creation order; the oldest *ended* legs are dropped past ``max_calls``."""

    def __init__(self, max_calls: int) -> None:
        self.max_calls = max_calls
        self._calls: dict[str, Call] = {}
        self.evicted = 0
        self._counter = 0

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._calls.values()))

    def get(self, uuid: str) -> Call | None:
        return self._calls.get(uuid)

    def add(self, call: Call) -> None:
        self._counter += 1
        call.index = self._counter
        self._calls[call.uuid] = call
        if len(self._calls) > self.max_calls:
            self._evict()

    def _evict(self) -> None:
        excess = len(self._calls) - self.max_calls
        victims: list[str] = []
        for uuid, call in self._calls.items():
            if len(victims) >= excess:
                break
            if call.ended:
                victims.append(uuid)
        for uuid in victims:
            del self._calls[uuid]
        self.evicted += len(victims)

    def live(self) -> list[Call]:
        return [c for c in self._calls.values() if not c.ended]

    def clear(self) -> None:
        self._calls.clear()
        self.evicted = 0
