"""Campaign and dial-attempt state machines: pure, deterministic, restorable.

A contact moves ``fresh -> (waiting for hours | in flight) -> (waiting for retry -> in flight)* ->
final``. Each attempt moves ``requested -> dialing | dial_unknown -> ringing -> answered -> final``
by rank, so events in any order or repeated change nothing once a higher rank is reached, and an
attempt becomes final exactly once. A contact is removed from every structure when it becomes
final, so no later event can produce a second result for it: exactly one final result per contact.

The machine never reads a clock or a file: the controller passes ``now``, feeds contacts it read
lazily (:meth:`CampaignMachine.wants` says how many) and turns the outputs into Kafka records.
Memory holds calls in flight, contacts waiting for a retry or for calling hours (bounded by
``waiting_cap``) and a small read-ahead buffer; never the contact list.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from contracts.agent_calls import AgentLoadFigures
from contracts.call_refs import make_call_ref
from contracts.campaign import (
    AgentProgress,
    CampaignProgress,
    CampaignSpec,
    CampaignStatus,
    Contact,
    ContactResult,
    Disposition,
    contact_columns,
)
from contracts.envelopes import stable_id
from handlers.calling_hours import is_open, next_open, zones_for
from handlers.dial_pacer import DialPacer
from handlers.dial_rate import DialRate
from handlers.dial_stats import DialStats
from handlers.dialing_modes import AgentLoad, PredictiveConfig, PredictivePacer, progressive
from handlers.template_vars import missing_variables, spec_variables

__all__ = [
    "AgentOutcome",
    "Attempt",
    "AttemptStatus",
    "CampaignMachine",
    "ContactTrack",
    "DialRequest",
    "DialResult",
    "FinalResult",
    "LegOutcome",
    "LegProgress",
    "Milestone",
    "ReserveAgent",
    "classify",
    "run_id",
]


#: Seconds of dials the campaign may have queued ahead of the dispatcher (see unacked_window).
UNACKED_SECONDS = 2.0


class AttemptStatus(StrEnum):
    REQUESTED = "requested"  # command emitted
    DIALING = "dialing"  # Vonage accepted the create-call request
    DIAL_UNKNOWN = "dial_unknown"  # sent, but whether Vonage created the call is unknown
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"  # the line ended without a person (agent campaigns); the outcome follows
    FINAL = "final"


_RANK = {
    AttemptStatus.REQUESTED: 0,
    AttemptStatus.DIAL_UNKNOWN: 1,
    AttemptStatus.DIALING: 2,
    AttemptStatus.RINGING: 3,
    AttemptStatus.ANSWERED: 4,
    AttemptStatus.ENDED: 5,
    AttemptStatus.FINAL: 9,
}


# --- Events in -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialResult:
    """The dispatcher's result for the create-call command of ``call_ref``."""

    call_ref: str
    status: str  # succeeded | failed | unknown
    at: datetime
    uuid: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class LegProgress:
    """A non-final leg status (ringing, answered, human, machine)."""

    call_ref: str
    status: str
    at: datetime
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class LegOutcome:
    """The final outcome of the call's leg (from ``voice.outcomes``)."""

    call_ref: str
    disposition: str
    at: datetime
    uuid: str | None = None
    amd: str | None = None
    detail: str | None = None
    duration_s: int | None = None
    to: str | None = None  # the leg's called number: tells our leg from a connected one
    captures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Milestone:
    """Agent campaigns: the call's AMD result as it happened (``LegMilestone``), or ``ended``:
    the leg ended without one.

    ``seen_at``: when the human answer was seen (our clock, epoch seconds): the pool's
    ``connect_within`` runs from it.
    """

    call_ref: str
    status: str  # human | machine | ended
    uuid: str
    seen_at: float
    region_url: str | None = None


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """Agent campaigns: what the pool did with the live answer (``AgentNotice``)."""

    call_ref: str
    kind: str  # connected | abandoned
    wait_s: float
    agent_id: str | None = None


AttemptEvent = DialResult | LegProgress | LegOutcome | Milestone | AgentOutcome


# --- Outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialRequest:
    """Place a call: emit a create-call command for this contact and call_ref."""

    contact: Contact
    call_ref: str
    attempt: int
    at: datetime


@dataclass(frozen=True, slots=True)
class FinalResult:
    result: ContactResult


@dataclass(frozen=True, slots=True)
class ReserveAgent:
    """Agent campaigns: a person answered ``call_ref``; ask the pool for an agent."""

    contact: Contact
    call_ref: str
    uuid: str
    seen_at: float
    region_url: str | None
    at: datetime


Output = DialRequest | FinalResult | ReserveAgent


# --- Dispositions ----------------------------------------------------------------------------


def classify(
    disposition: str, amd: str | None = None, detail: str | None = None
) -> tuple[Disposition, str | None]:
    """(final disposition, retry class or None) for a leg outcome."""
    d = disposition.lower()
    if d in {"answered", "completed", "human"}:
        if (amd or "").lower() == "machine":
            return Disposition.MACHINE, "machine"
        return Disposition.ANSWERED, None
    if d == "machine":
        return Disposition.MACHINE, "machine"
    if d == "busy":
        return Disposition.BUSY, "busy"
    if d in {"unanswered", "cancelled"}:
        return Disposition.UNANSWERED, "unanswered"
    if d == "timeout":
        return Disposition.TIMEOUT, "timeout"
    if d == "rejected":
        return Disposition.REJECTED, "failed"
    return Disposition.FAILED, "failed"


def run_id(start_id: str) -> str:
    """A short id for one start of a campaign, so a rerun never reuses a call_ref."""
    return stable_id("run", start_id)[4:12]


# --- Per attempt and per contact ------------------------------------------------------------


@dataclass(slots=True)
class Attempt:
    call_ref: str
    number: int
    requested_at: datetime
    status: AttemptStatus = AttemptStatus.REQUESTED
    uuid: str | None = None
    amd: str | None = None
    disposition: str | None = None
    detail: str | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    captures: dict[str, str] = field(default_factory=dict)
    #: Agent campaigns: the wall time of the dial, the human answer seen, the pool's answer.
    dialed_wall: float | None = None
    human_at: float | None = None
    agent: str | None = None  # "reserving" until the pool answers, then the agent's id
    agent_wait_s: float | None = None
    abandoned: bool = False

    @property
    def final(self) -> bool:
        return self.status == AttemptStatus.FINAL

    def apply(self, ev: AttemptEvent) -> bool:
        """Merge one event; True when this event made the attempt final (exactly once)."""
        if self.final or ev.call_ref != self.call_ref:
            return False
        if isinstance(ev, Milestone):
            self.uuid = self.uuid or ev.uuid
            if ev.status == "ended":
                new = AttemptStatus.ENDED
            else:
                self.amd = "machine" if "machine" in (self.amd, ev.status) else ev.status
                new = AttemptStatus.ANSWERED
            if _RANK[new] > _RANK[self.status]:
                self.status = new
            return False
        if isinstance(ev, AgentOutcome):
            if ev.kind == "connected":
                self.agent = ev.agent_id
            else:
                self.abandoned = True
                self.agent = None
            self.agent_wait_s = ev.wait_s
            return False
        if isinstance(ev, LegOutcome):
            if self.uuid and ev.uuid and ev.uuid != self.uuid:
                return False  # another leg of the same call (e.g. a connect); not ours
            self.uuid = self.uuid or ev.uuid
            self.amd = ev.amd or self.amd
            self.disposition = ev.disposition
            self.detail = ev.detail
            self.duration_s = ev.duration_s
            self.captures = dict(ev.captures)
            self.ended_at = ev.at
            self.status = AttemptStatus.FINAL
            return True
        if isinstance(ev, DialResult):
            if ev.status == "failed":
                self.disposition = "failed"
                self.detail = ev.detail or "create_call_failed"
                self.ended_at = ev.at
                self.status = AttemptStatus.FINAL
                return True
            self.uuid = self.uuid or ev.uuid
            new = AttemptStatus.DIALING if ev.status == "succeeded" else AttemptStatus.DIAL_UNKNOWN
            if _RANK[new] > _RANK[self.status]:
                self.status = new
            return False
        # LegProgress
        if ev.status in {"human", "machine"}:
            self.amd = ev.status
            new = AttemptStatus.ANSWERED
        else:
            new = AttemptStatus.ANSWERED if ev.status == "answered" else AttemptStatus.RINGING
        self.uuid = self.uuid or ev.uuid
        if _RANK[new] > _RANK[self.status]:
            self.status = new
        return False

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "call_ref": self.call_ref,
            "number": self.number,
            "requested_at": self.requested_at.isoformat(),
            "status": str(self.status),
            "uuid": self.uuid,
            "amd": self.amd,
            "disposition": self.disposition,
            "detail": self.detail,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": self.duration_s,
            "captures": self.captures or None,
            "dialed_wall": self.dialed_wall,
            "human_at": self.human_at,
            "agent": self.agent,
            "agent_wait_s": self.agent_wait_s,
            "abandoned": self.abandoned or None,
        }
        return {k: v for k, v in d.items() if v is not None}  # the state is written often

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Attempt:
        return cls(
            call_ref=d["call_ref"],
            number=d["number"],
            requested_at=datetime.fromisoformat(d["requested_at"]),
            status=AttemptStatus(d["status"]),
            uuid=d.get("uuid"),
            amd=d.get("amd"),
            disposition=d.get("disposition"),
            detail=d.get("detail"),
            ended_at=datetime.fromisoformat(d["ended_at"]) if d.get("ended_at") else None,
            duration_s=d.get("duration_s"),
            captures=dict(d.get("captures") or {}),
            dialed_wall=d.get("dialed_wall"),
            human_at=d.get("human_at"),
            agent=d.get("agent"),
            agent_wait_s=d.get("agent_wait_s"),
            abandoned=bool(d.get("abandoned")),
        )


@dataclass(slots=True)
class ContactTrack:
    """A contact that is not final yet, with its attempts so far."""

    contact: Contact
    attempts: list[Attempt] = field(default_factory=list)
    due_at: datetime | None = None
    waiting: str | None = None  # "retry" | "hours" while in the waiting heap
    #: The contact as JSON, dumped once: the controller writes every track in flight at each
    #: checkpoint, and the contact (frozen) was most of that work at 100 CPS.
    _contact_json: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def to_json(self) -> dict[str, Any]:
        if self._contact_json is None:
            self._contact_json = self.contact.model_dump(mode="json", exclude_defaults=True)
        return {
            "contact": self._contact_json,
            "attempts": [a.to_json() for a in self.attempts],
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "waiting": self.waiting,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContactTrack:
        return cls(
            contact=Contact.model_validate(d["contact"]),
            attempts=[Attempt.from_json(a) for a in d["attempts"]],
            due_at=datetime.fromisoformat(d["due_at"]) if d.get("due_at") else None,
            waiting=d.get("waiting"),
        )


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _epoch(t: datetime) -> float:
    return t.timestamp()


# --- The campaign ----------------------------------------------------------------------------


class CampaignMachine:
    """One campaign's scheduling state. Mutated only through its methods; no I/O, no clock.

    An owner may persist it incrementally (the contacts named by :meth:`drain_changes`, and
    :meth:`meta_json`) or whole after every call (the controller's changelog, which then calls
    :meth:`forget_changes`); :meth:`restore` rebuilds an identical machine either way.
    """

    def __init__(
        self,
        spec: CampaignSpec,
        *,
        run: str,
        cps_limit: float,
        dnc: Container[str] = frozenset(),
        waiting_cap: int | None = None,
    ) -> None:
        self.spec = spec
        self.run = run
        self.dnc = dnc
        self.cps_limit = cps_limit
        self.waiting_cap = waiting_cap or max(500, 5 * spec.pacing.max_concurrent)
        self.status = CampaignStatus.SCHEDULED
        self.cursor = 0  # contacts taken from the source (the next row to read)
        self.eof = False
        self.contacts_total: int | None = None
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.dialed = 0
        self.dispositions: dict[str, int] = {}
        self.finished = 0
        #: Pacing at the campaign's share of the account CPS, as a long-run rate with a burst of
        #: UNACKED_SECONDS: the dispatcher enforces the account limit on the wire (per rolling
        #: second, as Vonage counts), and this pacer, upstream of it, lends back the time a slow
        #: round trip lost instead of leaving the dispatcher idle (see handlers.dial_pacer).
        self.pacer = DialPacer(cps_limit, burst=cps_limit * UNACKED_SECONDS)
        self.rate = DialRate()
        self.fresh: deque[ContactTrack] = deque()
        self.in_flight: dict[str, ContactTrack] = {}
        #: The in-flight call_refs whose dial the dispatcher has not reported on yet: the unacked
        #: window's count, kept as a set because it is read for every dial (a sum over
        #: ``in_flight`` took a third of the controller's CPU at 100 CPS).
        self._requested: set[str] = set()
        self.waiting: dict[str, ContactTrack] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._changed: set[str] = set()
        self._removed: set[str] = set()
        self._past_stop = False  # stop_at reached: nothing more is dialed
        self._rate_since: float | None = None  # wall time of the first dial (dials/min)
        self._active: dict[str, ContactTrack] = {}  # every non-final contact, by id
        self._template_vars = spec_variables(spec)  # what every contact must fill (or default)
        self.agents = _AgentSide.new(spec) if spec.mode != "agentless" else None

    # -- configuration helpers --

    @property
    def max_concurrent(self) -> int:
        return self.spec.pacing.max_concurrent

    @property
    def unacked_window(self) -> int:
        """At most about two seconds of dials queued ahead of the dispatcher.

        The dispatcher sends queued commands whatever happens here, so this window is what
        makes a pause (or cancel) stop new dials within a few seconds, and what keeps a slow or
        absent dispatcher from being buried under commands. It must also cover a dial's round
        trip, or it, not the CPS, sets the pace: a command is committed in the controller's
        transaction, recorded in the dispatcher's ledger (another transaction) before it is
        sent, and its result comes back through ``campaign.control`` and is acted on when the
        next tick is read. That takes about a second on a loaded machine, so the half second
        this used to allow capped a 20 CPS campaign at 11 dials a second (57 % of the limit in
        the campaign bench). Two seconds leaves room for twice that round trip.
        """
        return max(2, math.ceil(self.cps_limit * UNACKED_SECONDS))

    @property
    def read_ahead(self) -> int:
        return max(self.max_concurrent, min(int(self.cps_limit * 2) + 1, 1000), 16)

    @property
    def active(self) -> bool:
        return self.status not in {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED}

    @property
    def draining(self) -> bool:
        """Cancelled: every contact still unread gets a final result without a dial."""
        return self.status in {CampaignStatus.CANCELLING, CampaignStatus.CANCELLED}

    def wants(self) -> int:
        """How many more contacts the controller should read now (0 = none)."""
        if self.eof or (not self.active and not self.draining):
            return 0
        if self.draining or self._past_stop:
            return 1000  # finalise the rest without dialing
        if self.status == CampaignStatus.PAUSED or len(self.waiting) >= self.waiting_cap:
            return 0
        return max(0, self.read_ahead - len(self.fresh))

    # -- inputs --

    def add_contacts(self, contacts: Iterable[Contact], eof: bool, now: datetime) -> list[Output]:
        """Contacts read from the source in order (row ``cursor`` onwards)."""
        out: list[Output] = []
        for c in contacts:
            if c.index < self.cursor:
                continue  # already taken (a re-read after restore)
            self.cursor = c.index + 1
            track = ContactTrack(c)
            self._active[c.contact_id] = track
            if not c.valid:
                out.append(self._finalize(track, Disposition.INVALID_NUMBER, now, c.number))
            elif c.number in self.dnc:
                out.append(self._finalize(track, Disposition.DNC, now, None))
            elif self.draining:
                out.append(self._finalize(track, Disposition.CANCELLED, now, "campaign cancelled"))
            elif self._past_stop:
                out.append(self._finalize(track, Disposition.EXPIRED, now, "campaign stop_at"))
            else:
                self.fresh.append(track)
                self._changed.add(c.contact_id)
        if eof and not self.eof:
            self.eof = True
            self.contacts_total = self.cursor
        out += self._maybe_done(now)
        return out

    def start(self, now: datetime) -> None:
        if self.status == CampaignStatus.SCHEDULED and self.started_at is None:
            self.started_at = now

    def pause(self, now: datetime) -> None:
        if self.status in {CampaignStatus.RUNNING, CampaignStatus.SCHEDULED}:
            self.status = CampaignStatus.PAUSED

    def resume(self, now: datetime) -> None:
        if self.status == CampaignStatus.PAUSED:
            self.status = CampaignStatus.SCHEDULED  # tick() moves it to RUNNING when due

    def cancel(self, now: datetime) -> list[Output]:
        if not self.active or self.draining:
            return []
        self.status = CampaignStatus.CANCELLING
        out: list[Output] = []
        while self.fresh:
            out.append(self._finalize(self.fresh.popleft(), Disposition.CANCELLED, now, None))
        for cid in list(self.waiting):
            track = self.waiting.pop(cid)
            out.append(self._finalize_after_attempts(track, Disposition.CANCELLED, now))
        self._heap.clear()
        out += self._maybe_done(now)
        return out

    def on_event(self, ev: AttemptEvent, now: datetime, wall: float | None = None) -> list[Output]:
        """A dispatcher result, leg progress or leg outcome for one of our call_refs.

        ``wall``: real time (epoch seconds) of the event's reading, for an agent campaign's
        figures (default: ``now``).
        """
        track = self.in_flight.get(ev.call_ref)
        if track is None and isinstance(ev, AgentOutcome) and self.agents is not None:
            # The pool's word on a call whose callee's outcome came first (a short bridged
            # call): it still counts, once, in the figures (and the abandon rate pacing reads).
            self.agents.late(ev, _epoch(now) if wall is None else wall)
            return []
        if track is None or track.current is None:
            return []  # not in flight: duplicate, late, or another campaign's call
        attempt = track.current
        if isinstance(ev, LegOutcome) and ev.to and _digits(ev.to) != _digits(track.contact.number):
            return []  # a leg the flow connected to someone else, not the contact's leg
        t = _epoch(now) if wall is None else wall
        out: list[Output] = []
        side = self.agents
        if side is not None and isinstance(ev, Milestone | AgentOutcome):
            out += side.on_event(track, attempt, ev, now, t)
        made_final = attempt.apply(ev)
        if attempt.status != AttemptStatus.REQUESTED:
            self._requested.discard(ev.call_ref)
        if not made_final:
            self._changed.add(track.contact.contact_id)
            return out
        del self.in_flight[ev.call_ref]
        if side is not None:
            side.on_final(attempt, t)
        return out + self._after_attempt(track, attempt, now) + self._maybe_done(now)

    def on_agent_load(self, load: AgentLoadFigures, wall: float) -> None:
        """Agent campaigns: the pool's latest figures for this campaign's agents."""
        if self.agents is not None:
            self.agents.on_load(load, wall)

    # -- time --

    def tick(self, now: datetime, wall: float | None = None) -> list[Output]:
        """Advance to ``now``: start, expire, time out attempts, dial what is due.

        ``now`` is the campaign's clock (calling hours, retries, stop time); ``wall`` the real
        time in epoch seconds for pacing, which is about the real API's rolling second even
        when a test runs the campaign clock faster (default: ``now``).
        """
        out: list[Output] = []
        if self.status == CampaignStatus.SCHEDULED and (
            self.spec.start_at is None or now >= self.spec.start_at
        ):
            self.status = CampaignStatus.RUNNING
            self.started_at = self.started_at or now
        out += self._timeouts(now)
        if self.spec.stop_at is not None and now >= self.spec.stop_at and self.active:
            out += self._expire(now)
        if self.status == CampaignStatus.RUNNING:
            out += self._dial_due(now, _epoch(now) if wall is None else wall)
        out += self._maybe_done(now)
        return out

    def next_wakeup(self, now: datetime, wall: float | None = None) -> float | None:
        """Seconds until :meth:`tick` could next dial (None: only an event can unblock it).

        Pacing waits are in real seconds; retry due times are on the campaign clock, so a
        caller whose campaign clock runs fast should cap the wait (the controller ticks at
        least every quarter second anyway).
        """
        if self.status != CampaignStatus.RUNNING or len(self.in_flight) >= self.max_concurrent:
            return None
        t = _epoch(now) if wall is None else wall
        waits: list[float] = []
        if self._heap:
            waits.append((self._heap[0][0] - now).total_seconds())
        if (self.fresh or (self._heap and self._heap[0][0] <= now)) and (
            self._unacked() < self.unacked_window  # else the dispatcher's results wake it
        ):
            pace = self.pacer.next_free(t)
            waits.append(0.0 if pace is None else pace - t)
        return max(0.0, min(waits)) if waits else None

    # -- internals --

    def _timeouts(self, now: datetime) -> list[Output]:
        out: list[Output] = []
        limit = timedelta(seconds=self.spec.effective_attempt_timeout)
        for ref, track in list(self.in_flight.items()):
            a = track.current
            if a is not None and now - a.requested_at >= limit:
                # No outcome: the call may exist, so it is never redialed (never dial twice).
                a.status = AttemptStatus.FINAL
                a.disposition, a.detail, a.ended_at = "failed", "no_outcome", now
                del self.in_flight[ref]
                self._requested.discard(ref)
                if self.agents is not None:
                    self.agents.on_final(a)
                out.append(self._finalize(track, Disposition.FAILED, now, "no_outcome"))
        return out

    def _expire(self, now: datetime) -> list[Output]:
        self._past_stop = True
        out: list[Output] = []
        while self.fresh:
            out.append(self._finalize(self.fresh.popleft(), Disposition.EXPIRED, now, "stop_at"))
        for cid in list(self.waiting):
            track = self.waiting.pop(cid)
            out.append(self._finalize_after_attempts(track, Disposition.EXPIRED, now))
        self._heap.clear()
        return out

    def _pop_due(self, now: datetime) -> ContactTrack | None:
        while self._heap and self._heap[0][0] <= now:
            due, _, cid = heapq.heappop(self._heap)
            track = self.waiting.get(cid)
            if track is None or track.due_at != due:
                continue  # stale heap entry
            del self.waiting[cid]
            track.waiting = None
            return track
        return None

    def _dial_due(self, now: datetime, t: float) -> list[Output]:
        out: list[Output] = []
        hours = self.spec.calling_hours
        # Agent campaigns: no more dials than the agents allow (dialing_modes), within the rest.
        room = self.agents.room(self.in_flight.values(), t) if self.agents is not None else None
        while (
            len(self.in_flight) < self.max_concurrent
            and self.pacer.next_free(t) is None
            and self._unacked() < self.unacked_window
            and (room is None or room > 0)
        ):
            track = self._pop_due(now)
            if track is None:
                if not self.fresh:
                    break
                track = self.fresh.popleft()
            c = track.contact
            zones = zones_for(c.number, c.timezone, hours.fallback_timezone) if hours else ()
            if not is_open(hours, zones, now):
                due = next_open(hours, zones, now)
                if due is None or (self.spec.stop_at is not None and due >= self.spec.stop_at):
                    out.append(
                        self._finalize_after_attempts(track, Disposition.EXPIRED, now, "no_hours")
                    )
                else:
                    self._wait(track, due, "hours")
                continue
            missing = missing_variables(self.spec, c, used=self._template_vars)
            if missing:
                # Never dial a blank into a sentence: `campaign validate` names these up front.
                detail = "missing_variables: " + ",".join(missing)
                out.append(self._finalize_after_attempts(track, Disposition.FAILED, now, detail))
                continue
            n = len(track.attempts) + 1
            ref = make_call_ref(self.spec.name, self.run, c.index, n)
            track.attempts.append(
                Attempt(
                    call_ref=ref,
                    number=n,
                    requested_at=now,
                    dialed_wall=t if self.agents is not None else None,
                )
            )
            if room is not None:
                room -= 1
            track.due_at = None
            self.in_flight[ref] = track
            self._requested.add(ref)
            self._changed.add(c.contact_id)
            self.pacer.try_acquire(t)
            self.rate.add(t)
            self._rate_since = self._rate_since or t
            self.dialed += 1
            out.append(DialRequest(contact=c, call_ref=ref, attempt=n, at=now))
        return out

    def _unacked(self) -> int:
        """Dials emitted that the dispatcher has not reported on yet (queued commands)."""
        return len(self._requested)

    def _wait(self, track: ContactTrack, due: datetime, why: str) -> None:
        track.due_at = due
        track.waiting = why
        self.waiting[track.contact.contact_id] = track
        heapq.heappush(self._heap, (due, track.contact.index, track.contact.contact_id))
        self._changed.add(track.contact.contact_id)

    def _after_attempt(self, track: ContactTrack, a: Attempt, now: datetime) -> list[Output]:
        disp, retry_class = classify(a.disposition or "failed", a.amd, a.detail)
        if a.abandoned:
            # A person answered and no agent was free in time: its own retry rule.
            disp, retry_class = Disposition.ABANDONED, "abandoned"
        rule = self.spec.retry.rule(retry_class) if retry_class else None
        if (
            rule is not None
            and len(track.attempts) < rule.max_attempts
            and self.status
            in {CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED}
            and not self._past_stop
        ):
            # The controller's clock, not the event's: webhook times come from another clock.
            due = now + timedelta(seconds=rule.delay)
            if self.spec.stop_at is None or due < self.spec.stop_at:
                self._wait(track, due, "retry")
                return []
        return [self._finalize(track, disp, now, a.detail)]

    def _finalize_after_attempts(
        self, track: ContactTrack, fallback: Disposition, now: datetime, detail: str | None = None
    ) -> FinalResult:
        """Final for a contact taken out of waiting: its last real disposition if it had one."""
        last = track.attempts[-1] if track.attempts else None
        if last is not None and last.disposition is not None and fallback != Disposition.CANCELLED:
            disp, _ = classify(last.disposition, last.amd, last.detail)
            return self._finalize(track, disp, now, last.detail)
        return self._finalize(track, fallback, now, detail)

    def _finalize(
        self, track: ContactTrack, disp: Disposition, now: datetime, detail: str | None
    ) -> FinalResult:
        c = track.contact
        attempts = track.attempts
        last = attempts[-1] if attempts else None
        result = ContactResult(
            id=ContactResult.make_id(self.spec.name, c.contact_id),
            campaign=self.spec.name,
            contact_id=c.contact_id,
            index=c.index,
            number=c.number,
            name=c.name,
            disposition=disp,
            detail=detail,
            attempts=len(attempts),
            call_refs=[a.call_ref for a in attempts],
            call_uuids=[a.uuid for a in attempts if a.uuid],
            first_attempt_at=attempts[0].requested_at if attempts else None,
            last_attempt_at=last.requested_at if last else None,
            finished_at=now,
            amd=last.amd if last else None,
            duration_s=last.duration_s if last else None,
            columns=contact_columns(c),
            captures=dict(last.captures) if last else {},
            agent_id=last.agent if last is not None and last.agent != RESERVING else None,
            agent_wait_s=last.agent_wait_s if last is not None else None,
        )
        self.finished += 1
        self.dispositions[str(disp)] = self.dispositions.get(str(disp), 0) + 1
        self._changed.discard(c.contact_id)
        if self._active.pop(c.contact_id, None) is not None:
            self._removed.add(c.contact_id)
        return FinalResult(result)

    def _maybe_done(self, now: datetime) -> list[Output]:
        if (
            self.eof
            and not self.fresh
            and not self.waiting
            and not self.in_flight
            and self.active
            and self.status != CampaignStatus.PAUSED
            and (self.started_at is not None or self.draining)
        ):
            self.status = CampaignStatus.CANCELLED if self.draining else CampaignStatus.COMPLETED
            self.finished_at = now
        return []

    # -- persistence --

    def drain_changes(self) -> tuple[list[ContactTrack], list[str]]:
        """Contacts to write (changed, still active) and to tombstone (final) since last call."""
        changed = []
        for cid in self._changed:
            track = self._find(cid)
            if track is not None:
                changed.append(track)
        removed = sorted(self._removed)
        self._changed.clear()
        self._removed.clear()
        return changed, removed

    def forget_changes(self) -> None:
        """Drop what :meth:`drain_changes` would report: the owner persisted the whole state."""
        self._changed.clear()
        self._removed.clear()

    def _find(self, cid: str) -> ContactTrack | None:
        return self._active.get(cid)

    def tracks(self) -> list[ContactTrack]:
        return [*self.fresh, *self.in_flight.values(), *self.waiting.values()]

    def meta_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "status": str(self.status),
            "cursor": self.cursor,
            "eof": self.eof,
            "contacts_total": self.contacts_total,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "dialed": self.dialed,
            "finished": self.finished,
            "dispositions": dict(self.dispositions),
            "pacer_tat": self.pacer.to_json(),
            "past_stop": self._past_stop,
            "agents": self.agents.to_json() if self.agents is not None else None,
        }

    @classmethod
    def restore(
        cls,
        spec: CampaignSpec,
        meta: dict[str, Any],
        tracks: Iterable[ContactTrack],
        *,
        cps_limit: float,
        dnc: Container[str] = frozenset(),
    ) -> CampaignMachine:
        m = cls(spec, run=meta["run"], cps_limit=cps_limit, dnc=dnc)
        m.status = CampaignStatus(meta["status"])
        m.cursor = meta["cursor"]
        m.eof = meta["eof"]
        m.contacts_total = meta.get("contacts_total")
        m.started_at = (
            datetime.fromisoformat(meta["started_at"]) if meta.get("started_at") else None
        )
        m.finished_at = (
            datetime.fromisoformat(meta["finished_at"]) if meta.get("finished_at") else None
        )
        m.dialed = meta["dialed"]
        m.finished = meta["finished"]
        m.dispositions = dict(meta["dispositions"])
        m.pacer.restore(meta.get("pacer_tat"))
        m._past_stop = bool(meta.get("past_stop"))
        if m.agents is not None and meta.get("agents"):
            m.agents = _AgentSide.from_json(spec, meta["agents"])
        fresh: list[ContactTrack] = []
        for t in tracks:
            cur = t.current
            if cur is not None and not cur.final:
                m.in_flight[cur.call_ref] = t
                if cur.status == AttemptStatus.REQUESTED:
                    m._requested.add(cur.call_ref)
            elif t.waiting and t.due_at is not None:
                m.waiting[t.contact.contact_id] = t
                heapq.heappush(m._heap, (t.due_at, t.contact.index, t.contact.contact_id))
            else:
                fresh.append(t)
            m._active[t.contact.contact_id] = t
        m.fresh.extend(sorted(fresh, key=lambda t: t.contact.index))
        return m

    # -- reporting --

    def progress(self, now: datetime, wall: float | None = None) -> CampaignProgress:
        waiting_hours = 0
        retries: dict[str, int] = {}
        next_retry: datetime | None = None
        for t in self.waiting.values():
            if t.waiting == "hours":
                waiting_hours += 1
                continue
            failed = t.current
            _, retry_class = (
                classify(failed.disposition or "failed", failed.amd, failed.detail)
                if failed
                else (None, "failed")
            )
            if failed is not None and failed.abandoned:
                retry_class = "abandoned"
            key = retry_class or "failed"
            retries[key] = retries.get(key, 0) + 1
            if t.due_at is not None and (next_retry is None or t.due_at < next_retry):
                next_retry = t.due_at
        return CampaignProgress(
            campaign=self.spec.name,
            status=self.status,
            at=now,
            started_at=self.started_at,
            finished_at=self.finished_at,
            contacts_read=self.cursor,
            contacts_total=self.contacts_total,
            dialed=self.dialed,
            in_flight=len(self.in_flight),
            retries_pending=len(self.waiting) - waiting_hours,
            retries_pending_by_disposition=retries,
            next_retry_at=next_retry,
            waiting_for_hours=waiting_hours,
            finished=self.finished,
            dispositions=dict(self.dispositions),
            dials_per_min=round(
                self.rate.per_minute(_epoch(now) if wall is None else wall, self._rate_since),
                2,
            ),
            max_concurrent=self.max_concurrent,
            cps_limit=self.cps_limit,
            agents=self.agents.progress(
                self.spec, wall if wall is not None else _epoch(now), self.in_flight.values()
            )
            if self.agents is not None
            else None,
        )


# --- Agent campaigns -------------------------------------------------------------------------

#: ``Attempt.agent`` while the pool has been asked and has not answered yet.
RESERVING = "reserving"
#: How long after the person answered the pool's notice for an already ended call may come.
LATE_NOTICE_S = 600.0


@dataclass(slots=True)
class _AgentSide:
    """An agent campaign's view of its agents: the pool's load, the pacing, the figures.

    Pure like the rest of the machine: times come in as arguments (``wall``: real seconds).
    """

    mode: str
    ratio: float
    predictive: PredictivePacer | None
    stats: DialStats
    load: AgentLoadFigures | None = None
    load_wall: float | None = None  # when the last load notice was read
    base: AgentLoadFigures | None = None  # the first load: occupancy counts from there
    connected: int = 0
    wait_total: float = 0.0
    demand_wall: float | None = None  # when the controller last told the pool it wants agents
    phase: str | None = None
    level: float | None = None
    #: Calls that ended while the pool had not answered yet (call_ref -> when the person
    #: answered): their notice comes after the callee's outcome and is counted by :meth:`late`.
    #: Bounded by the calls that end while waiting, kept for LATE_NOTICE_S at most.
    awaiting: dict[str, float] = field(default_factory=dict)
    #: The last pacing decision: the load it saw and the dials it allowed (for debug logs only,
    #: not checkpointed).
    last_room: tuple[AgentLoad, int | None] | None = None

    @classmethod
    def new(cls, spec: CampaignSpec) -> _AgentSide:
        rules = spec.agent_rules
        stats = DialStats(abandon_window=rules.abandon_window)
        predictive = (
            PredictivePacer(PredictiveConfig.from_spec(rules), stats)
            if spec.mode == "predictive"
            else None
        )
        return cls(spec.mode, rules.ratio, predictive, stats)

    # -- events --

    def on_event(
        self,
        track: ContactTrack,
        a: Attempt,
        ev: Milestone | AgentOutcome,
        now: datetime,
        wall: float,
    ) -> list[Output]:
        if a.final:
            return []
        if isinstance(ev, Milestone):
            if ev.status != "human" or a.human_at is not None or a.amd == "machine":
                return []
            a.human_at = wall
            a.agent = RESERVING
            self.stats.on_live_answer(wall, wall - (a.dialed_wall or wall))
            return [
                ReserveAgent(track.contact, a.call_ref, ev.uuid, ev.seen_at, ev.region_url, now)
            ]
        if a.agent_wait_s is not None:
            return []  # told already
        if ev.kind == "connected":
            self.connected += 1
            self.wait_total += ev.wait_s
            self.stats.on_bridged(a.call_ref, wall)
        else:
            self.stats.on_abandoned(a.human_at if a.human_at is not None else wall)
        return []

    def late(self, ev: AgentOutcome, wall: float) -> None:
        """The pool's notice for a call that already ended: counted once, if it was awaited."""
        human_at = self.awaiting.pop(ev.call_ref, None)
        for ref, at in list(self.awaiting.items()):
            if wall - at > LATE_NOTICE_S:
                del self.awaiting[ref]
        if human_at is None:
            return  # counted already (a duplicate), or never asked: nothing to add
        if ev.kind == "connected":
            self.connected += 1
            self.wait_total += ev.wait_s
        else:
            self.stats.on_abandoned(human_at)

    def on_final(self, a: Attempt, wall: float | None = None) -> None:
        if a.agent == RESERVING and a.human_at is not None and a.agent_wait_s is None:
            self.awaiting[a.call_ref] = a.human_at
        if a.human_at is None:
            self.stats.on_no_live_answer()
        elif a.agent not in (None, RESERVING):
            wrap = 0.0
            if self.load is not None and self.load.calls:
                wrap = self.load.wrap_up_seconds / self.load.calls
            # Measured on the clock the pacing runs on, from the pool's "connected" to the
            # outcome, like the answer delay; the call's own duration (Vonage's seconds) is the
            # fallback. (With the simulator's clock sped up, its durations are simulated seconds
            # while the pacing's are real ones: a handle time ten times too long dialled nobody
            # ahead.)
            bridged = self.stats.handling.get(a.call_ref)
            talk = wall - bridged if wall is not None and bridged is not None else None
            seconds = float(a.duration_s or 0) if talk is None else max(0.0, talk)
            self.stats.on_handled(seconds + wrap, a.call_ref)

    def on_load(self, load: AgentLoadFigures, wall: float) -> None:
        self.load, self.load_wall = load, wall
        if self.base is None:
            self.base = load

    # -- pacing --

    def room(self, in_flight: Iterable[ContactTrack], wall: float) -> int:
        """New dials the agents allow now (the account's CPS and max_concurrent bind too)."""
        load = self.load
        if load is None:
            return 0  # the pool has not said yet whether anyone is there
        ringing = 0
        for t in in_flight:
            a = t.current
            if a is None:
                continue
            if _RANK[a.status] < _RANK[AttemptStatus.ANSWERED]:
                ringing += 1
            elif (
                a.agent == RESERVING
                and not a.abandoned
                and a.human_at is not None
                and (self.load_wall is None or a.human_at >= self.load_wall)
            ):
                ringing += 1  # asked the pool after its last load notice: not counted there yet
        figures = AgentLoad(
            available=load.available,
            busy=load.on_call + load.wrap_up,
            ringing=ringing,
            waiting=load.waiting,
        )
        if self.predictive is not None:
            allowance = self.predictive.allowance(wall, figures)
        else:
            allowance = progressive(figures, self.ratio)
        self.phase, self.level = allowance.phase, allowance.level
        self.last_room = (figures, allowance.dials)
        return allowance.dials if allowance.dials is not None else 0

    # -- figures --

    def progress(
        self, spec: CampaignSpec, wall: float, in_flight: Iterable[ContactTrack]
    ) -> AgentProgress:
        load = self.load
        occupancy = per_hour = None
        if load is not None:
            base = self.base or AgentLoadFigures()
            logged = load.logged_in_seconds - base.logged_in_seconds
            if logged > 0:
                occupancy = round((load.talk_seconds - base.talk_seconds) / logged, 4)
                per_hour = round((load.calls - base.calls) / (logged / 3600.0), 2)
        rate = self.stats.abandon_rate(wall)
        return AgentProgress(
            mode=self.mode,
            agents_free=load.available if load else 0,
            agents_busy=(load.reserved + load.on_call + load.wrap_up) if load else 0,
            agents_logged_in=load.logged_in if load else 0,
            callers_waiting=load.waiting if load else 0,
            live_answers=self.stats.live_answers,
            connected=self.connected,
            abandoned=self.stats.abandoned,
            abandon_rate=round(rate, 4) if rate is not None else None,
            mean_wait_s=round(self.wait_total / self.connected, 3) if self.connected else None,
            occupancy=occupancy,
            calls_per_agent_hour=per_hour,
            dial_level=round(self.level, 3) if self.level is not None else None,
            phase=self.phase,
        )

    # -- persistence --

    def to_json(self) -> dict[str, Any]:
        return {
            "load": self.load.model_dump(mode="json") if self.load else None,
            "load_wall": self.load_wall,
            "base": self.base.model_dump(mode="json") if self.base else None,
            "connected": self.connected,
            "wait_total": self.wait_total,
            "demand_wall": self.demand_wall,
            "phase": self.phase,
            "level": self.level,
            "awaiting": self.awaiting,
            "stats": self.stats.to_json(),
            "plan": self.predictive.plan.to_json()
            if self.predictive is not None and self.predictive.plan is not None
            else None,
        }

    @classmethod
    def from_json(cls, spec: CampaignSpec, d: dict[str, Any]) -> _AgentSide:
        side = cls.new(spec)
        side.stats = DialStats.from_json(d["stats"])
        if side.predictive is not None:
            side.predictive = PredictivePacer.from_json(
                side.predictive.config, {"stats": d["stats"], "plan": d.get("plan")}
            )
            side.stats = side.predictive.stats
        side.load = AgentLoadFigures.model_validate(d["load"]) if d.get("load") else None
        side.load_wall = d.get("load_wall")
        side.base = AgentLoadFigures.model_validate(d["base"]) if d.get("base") else None
        side.connected = d.get("connected", 0)
        side.wait_total = d.get("wait_total", 0.0)
        side.demand_wall = d.get("demand_wall")
        side.phase, side.level = d.get("phase"), d.get("level")
        side.awaiting = dict(d.get("awaiting") or {})
        return side
