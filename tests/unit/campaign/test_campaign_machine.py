"""The campaign machine under arbitrary event orders, duplicates, delays and operator actions.

A small simulated world dials through the pure machine: every dial gets a random fate (busy,
unanswered, machine ...), whose events (dispatcher result, progress, final outcome) arrive late,
shuffled and duplicated, with events for strangers mixed in. Whatever hypothesis draws, the
campaign's promises must hold.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.call_refs import make_call_ref
from contracts.campaign import (
    CallingHours,
    CampaignSpec,
    CampaignStatus,
    Contact,
    Disposition,
    RetryPolicy,
    RetryRule,
    parse_campaign_yaml,
)
from handlers.calling_hours import is_open, zones_for
from handlers.campaign import (
    UNACKED_SECONDS,
    AttemptEvent,
    AttemptStatus,
    CampaignMachine,
    ContactTrack,
    DialRequest,
    DialResult,
    FinalResult,
    LegOutcome,
    LegProgress,
    classify,
)

BASE = """\
name: prop
contacts: {jsonl: x}
from: {numbers: ["14155550000"]}
flow: {ncco: [{action: talk, text: "hi {{name}}"}]}
"""

NUMBERS = ["+14155550{:03d}", "+447911123{:03d}", "+61412345{:03d}", "+81312345{:03d}"]
FATES = ["answered", "machine", "busy", "unanswered", "timeout", "failed", "rejected", "api_failed"]
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday


def _contacts(n: int, rnd: random.Random) -> list[Contact]:
    out = []
    for i in range(n):
        number = rnd.choice(NUMBERS).format(i % 1000)
        tz = rnd.choice([None, None, "America/New_York"])
        valid = rnd.random() > 0.03
        out.append(
            Contact(
                index=i,
                contact_id=f"c{i}",
                number=number if valid else "garbage",
                valid=valid,
                timezone=tz,
            )
        )
    return out


def _spec(rnd: random.Random, cap: int, hours: bool) -> CampaignSpec:
    spec = parse_campaign_yaml(BASE)
    retry = RetryPolicy(
        busy=RetryRule(delay=rnd.choice([30.0, 600.0]), max_attempts=rnd.randint(1, 4)),
        unanswered=RetryRule(delay=rnd.choice([60.0, 3600.0]), max_attempts=rnd.randint(1, 3)),
        timeout=RetryRule(delay=120.0, max_attempts=2),
        failed=RetryRule(delay=10.0, max_attempts=rnd.randint(1, 2)),
        machine=RetryRule(delay=900.0, max_attempts=rnd.randint(1, 2)),
    )
    return spec.model_copy(
        update={
            "retry": retry,
            "pacing": spec.pacing.model_copy(update={"max_concurrent": cap}),
            "calling_hours": CallingHours(start=time(9), end=time(19)) if hours else None,
            "attempt_timeout": 4 * 3600.0,
        }
    )


def _events_for(
    fate: str, ref: str, uuid: str, end: datetime, rnd: random.Random
) -> list[AttemptEvent]:
    if fate == "api_failed":
        return [DialResult(ref, "failed", end, detail="http_400")]
    evs: list[AttemptEvent] = [DialResult(ref, rnd.choice(["succeeded", "unknown"]), end, uuid)]
    evs.append(LegProgress(ref, "ringing", end, uuid))
    if fate in {"answered", "machine"}:
        evs.append(LegProgress(ref, "answered", end, uuid))
        evs.append(LegProgress(ref, "human" if fate == "answered" else "machine", end, uuid))
        evs.append(
            LegOutcome(
                ref,
                "answered",
                end,
                uuid,
                amd="human" if fate == "answered" else "machine",
                duration_s=12,
            )
        )
    else:
        evs.append(LegOutcome(ref, fate, end, uuid))
    # Another leg of the same call_ref (e.g. a connect) must not be taken for ours.
    if rnd.random() < 0.1:
        evs.append(LegOutcome(ref, "busy", end, uuid + "-other", to="15550001111"))
    return evs


class World:
    def __init__(self, rnd: random.Random, n: int, cap: int, hours: bool, cps: float) -> None:
        self.rnd = rnd
        self.contacts = _contacts(n, rnd)
        self.dnc = {c.number for c in self.contacts if c.valid and rnd.random() < 0.08}
        self.spec = _spec(rnd, cap, hours)
        self.cps = cps
        self.m = CampaignMachine(self.spec, run="r1", cps_limit=cps, dnc=self.dnc, waiting_cap=25)
        self.now = T0
        self.pending: list[tuple[datetime, int, AttemptEvent]] = []
        self.seq = 0
        self.read = 0
        self.dials: list[DialRequest] = []
        self.finals: list[FinalResult] = []
        self.outcome_at: dict[str, tuple[datetime, str]] = {}  # call_ref -> (end, retry class)
        self.paused_since: datetime | None = None
        self.cancelled_at: datetime | None = None

    def feed(self) -> None:
        n = self.m.wants()
        batch = self.contacts[self.read : self.read + n]
        self.read += len(batch)
        self.handle(self.m.add_contacts(batch, self.read >= len(self.contacts), self.now))

    def handle(self, outs: list[Any]) -> None:
        for o in outs:
            if isinstance(o, DialRequest):
                self.dials.append(o)
                end = self.now + timedelta(seconds=self.rnd.choice([1, 5, 40, 200]))
                fate = self.rnd.choice(FATES)
                uuid = f"u-{o.call_ref}"
                for ev in _events_for(fate, o.call_ref, uuid, end, self.rnd):
                    copies = 2 if self.rnd.random() < 0.3 else 1
                    for _ in range(copies):
                        jitter = timedelta(seconds=self.rnd.uniform(0, 30))
                        self.seq += 1
                        self.pending.append((end + jitter, self.seq, ev))
                _disp, rc = classify(
                    "failed"
                    if fate == "api_failed"
                    else ("answered" if fate == "machine" else fate),
                    "machine" if fate == "machine" else None,
                )
                self.outcome_at[o.call_ref] = (end, rc or "")
            else:
                assert isinstance(o, FinalResult)
                self.finals.append(o)
        self.check_live()

    def deliver(self) -> None:
        due = [p for p in self.pending if p[0] <= self.now]
        self.pending = [p for p in self.pending if p[0] > self.now]
        self.rnd.shuffle(due)
        for _, _, ev in due:
            self.handle(self.m.on_event(ev, self.now))
        # Strangers: other campaigns' refs and refs of attempts already over.
        self.handle(self.m.on_event(LegOutcome("other.r9.1.1", "answered", self.now), self.now))

    def check_live(self) -> None:
        assert len(self.m.in_flight) <= self.spec.pacing.max_concurrent
        # The unacked window's count is kept incrementally: it must match a recount.
        requested = [
            t
            for t in self.m.in_flight.values()
            if t.current is not None and t.current.status == AttemptStatus.REQUESTED
        ]
        assert self.m._unacked() == len(requested)
        assert self.m._unacked() <= self.m.unacked_window

    def step(self, dt: float) -> None:
        self.feed()
        before = len(self.dials)
        self.handle(self.m.tick(self.now))
        if self.paused_since is not None or self.cancelled_at is not None:
            assert len(self.dials) == before, "dialed while paused/cancelled"
        self.deliver()
        self.m.drain_changes()
        self.now += timedelta(seconds=dt)


def _check(w: World) -> None:
    finals = Counter(f.result.contact_id for f in w.finals)
    # Exactly one final result per contact.
    assert set(finals) == {c.contact_id for c in w.contacts}
    assert max(finals.values(), default=1) == 1
    by_id = {f.result.contact_id: f.result for f in w.finals}
    refs = [d.call_ref for d in w.dials]
    assert len(refs) == len(set(refs)), "a call_ref was dialed twice"
    per_contact: dict[str, list[DialRequest]] = defaultdict(list)
    for d in w.dials:
        per_contact[d.contact.contact_id].append(d)
        # Never a DNC or invalid number; never outside calling hours.
        assert d.contact.number not in w.dnc and d.contact.valid
        hours = w.spec.calling_hours
        if hours is not None:
            assert is_open(hours, zones_for(d.contact.number, d.contact.timezone), d.at)
        assert d.call_ref == make_call_ref("prop", "r1", d.contact.index, d.attempt)
    # Pacing: the campaign's share on average, with at most UNACKED_SECONDS of dials at once:
    # ``cps x T + burst`` in any T seconds (the dispatcher enforces the account's rolling second
    # on the wire).
    times = sorted(d.at for d in w.dials)
    burst = max(1.0, w.cps * UNACKED_SECONDS)
    for j, first in enumerate(times):
        for i in range(j, len(times)):
            span = (times[i] - first).total_seconds()
            assert i - j + 1 <= w.cps * span + burst + 1e-6, "CPS share exceeded"
    for cid, dials in per_contact.items():
        res = by_id[cid]
        assert res.attempts == len(dials)
        assert [d.attempt for d in dials] == list(range(1, len(dials) + 1))
        for prev, nxt in itertools.pairwise(dials):
            end, rclass = w.outcome_at[prev.call_ref]
            rule = w.spec.retry.rule(rclass)
            assert rule is not None, f"retried after a {rclass!r} outcome"
            # Retries come after their delay and not beyond max attempts.
            assert nxt.at >= end + timedelta(seconds=rule.delay)
            assert nxt.attempt <= rule.max_attempts
    for c in w.contacts:
        res = by_id[c.contact_id]
        if not c.valid:
            assert res.disposition == Disposition.INVALID_NUMBER and res.attempts == 0
        elif c.number in w.dnc:
            assert res.disposition == Disposition.DNC and res.attempts == 0


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 60),
    cap=st.integers(1, 8),
    hours=st.booleans(),
    cps=st.sampled_from([0.5, 1.0, 3.0, 10.0]),
    ops=st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from(["pause", "resume", "cancel"])), max_size=4
    ),
)
def test_campaign_promises_hold_under_any_ordering(
    seed: int, n: int, cap: int, hours: bool, cps: float, ops: list[tuple[int, str]]
) -> None:
    rnd = random.Random(seed)
    w = World(rnd, n, cap, hours, cps)
    w.m.start(w.now)
    plan = dict(ops)
    for i in range(20_000):
        op = plan.get(i)
        if op == "pause":
            w.m.pause(w.now)
            w.paused_since = w.paused_since or w.now
        elif op == "resume":
            w.m.resume(w.now)
            w.paused_since = None
        elif op == "cancel" and w.m.active:  # a finished campaign cannot be cancelled
            w.handle(w.m.cancel(w.now))
            w.cancelled_at = w.cancelled_at or w.now
        if not w.m.active:
            break
        dt = rnd.choice([0.05, 0.3, 1.0, 30.0, 600.0]) if i % 7 else 3600.0
        if (
            w.paused_since is not None
            and w.m.status == CampaignStatus.PAUSED
            and not w.m.in_flight
            and not w.pending
        ):
            # A paused campaign with nothing in flight stays paused forever: resume it.
            w.m.resume(w.now)
            w.paused_since = None
        w.step(dt)
    assert not w.m.active, f"campaign did not finish: {w.m.progress(w.now)}"
    _check(w)
    if w.cancelled_at is not None:
        assert w.m.status == CampaignStatus.CANCELLED
        assert all(d.at <= w.cancelled_at for d in w.dials)
    else:
        assert w.m.status == CampaignStatus.COMPLETED
    p = w.m.progress(w.now)
    assert p.finished == n and sum(p.dispositions.values()) == n and p.in_flight == 0


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(1, 300))
def test_restore_from_snapshot_mid_campaign_changes_nothing(seed: int, cut: int) -> None:
    """A machine rebuilt from its persisted records carries on exactly like the original."""
    rnd = random.Random(seed)
    w = World(rnd, 30, 4, True, 3.0)
    w.m.start(w.now)
    tracks: dict[str, dict[str, Any]] = {}
    for i in range(20_000):
        if i == cut:
            # Persist as the controller does (changed tracks, tombstones, meta) and rebuild.
            meta = w.m.meta_json()
            w.m = CampaignMachine.restore(
                w.spec,
                meta,
                [ContactTrack.from_json(t) for t in tracks.values()],
                cps_limit=w.cps,
                dnc=w.dnc,
            )
        if not w.m.active:
            break
        w.feed()
        w.handle(w.m.tick(w.now))
        w.deliver()
        changed, removed = w.m.drain_changes()
        for t in changed:
            tracks[t.contact.contact_id] = t.to_json()
        for cid in removed:
            tracks.pop(cid, None)
        w.now += timedelta(seconds=rnd.choice([0.3, 5.0, 120.0, 1800.0]))
    assert not w.m.active
    _check(w)
    assert tracks == {}


def test_persisted_state_stays_small_at_its_bounds() -> None:
    """Worst case: cap calls in flight, waiting_cap retries pending, a full read-ahead buffer."""
    import orjson

    from handlers.campaign import Attempt

    spec = parse_campaign_yaml(BASE)
    spec = spec.model_copy(
        update={"pacing": spec.pacing.model_copy(update={"max_concurrent": 150})}
    )
    m = CampaignMachine(spec, run="abcdef01", cps_limit=30.0)
    n = m.waiting_cap + 2 * m.max_concurrent
    tracks = []
    for i in range(n):
        c = Contact(
            index=i,
            contact_id=f"customer-{i:08d}",
            number=f"+4479111{i:05d}",
            name=f"Firstname Lastname {i}",
            variables={"date": "Tuesday 17 March", "plan": "gold", "amount": "12.50"},
        )
        t = ContactTrack(c)
        at = T0 + timedelta(seconds=i)
        for k in (1, 2):
            a = Attempt(make_call_ref("prop", "abcdef01", i, k), k, at)
            a.apply(
                DialResult(a.call_ref, "succeeded", at, uuid=f"{i:08d}-aaaa-bbbb-cccc-0123456789ab")
            )
            a.apply(LegOutcome(a.call_ref, "busy", at, detail="busy"))
            t.attempts.append(a)
        t.due_at, t.waiting = at, "retry"
        tracks.append(t.to_json())
    size = len(orjson.dumps({"meta": m.meta_json(), "tracks": tracks}))
    print(f"{n} tracks: {size:,} bytes")
    assert size < 1_000_000  # Kafka's default max message size
