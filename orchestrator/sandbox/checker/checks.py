"""Jepsen-style checks over a recorded history: pure functions from records to anomalies.

The history is gathered afterwards from the outside (the simulator's ledger and the topics), never
from the processes under test, so a bug in a role cannot hide its own traces. Each check returns the
anomalies it found; an empty list means the property held over the whole history.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Ranks of leg statuses in the worker's lattice: a leg's recorded status never goes down.
STATUS_RANK: dict[str, int] = {
    "dialing": 0,
    "started": 1,
    "ringing": 2,
    "answered": 3,
    "human": 4,
    "machine": 4,
    "busy": 5,
    "cancelled": 5,
    "unanswered": 5,
    "timeout": 5,
    "failed": 5,
    "rejected": 6,
    "completed": 6,
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str
    subject: str
    detail: str


@dataclass(frozen=True, slots=True)
class Dial:
    """A create-call the Voice API accepted (from the simulator's ledger)."""

    call_ref: str | None
    uuid: str
    to: str
    created_at: float  # seconds, simulator clock
    ended_at: float | None = None
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class ApiRequest:
    at: float
    creates_call: bool
    status: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook the simulator delivered and the ingress acknowledged with a 2xx."""

    flow_key: str
    uuid: str | None
    event_type: str
    http_status: int


@dataclass
class History:
    dials: list[Dial] = field(default_factory=list)
    requests: list[ApiRequest] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    #: EventEnvelopes found on voice.events (dicts as produced).
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Outcomes found on voice.outcomes.
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    #: Final contact results found on campaign.results.
    results: list[dict[str, Any]] = field(default_factory=list)
    #: Contacts the campaign was given (ids), to check that each has exactly one result.
    contacts: list[str] = field(default_factory=list)
    #: (flow key, {leg uuid: status}) snapshots in changelog order, for monotonicity.
    leg_status_snapshots: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    dlq: list[dict[str, Any]] = field(default_factory=list)


def _leg_of(payload: dict[str, Any]) -> str | None:
    uuid = payload.get("uuid") or payload.get("call_uuid")
    return str(uuid) if uuid else None


def lost_events(history: History) -> list[Anomaly]:
    """A webhook the ingress acknowledged that is not on ``voice.events`` (lost after 2xx)."""
    stored = Counter(
        (e.get("flow_key"), _leg_of(e.get("payload") or {}), e.get("event_type"))
        for e in history.events
        if e.get("type") == "vonage.webhook"
    )
    out = []
    for d in history.deliveries:
        if 200 <= d.http_status < 300 and not stored[(d.flow_key, d.uuid, d.event_type)]:
            out.append(
                Anomaly(
                    "lost-event", d.flow_key, f"{d.event_type} for leg {d.uuid} acked, not stored"
                )
            )
    return out


def unapplied_events(history: History) -> list[Anomaly]:
    """A leg whose terminal event was stored but that never got an outcome (stored, never applied)."""
    terminal = {"completed", "rejected"}
    legs = {
        (e["flow_key"], leg)
        for e in history.events
        if e.get("event_type") in terminal and (leg := _leg_of(e.get("payload") or {}))
    }
    with_outcome = {
        (o.get("flow_key"), o.get("uuid")) for o in history.outcomes if o.get("scope") == "leg"
    }
    return [
        Anomaly("unapplied-event", fk, f"leg {leg} ended but has no outcome")
        for fk, leg in sorted(legs - with_outcome)
    ]


def duplicate_outcomes(history: History) -> list[Anomaly]:
    """More than one distinct outcome for one leg or conversation.

    The same outcome id seen twice is an at-least-once re-delivery that consumers deduplicate; two
    different ids (or dispositions) for one subject is a real duplicate.
    """
    by_subject: dict[tuple[str, str, str], set[tuple[str, str]]] = defaultdict(set)
    for o in history.outcomes:
        subject = o.get("uuid") if o.get("scope") == "leg" else o.get("conversation_uuid")
        key = (str(o.get("scope")), str(o.get("flow_key")), str(subject))
        by_subject[key].add((str(o.get("id")), str(o.get("disposition"))))
    return [
        Anomaly(
            "duplicate-outcome", f"{scope}:{fk}:{subj}", f"{len(v)} distinct outcomes: {sorted(v)}"
        )
        for (scope, fk, subj), v in sorted(by_subject.items())
        if len(v) > 1
    ]


def duplicate_dials(history: History) -> list[Anomaly]:
    """A ``call_ref`` for which the Voice API created more than one call."""
    counts = Counter(d.call_ref for d in history.dials if d.call_ref)
    return [
        Anomaly("duplicate-dial", ref, f"dialed {n} times")
        for ref, n in sorted(counts.items())
        if n > 1
    ]


def out_of_order(history: History) -> list[Anomaly]:
    """A leg whose recorded status went down the lattice (a later snapshot ranks lower)."""
    last: dict[tuple[str, str], tuple[int, str]] = {}
    out = []
    for flow_key, legs in history.leg_status_snapshots:
        for leg, status in legs.items():
            rank = STATUS_RANK.get(status, -1)
            prev = last.get((flow_key, leg))
            if prev is not None and rank < prev[0]:
                out.append(Anomaly("out-of-order", f"{flow_key}:{leg}", f"{prev[1]} -> {status}"))
            if prev is None or rank >= prev[0]:
                last[(flow_key, leg)] = (rank, status)
    return out


def contact_results(history: History) -> list[Anomaly]:
    """Every contact has exactly one final result (none missing, none doubled)."""
    counts = Counter(str(r.get("contact_id")) for r in history.results)
    out = [
        Anomaly("duplicate-result", cid, f"{n} final results") for cid, n in counts.items() if n > 1
    ]
    out += [
        Anomaly("missing-result", cid, "no final result")
        for cid in history.contacts
        if not counts[cid]
    ]
    return out


def rate_windows(
    requests: Sequence[ApiRequest], *, cps: float, rps: float, window: float = 1.0
) -> list[Anomaly]:
    """Accepted requests in any rolling window above the limit (create-call and other separately)."""
    out = []
    for creates, limit, label in ((True, cps, "create-call"), (False, rps, "other")):
        times = sorted(r.at for r in requests if r.creates_call == creates and r.status != 429)
        worst, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            worst = max(worst, end - start + 1)
        if worst > limit:
            out.append(
                Anomaly("rate-window", label, f"{worst} accepted in one {window}s window > {limit}")
            )
    return out


def concurrency(dials: Iterable[Dial], cap: int) -> list[Anomaly]:
    """Calls in flight at once above the cap (from creation to end, per campaign)."""
    by_campaign: dict[str | None, list[tuple[float, int]]] = defaultdict(list)
    for d in dials:
        by_campaign[d.campaign].append((d.created_at, 1))
        if d.ended_at is not None:
            by_campaign[d.campaign].append((d.ended_at, -1))
    out = []
    for campaign, points in by_campaign.items():
        level = peak = 0
        for _, delta in sorted(points, key=lambda p: (p[0], p[1])):  # ends before starts at a tie
            level += delta
            peak = max(peak, level)
        if peak > cap:
            out.append(Anomaly("concurrency", str(campaign), f"{peak} calls in flight > cap {cap}"))
    return out


@dataclass
class Report:
    anomalies: list[Anomaly]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def render(self) -> str:
        lines = ["history check: " + ("OK" if self.ok else f"{len(self.anomalies)} ANOMALIES")]
        lines += [f"  covered {k}: {v}" for k, v in self.counts.items()]
        kinds = Counter(a.kind for a in self.anomalies)
        for kind in (
            "lost-event",
            "unapplied-event",
            "duplicate-outcome",
            "duplicate-dial",
            "out-of-order",
            "missing-result",
            "duplicate-result",
            "rate-window",
            "concurrency",
        ):
            lines.append(f"  {kind}: {kinds.get(kind, 0)}")
        lines += [f"  ! {a.kind} {a.subject}: {a.detail}" for a in self.anomalies[:50]]
        return "\n".join(lines)


def check(history: History, *, cps: float, rps: float, cap: int | None = None) -> Report:
    anomalies = (
        lost_events(history)
        + unapplied_events(history)
        + duplicate_outcomes(history)
        + duplicate_dials(history)
        + out_of_order(history)
        + contact_results(history)
        + rate_windows(history.requests, cps=cps, rps=rps)
        + (concurrency(history.dials, cap) if cap is not None else [])
    )
    counts = {
        "api requests": len(history.requests),
        "calls dialed": len(history.dials),
        "webhooks delivered": len(history.deliveries),
        "events stored": len(history.events),
        "outcomes": len(history.outcomes),
        "contact results": len(history.results),
        "dead letters": len(history.dlq),
    }
    return Report(anomalies, counts)
