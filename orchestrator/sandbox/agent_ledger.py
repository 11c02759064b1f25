"""An agent campaign's figures as the Voice API simulator saw them, not as the roles count them.

The bench (``bench/agents.py``) and ``orchestrator demo --agents`` both need to know what really
happened to callees and agents, independently of the controller's and the agents role's own
counters (those are what is being checked). The simulator's ledger has it: each call's AMD
result, each agent leg's answer and end, and every named conversation with who was in it from
when to when. Times here are simulated seconds (the simulator's clock).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["LedgerFigures", "ledger_figures"]


def _ts(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


@dataclass
class LedgerFigures:
    """One campaign's agent figures from the ledger (simulated seconds)."""

    agents: int  # logged in throughout the span
    dials: int  # callee legs created
    live_answers: int  # callee legs AMD called human
    bridged: int  # of those, in a conversation with an agent's leg
    talk_s: float  # agents' time sharing a conversation with their callee
    span_s: float  # the campaign's first dial to its last leg's end
    waits: list[float] = field(default_factory=list)  # callee answered -> agent answered
    double_booked: int = 0  # answered agent legs overlapping another of the same agent
    machines_bridged: int = 0  # machine answers that got an agent leg or shared a conversation
    agents_on_call: int = 0  # agent legs not ended when the ledger was read
    #: The same talk and span from the first dial to the last: while contacts were left to
    #: dial, before the list's tail, where agents only finish their last calls (its length does
    #: not depend on the pacing, so it weighs more on the mode that got through the list sooner).
    talk_dialing_s: float = 0.0
    dialing_s: float = 0.0

    @property
    def abandoned(self) -> int:
        return self.live_answers - self.bridged

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def agent_hours(self) -> float:
        return self.agents * self.span_s / 3600

    @property
    def occupancy(self) -> float:
        return self.talk_s / (self.agents * self.span_s) if self.span_s else 0.0

    @property
    def occupancy_dialing(self) -> float:
        """Occupancy while contacts were left to dial (first dial to last)."""
        return self.talk_dialing_s / (self.agents * self.dialing_s) if self.dialing_s else 0.0

    @property
    def dials_per_agent_hour(self) -> float:
        return self.dials / self.agent_hours if self.agent_hours else 0.0

    @property
    def calls_per_agent_hour(self) -> float:
        return self.bridged / self.agent_hours if self.agent_hours else 0.0

    @property
    def mean_wait(self) -> float | None:
        return sum(self.waits) / len(self.waits) if self.waits else None


def ledger_figures(ledger: dict[str, Any], campaign: str, agents: int) -> LedgerFigures:
    """Figures of ``campaign``'s calls (call_refs ``{campaign}.``; agent legs are ``.aN`` of
    their callee's) from a ``GET /_sim/ledger`` document (its ``calls`` and ``conversations``)."""
    prefix = f"{campaign}."
    calls = [c for c in ledger["calls"] if (c.get("call_ref") or "").startswith(prefix)]
    callees = {c["call_ref"]: c for c in calls if not c.get("agent")}
    agent_calls = [c for c in calls if c.get("agent")]
    live = {ref for ref, c in callees.items() if c.get("amd_result") == "human"}
    machines = {
        ref
        for ref, c in callees.items()
        if c.get("amd_result") == "machine" or c.get("outcome") == "machine"
    }
    out = LedgerFigures(agents=agents, dials=len(callees), live_answers=len(live), bridged=0,
                        talk_s=0.0, span_s=0.0)  # fmt: skip
    # An agent leg created for a machine is a breach even if it never joined anything.
    bad: set[str] = {
        c["call_ref"] for c in agent_calls if c["call_ref"].rsplit(".", 1)[0] in machines
    }
    bridged: set[str] = set()
    dialed = [t for t in (_ts(c["times"]["created"]) for c in callees.values()) if t is not None]
    first_dial, last_dial = (min(dialed), max(dialed)) if dialed else (0.0, 0.0)
    out.dialing_s = last_dial - first_dial
    for conv in ledger.get("conversations", []):
        stays = [s for s in conv["legs"] if (s.get("call_ref") or "").startswith(prefix)]
        agent_stays = [s for s in stays if s["agent"]]
        callee_stays = [s for s in stays if not s["agent"]]
        if not agent_stays:
            continue
        for cs in callee_stays:
            ref = cs["call_ref"]
            c_joined, c_left = _ts(cs["joined"]), _ts(cs["left"])
            together = 0.0
            for a in agent_stays:
                joined, left = _ts(a["joined"]), _ts(a["left"])
                if joined is None or c_joined is None:
                    continue
                lo = max(joined, c_joined)
                ends = [x for x in (left, c_left) if x is not None]
                hi = min(ends) if ends else lo
                together += max(0.0, hi - lo)
                out.talk_dialing_s += max(0.0, min(hi, last_dial) - max(lo, first_dial))
            # Bridged means the callee and an agent were in the conversation at the same time:
            # an agent leg that joined after its callee had left talked to nobody.
            if together <= 0:
                continue
            out.talk_s += together
            if ref in machines or cs.get("amd_result") == "machine":
                bad.add(ref)
            elif ref in live:
                bridged.add(ref)
    out.bridged = len(bridged)
    out.machines_bridged = len(bad)
    answered_at = {ref: _ts(c["times"]["answered"]) for ref, c in callees.items()}
    first_agent: dict[str, float] = {}
    for c in agent_calls:
        a = _ts(c["times"]["answered"])
        ref = c["call_ref"].rsplit(".", 1)[0]
        if a is not None and ref in bridged:
            first_agent[ref] = min(a, first_agent.get(ref, a))
    for ref, a in first_agent.items():
        h = answered_at.get(ref)
        if h is not None:
            out.waits.append(max(0.0, a - h))
    out.double_booked = _overlaps(agent_calls)
    out.agents_on_call = sum(
        1 for c in agent_calls if c["times"]["answered"] and not c["times"]["ended"]
    )
    starts = [t for t in (_ts(c["times"]["created"]) for c in calls) if t is not None]
    ends = [t for t in (_ts(c["times"]["ended"]) for c in calls) if t is not None]
    if starts and ends:
        out.span_s = max(ends) - min(starts)
    return out


def _overlaps(agent_calls: list[dict[str, Any]]) -> int:
    """Answered agent legs that overlap an earlier answered leg to the same agent."""
    per_agent: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for c in agent_calls:
        a, e = _ts(c["times"]["answered"]), _ts(c["times"]["ended"])
        if a is not None:
            per_agent[c["to"]].append((a, e if e is not None else float("inf")))
    n = 0
    for spans in per_agent.values():
        spans.sort()
        end = float("-inf")
        for start, stop in spans:
            if start < end:
                n += 1
            end = max(end, stop)
    return n
