"""The agent pool: which agent takes which answered call. Pure, deterministic, restorable.

An agent moves ``offline -> available -> reserved -> on_call -> wrap_up -> available``, with
``reserved -> available`` when the answer was a machine or the connect failed, and ``reserved ->
offline`` when the agent's own leg failed (busy, unreachable): the call then goes to the next
free agent, and the pool says so (:class:`Reserved` with ``replaces``) or says that nobody is
free (:class:`NoAgentFree`), so the caller can wait ``connect_within`` and then abandon.

Why it cannot double-book: only an ``available`` agent is ever reserved, a reservation names one
call, and a call that already holds an agent gets that same agent back when it asks again. Why a
redelivered event changes nothing: every event carries an id, the ids applied to an agent are
kept (the last :data:`DEDUP_DEPTH` per agent, so memory is bounded by the team's size and not by
the campaign's length) and stored in the agent's changelog record, so they survive a restart.
Events that do not fit the agent's state (a ``connected`` for a call the agent no longer holds)
are ignored, so the pool's state depends only on the events and their times. One event is not
remembered, an event that touched no agent's record: a reserve that found nobody (delivered
again it asks again, and may find an agent free by then; a caller that no longer wants one
releases it) and a command for an agent never logged in (dropped, as is its redelivery).

No clock is read: every call passes ``now`` (epoch seconds). A wrap-up ends at its own time
(``wrap_up_until``) whenever the pool next looks, so the result does not depend on how often it
is ticked.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts.agents import (
    Agent,
    AgentAction,
    AgentCommand,
    AgentEndpoint,
    AgentNeed,
    AgentRecord,
    AgentState,
    LeaveAfterCall,
)

__all__ = [
    "DEDUP_DEPTH",
    "AgentLegFailed",
    "AgentPool",
    "CallEnded",
    "Connected",
    "Decision",
    "NoAgentFree",
    "Occupancy",
    "PoolCounts",
    "PoolEvent",
    "Release",
    "Reserve",
    "Reserved",
]

#: Event ids remembered per agent. Duplicates arrive close to their original (a producer's retry,
#: a replay of the last uncommitted records), far fewer than this many events later.
DEDUP_DEPTH = 64


# --- Events from the call side -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reserve:
    """A person answered ``call_ref``: hold the longest-idle free agent that fits ``need``."""

    event_id: str
    call_ref: str
    need: AgentNeed | None = None


@dataclass(frozen=True, slots=True)
class Release:
    """The reserved agent is not needed: a machine answered, the callee left, the connect failed."""

    event_id: str
    call_ref: str
    reason: str = "released"


@dataclass(frozen=True, slots=True)
class Connected:
    """The agent's leg answered and was bridged to the callee."""

    event_id: str
    call_ref: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The bridged call ended (either side hung up)."""

    event_id: str
    call_ref: str


@dataclass(frozen=True, slots=True)
class AgentLegFailed:
    """The agent's own leg for ``call_ref`` ended before answering: busy, failed, timeout..."""

    event_id: str
    call_ref: str
    agent_id: str
    status: str


PoolEvent = AgentCommand | Reserve | Release | Connected | CallEnded | AgentLegFailed


# --- Decisions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reserved:
    """Connect ``call_ref`` to this agent. ``replaces``: the agent whose leg failed before."""

    call_ref: str
    agent_id: str
    endpoint: AgentEndpoint
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class NoAgentFree:
    """Nobody fits and is free: the caller waits (``connect_within``) or abandons."""

    call_ref: str
    after_failure_of: str | None = None


Decision = Reserved | NoAgentFree


# --- Figures ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolCounts:
    available: int = 0
    reserved: int = 0
    on_call: int = 0
    wrap_up: int = 0
    offline: int = 0

    @property
    def busy(self) -> int:
        """Agents who will be free again by themselves: talking or wrapping up."""
        return self.on_call + self.wrap_up

    @property
    def staffed(self) -> int:
        return self.available + self.reserved + self.on_call + self.wrap_up


@dataclass(frozen=True, slots=True)
class Occupancy:
    """Talk time over logged-in time, the figure a team lead compares across dialing modes."""

    logged_in: int
    talk_seconds: float
    wrap_up_seconds: float
    logged_in_seconds: float
    calls: int

    @property
    def occupancy(self) -> float | None:
        if self.logged_in_seconds <= 0:
            return None
        return self.talk_seconds / self.logged_in_seconds


# --- One agent -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """An agent's mutable state; :class:`AgentRecord` is its stored form."""

    agent: Agent
    state: AgentState
    since: float
    logged_in_since: float | None = None
    idle_since: float | None = None
    call_ref: str | None = None
    need: AgentNeed | None = None
    wrap_up_until: float | None = None
    leave_after_call: LeaveAfterCall | None = None
    offline_reason: str | None = None
    calls: int = 0
    talk_seconds: float = 0.0
    wrap_up_seconds_total: float = 0.0
    logged_in_seconds: float = 0.0
    recent: deque[str] = field(default_factory=deque)

    def record(self) -> AgentRecord:
        return AgentRecord(
            agent=self.agent,
            state=self.state,
            since=self.since,
            logged_in_since=self.logged_in_since,
            idle_since=self.idle_since,
            call_ref=self.call_ref,
            need=self.need,
            wrap_up_until=self.wrap_up_until,
            leave_after_call=self.leave_after_call,
            offline_reason=self.offline_reason,
            calls=self.calls,
            talk_seconds=self.talk_seconds,
            wrap_up_seconds_total=self.wrap_up_seconds_total,
            logged_in_seconds=self.logged_in_seconds,
            recent_events=list(self.recent),
        )

    @classmethod
    def from_record(cls, r: AgentRecord) -> _Slot:
        return cls(
            agent=r.agent,
            state=r.state,
            since=r.since,
            logged_in_since=r.logged_in_since,
            idle_since=r.idle_since,
            call_ref=r.call_ref,
            need=r.need,
            wrap_up_until=r.wrap_up_until,
            leave_after_call=r.leave_after_call,
            offline_reason=r.offline_reason,
            calls=r.calls,
            talk_seconds=r.talk_seconds,
            wrap_up_seconds_total=r.wrap_up_seconds_total,
            logged_in_seconds=r.logged_in_seconds,
            recent=deque(r.recent_events),
        )


# --- The pool --------------------------------------------------------------------------------


class AgentPool:
    """Every agent by id. Mutated only through :meth:`apply` (and the wrap-up ends it implies)."""

    def __init__(self, *, dedup_depth: int = DEDUP_DEPTH) -> None:
        if dedup_depth < 1:
            raise ValueError("dedup_depth must be >= 1")
        self.dedup_depth = dedup_depth
        self._slots: dict[str, _Slot] = {}
        self._by_call: dict[str, str] = {}  # call_ref -> agent id (reserved or on the call)
        self._seen: dict[str, str] = {}  # event id -> agent id whose record remembers it
        self._wrap_ups: list[tuple[float, str]] = []  # (until, agent id); stale entries skipped
        self._changed: set[str] = set()

    # -- events --

    def apply(self, event: PoolEvent, now: float) -> list[Decision]:
        """Apply one event at ``now``; what the caller must do about its call, if anything."""
        self._end_wrap_ups(now)
        event_id = event.id if isinstance(event, AgentCommand) else event.event_id
        if event_id in self._seen:
            return []
        if isinstance(event, AgentCommand):
            self._command(event, now)
            return []
        if isinstance(event, Reserve):
            return [self._reserve(event, now)]
        if isinstance(event, AgentLegFailed):
            return self._leg_failed(event, now)
        s = self._holding(event.call_ref)
        if s is None:
            return []
        self._remember(s, event_id)
        if isinstance(event, Connected):
            if s.state == AgentState.RESERVED:
                self._move(s, AgentState.ON_CALL, now)
        elif isinstance(event, CallEnded):
            if s.state == AgentState.ON_CALL:
                self._end_call(s, now)
            else:
                self._unhold(s, now)  # the callee left before the agent answered
        elif s.state == AgentState.RESERVED:  # Release
            self._unhold(s, now)
        return []

    def tick(self, now: float) -> list[str]:
        """End the wrap-ups due by ``now``; the agents that became free (sorted)."""
        return sorted(self._end_wrap_ups(now))

    def _reserve(self, ev: Reserve, now: float) -> Decision:
        held = self._holding(ev.call_ref)
        if held is not None:  # asked again for the same call: the same agent, never a second
            self._remember(held, ev.event_id)
            return Reserved(ev.call_ref, held.agent.id, held.agent.endpoint)
        s = self._pick(ev.need)
        if s is None:
            return NoAgentFree(ev.call_ref)
        self._hold(s, ev.call_ref, ev.need, now)
        self._remember(s, ev.event_id)
        return Reserved(ev.call_ref, s.agent.id, s.agent.endpoint)

    def _leg_failed(self, ev: AgentLegFailed, now: float) -> list[Decision]:
        s = self._slots.get(ev.agent_id)
        if s is None or s.call_ref != ev.call_ref or s.state != AgentState.RESERVED:
            return []  # stale: the agent no longer holds this call
        self._remember(s, ev.event_id)
        need = s.need
        # A logout asked during the reservation still logs the agent out.
        reason = "logout" if s.leave_after_call == "logout" else f"leg_{ev.status}"
        self._unhold(s, now, reason=reason)
        nxt = self._pick(need)
        if nxt is None:
            return [NoAgentFree(ev.call_ref, after_failure_of=s.agent.id)]
        self._hold(nxt, ev.call_ref, need, now)
        return [Reserved(ev.call_ref, nxt.agent.id, nxt.agent.endpoint, replaces=s.agent.id)]

    def _command(self, cmd: AgentCommand, now: float) -> None:
        s = self._slots.get(cmd.agent_id)
        if cmd.action == AgentAction.LOGIN:
            assert cmd.agent is not None  # the contract requires the profile with login
            if s is None:
                s = _Slot(cmd.agent, AgentState.OFFLINE, now)
                self._slots[cmd.agent_id] = s
            s.agent = cmd.agent
            self._ready(s, now)
        elif s is None:
            return  # logout, available or offline for an agent never logged in
        elif cmd.action == AgentAction.AVAILABLE:
            self._ready(s, now)
        else:
            self._step_out(s, "logout" if cmd.action == AgentAction.LOGOUT else "offline", now)
        self._remember(s, cmd.id)
        self._changed.add(s.agent.id)

    def _ready(self, s: _Slot, now: float) -> None:
        if s.state in {AgentState.RESERVED, AgentState.ON_CALL}:
            s.leave_after_call = None  # came back before the call ended: stays
        elif s.state != AgentState.AVAILABLE:
            if s.logged_in_since is None:
                s.logged_in_since = now
            s.offline_reason = None
            s.idle_since = now
            self._move(s, AgentState.AVAILABLE, now)

    def _step_out(self, s: _Slot, how: LeaveAfterCall, now: float) -> None:
        if s.state in {AgentState.RESERVED, AgentState.ON_CALL}:
            s.leave_after_call = how  # never cut a call: done when it ends
        else:
            self._offline(s, how, now)

    # -- transitions --

    def _move(self, s: _Slot, new: AgentState, at: float) -> None:
        t = max(at, s.since)
        if s.state == AgentState.ON_CALL:
            s.talk_seconds += t - s.since
        elif s.state == AgentState.WRAP_UP:
            s.wrap_up_seconds_total += t - s.since
        if new != AgentState.WRAP_UP:
            s.wrap_up_until = None
        s.state, s.since = new, t
        self._changed.add(s.agent.id)

    def _offline(self, s: _Slot, reason: str, now: float) -> None:
        self._move(s, AgentState.OFFLINE, now)
        s.offline_reason = reason
        s.leave_after_call = None
        if reason == "logout" and s.logged_in_since is not None:
            s.logged_in_seconds += max(0.0, s.since - s.logged_in_since)
            s.logged_in_since = None

    def _hold(self, s: _Slot, call_ref: str, need: AgentNeed | None, now: float) -> None:
        self._move(s, AgentState.RESERVED, now)  # idle_since kept: a release restores the place
        s.call_ref, s.need = call_ref, need
        self._by_call[call_ref] = s.agent.id

    def _unhold(self, s: _Slot, now: float, reason: str | None = None) -> None:
        if s.call_ref is not None:
            self._by_call.pop(s.call_ref, None)
        s.call_ref, s.need = None, None
        if reason is not None:
            self._offline(s, reason, now)
        elif s.leave_after_call is not None:
            self._offline(s, s.leave_after_call, now)
        else:
            self._move(s, AgentState.AVAILABLE, now)

    def _end_call(self, s: _Slot, now: float) -> None:
        s.calls += 1
        if s.call_ref is not None:
            self._by_call.pop(s.call_ref, None)
        s.call_ref, s.need = None, None
        if s.leave_after_call is not None:
            self._offline(s, s.leave_after_call, now)
            return
        self._move(s, AgentState.WRAP_UP, now)
        s.wrap_up_until = s.since + s.agent.wrap_up_seconds
        heapq.heappush(self._wrap_ups, (s.wrap_up_until, s.agent.id))
        self._end_wrap_ups(now)  # a zero wrap-up frees the agent at once

    def _end_wrap_ups(self, now: float) -> list[str]:
        freed: list[str] = []
        while self._wrap_ups and self._wrap_ups[0][0] <= now:
            until, agent_id = heapq.heappop(self._wrap_ups)
            s = self._slots.get(agent_id)
            if s is None or s.state != AgentState.WRAP_UP or s.wrap_up_until != until:
                continue  # ended early (available, offline), or a stale entry
            s.idle_since = until
            self._move(s, AgentState.AVAILABLE, until)
            freed.append(agent_id)
        return freed

    def _pick(self, need: AgentNeed | None) -> _Slot | None:
        """The longest-idle available agent that fits; ties by id, so the choice is repeatable."""
        best: _Slot | None = None
        for s in self._slots.values():
            if s.state != AgentState.AVAILABLE or not s.agent.fits(need):
                continue
            if best is None or (s.idle_since or 0.0, s.agent.id) < (
                best.idle_since or 0.0,
                best.agent.id,
            ):
                best = s
        return best

    def _holding(self, call_ref: str) -> _Slot | None:
        agent_id = self._by_call.get(call_ref)
        return self._slots.get(agent_id) if agent_id is not None else None

    def _remember(self, s: _Slot, event_id: str) -> None:
        if event_id in self._seen:
            return
        while len(s.recent) >= self.dedup_depth:
            old = s.recent.popleft()
            if self._seen.get(old) == s.agent.id:
                del self._seen[old]
        s.recent.append(event_id)
        self._seen[event_id] = s.agent.id
        self._changed.add(s.agent.id)

    # -- queries --

    def state_of(self, agent_id: str) -> AgentState | None:
        s = self._slots.get(agent_id)
        return s.state if s is not None else None

    def agent_for(self, call_ref: str) -> str | None:
        """The agent reserved for, or talking on, ``call_ref``."""
        return self._by_call.get(call_ref)

    def agent_ids(self) -> list[str]:
        return sorted(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._slots

    def next_wrap_up_end(self) -> float | None:
        """When the earliest wrap-up ends (an agent becomes free by itself), if any."""
        while self._wrap_ups:
            until, agent_id = self._wrap_ups[0]
            s = self._slots.get(agent_id)
            if s is not None and s.state == AgentState.WRAP_UP and s.wrap_up_until == until:
                return until
            heapq.heappop(self._wrap_ups)  # stale: ended early
        return None

    def counts(self, now: float, need: AgentNeed | None = None) -> PoolCounts:
        """Agents by state at ``now``, among those who fit ``need`` (None: all)."""
        self._end_wrap_ups(now)
        by: dict[AgentState, int] = dict.fromkeys(AgentState, 0)
        for s in self._slots.values():
            if s.agent.fits(need):
                by[s.state] += 1
        return PoolCounts(
            available=by[AgentState.AVAILABLE],
            reserved=by[AgentState.RESERVED],
            on_call=by[AgentState.ON_CALL],
            wrap_up=by[AgentState.WRAP_UP],
            offline=by[AgentState.OFFLINE],
        )

    def occupancy(self, now: float, need: AgentNeed | None = None) -> Occupancy:
        """Talk and logged-in time so far, live intervals included up to ``now``."""
        self._end_wrap_ups(now)
        talk = wrap = logged = 0.0
        logged_in = calls = 0
        for s in self._slots.values():
            if not s.agent.fits(need):
                continue
            live = max(0.0, now - s.since)
            talk += s.talk_seconds + (live if s.state == AgentState.ON_CALL else 0.0)
            wrap += s.wrap_up_seconds_total + (live if s.state == AgentState.WRAP_UP else 0.0)
            logged += s.logged_in_seconds
            if s.logged_in_since is not None:
                logged_in += 1
                logged += max(0.0, now - s.logged_in_since)
            calls += s.calls
        return Occupancy(logged_in, talk, wrap, logged, calls)

    # -- persistence --

    def records(self) -> list[AgentRecord]:
        """Every agent's changelog value, by id."""
        return [self._slots[a].record() for a in sorted(self._slots)]

    def record(self, agent_id: str) -> AgentRecord | None:
        s = self._slots.get(agent_id)
        return s.record() if s is not None else None

    def drain_changes(self) -> list[str]:
        """Agents whose record changed since the last call (to write to the changelog)."""
        changed = sorted(self._changed)
        self._changed.clear()
        return changed

    @classmethod
    def restore(
        cls, records: Iterable[AgentRecord], *, dedup_depth: int = DEDUP_DEPTH
    ) -> AgentPool:
        """The pool as the records left it (the latest record per agent, in any order)."""
        pool = cls(dedup_depth=dedup_depth)
        for r in records:
            s = _Slot.from_record(r)
            pool._slots[r.agent.id] = s
            if s.call_ref is not None:
                pool._by_call[s.call_ref] = r.agent.id
            if s.wrap_up_until is not None:
                heapq.heappush(pool._wrap_ups, (s.wrap_up_until, r.agent.id))
            for event_id in s.recent:
                pool._seen[event_id] = r.agent.id
        return pool
