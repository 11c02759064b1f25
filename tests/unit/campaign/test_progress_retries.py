"""``status`` shows when the next retry is due and how many wait, per disposition (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.campaign import Contact, parse_campaign_yaml
from handlers.campaign import CampaignMachine, DialRequest, DialResult, LegOutcome

SPEC = """\
name: retries
contacts: {jsonl: x}
from: {numbers: ["14155550000"]}
flow: {ncco: [{action: talk, text: "hi"}]}
calling_hours: null
retry:
  busy: {delay: 10m, max_attempts: 3}
  unanswered: {delay: 30m, max_attempts: 3}
"""
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_progress_counts_retries_per_disposition_and_the_next_due_time() -> None:
    m = CampaignMachine(parse_campaign_yaml(SPEC), run="r1", cps_limit=100.0)
    contacts = [Contact(index=i, contact_id=f"c{i}", number=f"+1415555010{i}") for i in range(3)]
    m.start(T0)
    m.add_contacts(contacts, eof=True, now=T0)
    dials = [o for o in m.tick(T0, wall=0.0) if isinstance(o, DialRequest)]
    assert len(dials) == 3
    fates = ["unanswered", "busy", "unanswered"]
    at = T0 + timedelta(seconds=30)
    for dial, fate in zip(dials, fates, strict=True):
        m.on_event(DialResult(dial.call_ref, "succeeded", at, f"uuid-{dial.attempt}"), at)
        m.on_event(LegOutcome(dial.call_ref, fate, at, f"uuid-{dial.attempt}"), at)
    p = m.progress(at, wall=30.0)
    assert p.retries_pending == 3
    assert p.retries_pending_by_disposition == {"unanswered": 2, "busy": 1}
    assert p.next_retry_at == at + timedelta(minutes=10)  # the busy one comes first


def test_no_retry_waiting_shows_none() -> None:
    m = CampaignMachine(parse_campaign_yaml(SPEC), run="r1", cps_limit=100.0)
    m.start(T0)
    p = m.progress(T0, wall=0.0)
    assert (p.retries_pending, p.retries_pending_by_disposition, p.next_retry_at) == (0, {}, None)
