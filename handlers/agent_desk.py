"""The agents app's machine: the agent pool and the answered calls it connects. Pure.

The pool (:mod:`handlers.agents`) decides which agent takes a call. The desk adds the calls:
who is waiting and until when, which agent leg is ringing for whom, which campaigns want to
hear about the agents' load. It turns the records of ``agents.control``
(:class:`~contracts.agents.AgentCommand`, :class:`~contracts.agent_calls.AgentCall`, the results
of its own agent legs' create-call commands, its clock ticks) into decisions:
:class:`PlaceLeg` (call this agent into the callee's conversation), :class:`HangupLeg` (an agent
leg nobody needs any more), :class:`Abandon` (nobody was free in time: play the abandon message)
and :class:`~contracts.agent_calls.AgentNotice` records for the campaigns. The app
(``orchestrator/agents``) turns them into Kafka records.

**Nothing half-done.** The desk mutates its state in place, so every check that can refuse a
record runs before the first change (a record the runtime dead-letters must leave the pool as it
was).

**Time.** Every call passes ``at``, the record's time; the desk's clock only moves forward. The
app feeds its own clock ticks back through its input, so deadlines and wrap-up ends are decided
in log order and a replay decides exactly as the first run did. :meth:`AgentDesk.next_due` says
when the next tick is wanted.

**A caller waits** from the moment the human answer was seen (``detected_at``, our clock) until
``detected_at + connect_within``. A free fitting agent found by then gets an agent leg (a new
one after each failed leg: the pool puts the busy or unreachable agent offline and names the
next); none by then, the caller is abandoned. A reserved agent whose leg is still ringing at the
deadline keeps the call: the deadline is about finding an agent, and the agent leg's own ringing
timer (:data:`AGENT_RINGING_TIMER`) bounds the rest.

**Two legs, two flows.** The agent leg's records (``agent_answered``, ``agent_ended``) and the
callee's ``callee_ended`` are written by the worker from two flows, so they may be read in
either order. Whether the agent answered before the callee left is decided by when each was seen
(their ``occurred_at``), not by which was read first: a short bridge (the agent hangs up at once
and ``endOnExit`` ends the callee) read end-first is still connected. An answer read before the
callee's end is connected at once; the desk cannot know yet that the callee had left.

**Bounded, because the whole desk is one changelog record** (``agents.state``): at most
:data:`MAX_AGENTS` agents (a login beyond it, or one that would take the record past
:data:`LOGIN_BUDGET_BYTES`, is refused and listed in ``refused``), each remembering
:data:`DEDUP_DEPTH` event ids; at most :data:`MAX_PENDING` callers waiting or with an agent
ringing (the next one is abandoned at once, reason ``queue_full``); :data:`MAX_CAMPAIGNS`
campaigns; the last :data:`DONE_CAP` finished calls (so a late record about one is ignored).
``tests/unit/agents/test_desk.py`` fills every bound and checks the record stays under the
topics' record limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from contracts.agent_calls import AgentCall, AgentLoadFigures, AgentNotice, bridge_name
from contracts.agents import (
    Agent,
    AgentAction,
    AgentCommand,
    AgentEndpoint,
    AgentNeed,
    AgentRecord,
)
from contracts.call_refs import MAX_AGENT_LEGS, make_agent_leg_ref, parse_campaign_call_ref
from contracts.envelopes import CommandEnvelope, CommandKind, ReplyTo, stable_id
from contracts.topics import AGENTS_CONTROL
from handlers.agents import (
    AgentLegFailed,
    AgentPool,
    CallEnded,
    Connected,
    NoAgentFree,
    Reserve,
    Reserved,
)
from handlers.campaign_dial import render_template
from handlers.flow import webhook_url

__all__ = [
    "AGENT_RINGING_TIMER",
    "AGENT_SLACK",
    "DEDUP_DEPTH",
    "DONE_CAP",
    "LOGIN_BUDGET_BYTES",
    "MAX_AGENTS",
    "MAX_CAMPAIGNS",
    "MAX_PENDING",
    "Abandon",
    "AgentDesk",
    "CallTrack",
    "DeskOutput",
    "HangupLeg",
    "LegCreated",
    "PlaceLeg",
    "abandon_command",
    "agent_leg_command",
    "hangup_command",
]

MAX_AGENTS = 500
#: A login is refused when the agents would take more than this of the record, counting each
#: agent's profile and :data:`AGENT_SLACK` for the rest of its record (the rest of the 1 MB
#: record limit is room for the calls, the campaigns and the finished calls).
LOGIN_BUDGET_BYTES = 560_000
#: The most an agent's record holds besides its profile: its state, times and counters, the call
#: it holds and that call's need, and its :data:`DEDUP_DEPTH` remembered event ids (shortened).
AGENT_SLACK = 900
DEDUP_DEPTH = 8
MAX_PENDING = 100
MAX_CAMPAIGNS = 20
DONE_CAP = 1000
REFUSED_CAP = 20
#: Seconds an agent's phone may ring before the leg times out (then: the next agent).
AGENT_RINGING_TIMER = 20
#: After the callee's end, an agent's leg that has not ended by itself (``endOnExit``) this long
#: is hung up; one that still reports no end after :data:`GONE_FORGET_S` is taken as ended (a
#: lost webhook must not keep an agent busy forever).
GONE_HANGUP_S = 3.0
GONE_FORGET_S = 60.0
#: A campaign hears about a change of its agents' counts at most this often...
LOAD_INTERVAL = 0.25
#: ... and at least this often while it wants agents (occupancy moves during long calls).
LOAD_HEARTBEAT = 10.0


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _short(event_id: str) -> str:
    """The id the pool remembers for dedup: 64 bits of the event id's hash (its records keep
    :data:`DEDUP_DEPTH` per agent, so a whole id of up to 200 characters is not needed)."""
    return stable_id("e", event_id)[:18]


def _profile_bytes(agent: Agent) -> int:
    return len(orjson.dumps(agent.model_dump(mode="json", by_alias=True, exclude_none=True)))


# --- inputs the desk gets besides the contracts' records ----------------------------------------


@dataclass(frozen=True, slots=True)
class LegCreated:
    """The dispatcher's result of an agent leg's create-call command (its ``reply_to``)."""

    call_ref: str
    leg_ref: str
    status: str  # succeeded | failed | unknown
    uuid: str | None = None
    detail: str | None = None


DeskEvent = AgentCommand | AgentCall | LegCreated


# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceLeg:
    """Call ``agent_id`` (at ``endpoint``) into the callee's conversation: leg ``leg_ref``."""

    call_ref: str
    campaign: str
    leg_ref: str
    agent_id: str
    endpoint: AgentEndpoint
    account: str
    caller: str | None
    at: float
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class HangupLeg:
    """An agent leg nobody needs any more (its callee left, or another leg took over)."""

    leg_ref: str
    uuid: str
    account: str
    at: float


@dataclass(frozen=True, slots=True)
class Abandon:
    """Nobody was free in time: the callee hears ``message`` (then the call ends)."""

    call_ref: str
    campaign: str
    callee_uuid: str
    region_url: str | None
    account: str
    message: str | None
    at: float


DeskOutput = PlaceLeg | HangupLeg | Abandon | AgentNotice


# --- state ----------------------------------------------------------------------------------


@dataclass(slots=True)
class CallTrack:
    """A caller the desk serves: waiting, with an agent leg ringing, or bridged."""

    call_ref: str
    campaign: str
    detected_at: float
    deadline: float
    callee_uuid: str
    need: AgentNeed | None = None
    region_url: str | None = None
    account: str = "default"
    caller: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    legs: int = 0
    agent_id: str | None = None
    leg_ref: str | None = None
    leg_uuid: str | None = None
    connected_at: float | None = None
    #: The callee's leg ended while an agent held the call: the agent is freed when their own
    #: leg ends (hung up by us if it does not end by itself), never before.
    gone_at: float | None = None
    #: When the callee's end was seen (the record's ``occurred_at``: the ingress's receipt of the
    #: webhook, our clock). An agent's answer seen before it was a bridge, whichever of the two
    #: records the desk read first (they come from two flows, so their order is not kept).
    gone_seen: float | None = None
    hung: bool = False  # the hangup of the agent's leg was sent

    @property
    def pending(self) -> bool:
        """Waiting for an agent, or with an agent's leg still ringing."""
        return self.connected_at is None and self.gone_at is None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "ref": self.call_ref,
            "campaign": self.campaign,
            "detected": self.detected_at,
            "deadline": self.deadline,
            "uuid": self.callee_uuid,
            "need": self.need.model_dump(mode="json", exclude_defaults=True) if self.need else None,
            "region": self.region_url,
            "account": self.account,
            "caller": self.caller,
            "values": self.values or None,
            "legs": self.legs,
            "agent": self.agent_id,
            "leg": self.leg_ref,
            "leg_uuid": self.leg_uuid,
            "connected": self.connected_at,
            "gone": self.gone_at,
            "gone_seen": self.gone_seen,
            "hung": self.hung or None,
        }
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CallTrack:
        return cls(
            call_ref=d["ref"],
            campaign=d["campaign"],
            detected_at=d["detected"],
            deadline=d["deadline"],
            callee_uuid=d["uuid"],
            need=AgentNeed.model_validate(d["need"]) if d.get("need") is not None else None,
            region_url=d.get("region"),
            account=d.get("account", "default"),
            caller=d.get("caller"),
            values=dict(d.get("values") or {}),
            legs=d.get("legs", 0),
            agent_id=d.get("agent"),
            leg_ref=d.get("leg"),
            leg_uuid=d.get("leg_uuid"),
            connected_at=d.get("connected"),
            gone_at=d.get("gone"),
            gone_seen=d.get("gone_seen"),
            hung=bool(d.get("hung")),
        )


@dataclass(slots=True)
class Demand:
    """A campaign that wants agents, and what it was last told."""

    campaign: str
    since: float
    need: AgentNeed | None = None
    connect_within: float = 2.0
    abandon_message: str | None = None
    account: str = "default"
    caller: str | None = None
    last_sent: float | None = None
    sent: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "since": self.since,
            "need": self.need.model_dump(mode="json", exclude_defaults=True) if self.need else None,
            "connect_within": self.connect_within,
            "abandon_message": self.abandon_message,
            "account": self.account,
            "caller": self.caller,
            "last_sent": self.last_sent,
            "sent": list(self.sent) if self.sent is not None else None,
        }
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_json(cls, campaign: str, d: dict[str, Any]) -> Demand:
        return cls(
            campaign=campaign,
            since=d["since"],
            need=AgentNeed.model_validate(d["need"]) if d.get("need") is not None else None,
            connect_within=d.get("connect_within", 2.0),
            abandon_message=d.get("abandon_message"),
            account=d.get("account", "default"),
            caller=d.get("caller"),
            last_sent=d.get("last_sent"),
            sent=tuple(d["sent"]) if d.get("sent") is not None else None,
        )


# --- the desk -------------------------------------------------------------------------------


class AgentDesk:
    """The pool, the callers it serves and the campaigns it reports to. See the module doc."""

    def __init__(self, pool: AgentPool | None = None) -> None:
        self.pool = pool if pool is not None else AgentPool(dedup_depth=DEDUP_DEPTH)
        self.clock = 0.0
        self.calls: dict[str, CallTrack] = {}
        self.demands: dict[str, Demand] = {}
        self.done: deque[str] = deque()
        self._done: set[str] = set()
        self.refused: deque[dict[str, Any]] = deque(maxlen=REFUSED_CAP)
        #: Each agent's profile size plus AGENT_SLACK (the login budget).
        self._bytes: dict[str, int] = {
            r.agent.id: _profile_bytes(r.agent) + AGENT_SLACK for r in self.pool.records()
        }

    # -- inputs --

    def apply(self, event: DeskEvent, at: float) -> list[DeskOutput]:
        """One record of ``agents.control`` at ``at`` (epoch seconds); the decisions it makes."""
        now = self._advance(at)
        out: list[DeskOutput] = []
        if isinstance(event, AgentCommand):
            self._command(event, now)
        elif isinstance(event, LegCreated):
            out += self._created(event, now)
        elif event.kind == "demand":
            out += self._demand(event, now)
        elif event.kind == "reserve":
            out += self._reserve(event, now)
        elif event.kind == "callee_ended":
            out += self._callee_ended(event, now)
        elif event.kind == "agent_answered":
            out += self._agent_answered(event, now)
        elif event.kind == "agent_ended":
            out += self._agent_ended(event, now)
        else:  # agent_failed
            assert event.call_ref is not None and event.leg_ref is not None
            out += self._agent_failed(
                event.call_ref, event.leg_ref, event.status or "failed", event.id, now
            )
        return out + self._settle(now)

    def tick(self, at: float) -> list[DeskOutput]:
        """The clock read back from the log: end wrap-ups, serve waiting callers, deadlines."""
        return self._settle(self._advance(at))

    def next_due(self) -> float | None:
        """When :meth:`tick` could next decide something (None: only a record can)."""
        times: list[float] = []
        for track in self.calls.values():
            if track.agent_id is None:
                times.append(track.deadline)
            elif track.gone_at is not None:
                times.append(track.gone_at + GONE_FORGET_S)
                if not track.hung:
                    times.append(track.gone_at + GONE_HANGUP_S)
        wrap = self.pool.next_wrap_up_end()
        if wrap is not None:
            times.append(wrap)
        for d in self.demands.values():
            if d.last_sent is None:
                times.append(self.clock)
            else:
                times.append(d.last_sent + LOAD_HEARTBEAT)
                if d.sent != self._figures(d)[0]:
                    times.append(d.last_sent + LOAD_INTERVAL)
        return min(times) if times else None

    def _advance(self, at: float) -> float:
        self.clock = max(self.clock, at)
        return self.clock

    # -- agents --

    def _command(self, cmd: AgentCommand, now: float) -> None:
        if cmd.action == AgentAction.LOGIN:
            assert cmd.agent is not None
            size = _profile_bytes(cmd.agent) + AGENT_SLACK
            reason = None
            if cmd.agent_id not in self.pool and len(self.pool) >= MAX_AGENTS:
                reason = f"the pool has {MAX_AGENTS} agents, the most one pool may have"
            elif self.agent_bytes() - self._bytes.get(cmd.agent_id, 0) + size > LOGIN_BUDGET_BYTES:
                reason = (
                    f"the agents' profiles would take more than {LOGIN_BUDGET_BYTES} bytes of "
                    "the pool's record (agents.state holds every agent in one record)"
                )
            if reason is not None:
                self.refused.append({"agent_id": cmd.agent_id, "reason": reason, "at": now})
                return
            self._bytes[cmd.agent_id] = size
        self.pool.apply(cmd.model_copy(update={"id": _short(cmd.id)}), now)

    def agent_bytes(self) -> int:
        """What the agents may take of the record at most (profiles plus their slack)."""
        return sum(self._bytes.values())

    # -- campaigns --

    def _demand(self, ev: AgentCall, now: float) -> list[DeskOutput]:
        if not ev.active:
            self.demands.pop(ev.campaign, None)
            return []
        d = self.demands.get(ev.campaign)
        if d is None:
            if len(self.demands) >= MAX_CAMPAIGNS:
                self._evict_demand()
            d = Demand(ev.campaign, since=now)
            self.demands[ev.campaign] = d
        d.need = ev.need
        d.connect_within = ev.connect_within or d.connect_within
        d.abandon_message = ev.abandon_message
        d.account = ev.account or d.account
        d.caller = ev.caller
        d.last_sent = None  # tell it at once
        return []

    def _evict_demand(self) -> None:
        busy = {t.campaign for t in self.calls.values()}
        idle = [c for c in self.demands if c not in busy] or list(self.demands)
        oldest = min(idle, key=lambda c: self.demands[c].since)
        del self.demands[oldest]

    # -- calls --

    def _reserve(self, ev: AgentCall, now: float) -> list[DeskOutput]:
        ref = ev.call_ref
        assert ref is not None and ev.detected_at is not None and ev.uuid is not None
        if ref in self.calls or ref in self._done:
            return []  # a duplicate, or about a call already over
        if parse_campaign_call_ref(ref) is None:
            return []  # not a campaign's call: its agent legs could not be named
        demand = self.demands.get(ev.campaign)
        track = CallTrack(
            call_ref=ref,
            campaign=ev.campaign,
            detected_at=ev.detected_at,
            deadline=ev.detected_at + (ev.connect_within or 2.0),
            callee_uuid=ev.uuid,
            # The campaign's need lives in its demand; a call keeps its own only without one.
            need=None if demand is not None else ev.need,
            region_url=ev.region_url,
            account=ev.account or (demand.account if demand else "default"),
            caller=ev.caller if ev.caller is not None else (demand.caller if demand else None),
            values=dict(ev.values or {}),
        )
        if sum(1 for t in self.calls.values() if t.pending) >= MAX_PENDING:
            return self._abandon(track, now, "queue_full")
        self.calls[ref] = track
        return self._assign(track, now)

    def _assign(self, track: CallTrack, now: float) -> list[DeskOutput]:
        """Reserve an agent for a waiting caller; abandon when none is free past the deadline."""
        if track.legs >= MAX_AGENT_LEGS:
            return self._abandon(track, now, "no_agent")
        event_id = stable_id("rsv", track.call_ref, str(track.legs + 1))
        decisions = self.pool.apply(
            Reserve(_short(event_id), track.call_ref, self._need(track)), now
        )
        for d in decisions:
            if isinstance(d, Reserved):
                return [self._place(track, d, now)]
        if now >= track.deadline:
            return self._abandon(track, now, "no_agent")
        return []

    def _need(self, track: CallTrack) -> AgentNeed | None:
        demand = self.demands.get(track.campaign)
        return demand.need if demand is not None else track.need

    def _place(self, track: CallTrack, d: Reserved, now: float) -> PlaceLeg:
        track.legs += 1
        track.agent_id = d.agent_id
        track.leg_ref = make_agent_leg_ref(track.call_ref, track.legs)
        track.leg_uuid = None
        return PlaceLeg(
            call_ref=track.call_ref,
            campaign=track.campaign,
            leg_ref=track.leg_ref,
            agent_id=d.agent_id,
            endpoint=d.endpoint,
            account=track.account,
            caller=track.caller,
            at=now,
            replaces=d.replaces,
        )

    def _abandon(self, track: CallTrack, now: float, reason: str) -> list[DeskOutput]:
        self.calls.pop(track.call_ref, None)
        self._finish(track.call_ref)
        demand = self.demands.get(track.campaign)
        template = demand.abandon_message if demand is not None else None
        message = render_template(template, track.values) if template else None
        return [
            Abandon(
                call_ref=track.call_ref,
                campaign=track.campaign,
                callee_uuid=track.callee_uuid,
                region_url=track.region_url,
                account=track.account,
                message=message,
                at=now,
            ),
            AgentNotice(
                id=stable_id("agn", "abandoned", track.call_ref),
                occurred_at=_dt(now),
                campaign=track.campaign,
                kind="abandoned",
                call_ref=track.call_ref,
                wait_s=round(max(0.0, now - track.detected_at), 3),
                reason=reason,
            ),
        ]

    def _callee_ended(self, ev: AgentCall, now: float) -> list[DeskOutput]:
        ref = ev.call_ref
        assert ref is not None
        track = self.calls.get(ref)
        if track is None or track.agent_id is None:  # over already, or nobody reserved yet
            self.calls.pop(ref, None)
            self._finish(ref)
            return []
        if track.gone_at is not None:
            return []
        # The agent stays held until their own leg ends: with ``endOnExit`` the platform ends it
        # when the callee leaves, but a leg that joined after the callee left sits in an empty
        # conversation, and a ringing one would be answered into it. Ringing: hung up now;
        # connected: hung up if it has not ended by itself soon (:meth:`_settle`).
        track.gone_at = now
        track.gone_seen = ev.occurred_at.timestamp()
        if track.connected_at is None:
            return self._hangup(track, now)
        return []

    def _hangup(self, track: CallTrack, now: float) -> list[DeskOutput]:
        if track.hung or track.leg_ref is None or track.leg_uuid is None:
            return []
        track.hung = True
        return [HangupLeg(track.leg_ref, track.leg_uuid, track.account, now)]

    def _release(self, track: CallTrack, event_id: str, now: float) -> None:
        """The call is over for its agent: wrap-up after a call, free again if never on it."""
        self.calls.pop(track.call_ref, None)
        self._finish(track.call_ref)
        self.pool.apply(CallEnded(_short(event_id), track.call_ref), now)

    def _agent_answered(self, ev: AgentCall, now: float) -> list[DeskOutput]:
        ref, leg = ev.call_ref, ev.leg_ref
        assert ref is not None and leg is not None
        track = self.calls.get(ref)
        if track is None or track.leg_ref != leg or track.agent_id is None:
            # A leg nobody waits for (its callee left, or it was replaced): hang it up.
            account = track.account if track is not None else "default"
            return [HangupLeg(leg, ev.uuid, account, now)] if ev.uuid else []
        track.leg_uuid = ev.uuid or track.leg_uuid
        if track.gone_at is not None and not self._answered_first(track, ev):
            return self._hangup(track, now)  # answered after the callee left: no bridge
        if track.connected_at is not None:
            return []
        self.pool.apply(Connected(_short(ev.id), ref), now)
        track.connected_at = now
        track.values = {}  # only an abandon needs them
        return [
            AgentNotice(
                id=stable_id("agn", "connected", ref, leg),
                occurred_at=_dt(now),
                campaign=track.campaign,
                kind="connected",
                call_ref=ref,
                agent_id=track.agent_id,
                wait_s=round(max(0.0, now - track.detected_at), 3),
            )
        ]

    @staticmethod
    def _answered_first(track: CallTrack, ev: AgentCall) -> bool:
        """The agent's answer was seen before the callee's end: they shared the conversation.

        The agent leg's flow (key ``{call_ref}.a{n}``) and the callee's flow are different keys
        of ``voice.events``, so the worker may write the answer to ``agents.control`` after the
        callee's end even when the agent answered first (a short call: the agent hung up at
        once, ``endOnExit`` ended the callee). Read in that order, the call was a bridge all the
        same, and is connected: its campaign counts it, the agent gets it and its wrap-up.
        """
        return track.gone_seen is not None and ev.occurred_at.timestamp() < track.gone_seen

    def _agent_ended(self, ev: AgentCall, now: float) -> list[DeskOutput]:
        ref = ev.call_ref
        assert ref is not None
        track = self.calls.get(ref)
        if track is None or track.leg_ref != ev.leg_ref:
            return []
        if track.connected_at is None and track.gone_at is None:
            # Ended without an answer we saw: a failure.
            return self._agent_failed(ref, ev.leg_ref or "", "failed", ev.id, now)
        self._release(track, ev.id, now)
        return []

    def _agent_failed(
        self, ref: str, leg: str, status: str, event_id: str, now: float
    ) -> list[DeskOutput]:
        track = self.calls.get(ref)
        if track is None or track.leg_ref != leg or track.agent_id is None:
            return []
        if track.gone_at is not None:  # the callee left: our cancel, not the agent's failure
            self._release(track, event_id, now)
            return []
        if track.connected_at is not None:
            return []
        decisions = self.pool.apply(
            AgentLegFailed(_short(event_id), ref, track.agent_id, status[:40]), now
        )
        track.agent_id, track.leg_ref, track.leg_uuid = None, None, None
        for d in decisions:
            if isinstance(d, Reserved):
                if track.legs >= MAX_AGENT_LEGS:
                    self.pool.apply(CallEnded(_short(stable_id("rel", ref, leg)), ref), now)
                    return self._abandon(track, now, "no_agent")
                return [self._place(track, d, now)]
            if isinstance(d, NoAgentFree):
                break
        if now >= track.deadline:
            return self._abandon(track, now, "no_agent")
        return []

    def _created(self, ev: LegCreated, now: float) -> list[DeskOutput]:
        track = self.calls.get(ev.call_ref)
        current = track is not None and track.leg_ref == ev.leg_ref
        if ev.status == "failed":
            if current:
                return self._agent_failed(
                    ev.call_ref, ev.leg_ref, "failed", stable_id("agf", ev.leg_ref), now
                )
            return []
        if ev.status != "succeeded" or ev.uuid is None:
            return []
        if current:
            assert track is not None
            track.leg_uuid = ev.uuid
            if track.gone_at is not None and track.connected_at is None:
                return self._hangup(track, now)
            return []
        # Created for a call that no longer wants it (the callee left meanwhile): hang it up.
        account = track.account if track is not None else "default"
        return [HangupLeg(ev.leg_ref, ev.uuid, account, now)]

    def _finish(self, ref: str) -> None:
        if ref in self._done:
            return
        self.done.append(ref)
        self._done.add(ref)
        while len(self.done) > DONE_CAP:
            self._done.discard(self.done.popleft())

    # -- after every record --

    def _settle(self, now: float) -> list[DeskOutput]:
        out: list[DeskOutput] = []
        self.pool.tick(now)
        for track in [t for t in self.calls.values() if t.gone_at is not None]:
            if now >= track.gone_at + GONE_FORGET_S:  # type: ignore[operator]
                self._release(track, stable_id("gone", track.call_ref), now)
            elif now >= track.gone_at + GONE_HANGUP_S:  # type: ignore[operator]
                out += self._hangup(track, now)
        waiting = sorted(
            (t for t in self.calls.values() if t.agent_id is None),
            key=lambda t: (t.detected_at, t.call_ref),
        )
        free = self.pool.counts(now).available if waiting else 0
        for track in waiting:
            if track.deadline <= now or (
                free > 0 and self.pool.counts(now, self._need(track)).available
            ):
                out += self._assign(track, now)
                free = self.pool.counts(now).available
        out += self._loads(now)
        return out

    def _figures(self, d: Demand) -> tuple[tuple[int, ...], AgentLoadFigures]:
        now = self.clock
        c = self.pool.counts(now, d.need)
        occ = self.pool.occupancy(now, d.need)
        waiting = sum(
            1 for t in self.calls.values() if t.campaign == d.campaign and t.agent_id is None
        )
        figures = AgentLoadFigures(
            available=c.available,
            reserved=c.reserved,
            on_call=c.on_call,
            wrap_up=c.wrap_up,
            offline=c.offline,
            waiting=waiting,
            logged_in=occ.logged_in,
            calls=occ.calls,
            talk_seconds=round(occ.talk_seconds, 3),
            wrap_up_seconds=round(occ.wrap_up_seconds, 3),
            logged_in_seconds=round(occ.logged_in_seconds, 3),
        )
        counts = (c.available, c.reserved, c.on_call, c.wrap_up, c.offline, waiting, occ.calls)
        return counts, figures

    def _loads(self, now: float) -> list[DeskOutput]:
        out: list[DeskOutput] = []
        for d in self.demands.values():
            counts, figures = self._figures(d)
            if d.last_sent is not None:
                since = now - d.last_sent
                if since < LOAD_INTERVAL or (counts == d.sent and since < LOAD_HEARTBEAT):
                    continue
            d.last_sent, d.sent = now, counts
            out.append(
                AgentNotice(
                    id=stable_id("agn", "load", d.campaign, repr(now)),
                    occurred_at=_dt(now),
                    campaign=d.campaign,
                    kind="load",
                    load=figures,
                )
            )
        return out

    # -- views and persistence --

    def records(self) -> list[AgentRecord]:
        return self.pool.records()

    def dump(self) -> dict[str, Any]:
        return {
            "version": 1,
            "clock": self.clock,
            "agents": [
                r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in self.records()
            ],
            "calls": [t.to_json() for t in self.calls.values()],
            "campaigns": {c: d.to_json() for c, d in self.demands.items()},
            "done": list(self.done),
            "refused": list(self.refused),
        }

    def size(self) -> int:
        """The record's size in bytes as the changelog would hold it."""
        return len(orjson.dumps(self.dump()))

    @classmethod
    def restore(cls, d: dict[str, Any]) -> AgentDesk:
        records: Iterable[AgentRecord] = (AgentRecord.model_validate(r) for r in d["agents"])
        desk = cls(AgentPool.restore(records, dedup_depth=DEDUP_DEPTH))
        desk.clock = d.get("clock", 0.0)
        for t in d.get("calls", []):
            track = CallTrack.from_json(t)
            desk.calls[track.call_ref] = track
        for c, raw in (d.get("campaigns") or {}).items():
            desk.demands[c] = Demand.from_json(c, raw)
        for ref in d.get("done", []):
            desk.done.append(ref)
            desk._done.add(ref)
        desk.refused.extend(d.get("refused", []))
        return desk


# --- the commands ---------------------------------------------------------------------------


def agent_leg_command(place: PlaceLeg, *, public_base: str) -> CommandEnvelope:
    """The ``create_call`` of an agent's leg: the agent's endpoint into ``bridge-{call_ref}``.

    ``endOnExit``: the agent hanging up ends the callee's call too (the callee's own NCCO joins
    with ``endOnExit`` as well, so either side ends both). Keyed like every create (by account),
    its id deterministic from the leg's call_ref, its result back on ``agents.control``.
    """
    body: dict[str, Any] = {
        "to": [place.endpoint.model_dump(mode="json", by_alias=True, exclude_none=True)],
        "event_url": [webhook_url(public_base, "event", place.leg_ref)],
        "event_method": "POST",
        "ringing_timer": AGENT_RINGING_TIMER,
        "ncco": [
            {"action": "conversation", "name": bridge_name(place.call_ref), "endOnExit": True}
        ],
    }
    if place.caller:
        body["from"] = {"type": "phone", "number": place.caller.lstrip("+")}
    else:
        body["random_from_number"] = True
    return CommandEnvelope(
        id=stable_id("cmd", "create_call", place.leg_ref),
        occurred_at=_dt(place.at),
        flow_key=place.leg_ref,
        kind=CommandKind.CREATE_CALL,
        call_ref=place.leg_ref,
        account=place.account,
        body=body,
        origin=f"agents:{place.campaign}",
        reply_to=ReplyTo(topic=AGENTS_CONTROL.name, key=place.call_ref),
    )


def abandon_command(ab: Abandon) -> CommandEnvelope:
    """Transfer the callee out of the empty conversation to the abandon message (the call ends
    after it); a campaign without a message hangs the callee up."""
    if ab.message:
        kind = CommandKind.TRANSFER
        body: dict[str, Any] = {
            "destination": {"type": "ncco", "ncco": [{"action": "talk", "text": ab.message}]}
        }
    else:
        kind = CommandKind.HANGUP
        body = {}
    return CommandEnvelope(
        id=stable_id("cmd", "abandon", ab.call_ref),
        occurred_at=_dt(ab.at),
        flow_key=ab.call_ref,
        kind=kind,
        call_ref=ab.call_ref,
        call_uuid=ab.callee_uuid,
        region_url=ab.region_url,
        account=ab.account,
        body=body,
        origin=f"agents:{ab.campaign}",
    )


def hangup_command(h: HangupLeg) -> CommandEnvelope:
    return CommandEnvelope(
        id=stable_id("cmd", "hangup", h.leg_ref, h.uuid),
        occurred_at=_dt(h.at),
        flow_key=h.leg_ref,
        kind=CommandKind.HANGUP,
        call_ref=h.leg_ref,
        call_uuid=h.uuid,
        account=h.account,
        body={},
        origin="agents",
    )
