"""The collector turns a ledger and raw topic records into the history the checks expect."""

from __future__ import annotations

from typing import Any

import orjson

from orchestrator.sandbox.checker.checks import check
from orchestrator.sandbox.checker.collect import Record, derived_results, history_from


def _hook(status: str, ok: bool = True) -> dict[str, Any]:
    return {
        "kind": "event",
        "status": status,
        "url": "http://x/webhooks/event/r1",
        "http_status": 200 if ok else None,
        "ok": ok,
    }


def _ledger() -> dict[str, Any]:
    hook = _hook
    return {
        "requests": [
            {"t": 1.0, "op": "create_call", "status": 201, "limit": "cps"},
            {"t": 1.1, "op": "create_call", "status": 429, "limit": "cps"},
            {"t": 1.2, "op": "get_call", "status": 200, "limit": "rps"},
            {"t": 1.3, "op": "create_call", "status": 401, "limit": None},
        ],
        "calls": [
            {
                "uuid": "u1",
                "call_ref": "r1",
                "to": "447700900001",
                "t": 1.0,
                "ended_t": None,
                "times": {"created": "2026-01-01T00:00:00Z", "ended": "2026-01-01T00:00:30Z"},
                "webhooks": [hook("started"), hook("completed"), hook("completed", ok=False)],
            }
        ],
    }


def _rec(offset: int, doc: dict[str, Any] | None, key: bytes = b"r1") -> Record:
    return Record(0, offset, key, orjson.dumps(doc) if doc is not None else None)


def test_history_from_ledger_and_topics() -> None:
    events = [
        _rec(0, {"type": "vonage.webhook", "flow_key": "r1", "event_type": "started",
                 "payload": {"uuid": "u1"}}),
        _rec(1, {"type": "vonage.webhook", "flow_key": "r1", "event_type": "completed",
                 "payload": {"uuid": "u1"}}),
    ]  # fmt: skip
    outcome = {"id": "o1", "scope": "leg", "flow_key": "r1", "call_ref": "r1", "uuid": "u1"}
    state = [
        _rec(0, {"offset": 0, "state": {"legs": {"u1": {"st": {"started": 1}, "amd": {}}}}}),
        _rec(1, None),  # evicted: the next generation starts afresh
        _rec(2, {"offset": 5, "state": {"legs": {"u1": {"st": {"ringing": 1}, "amd": {}}}}}),
    ]
    h = history_from(
        _ledger(),
        {"voice.events": events, "voice.outcomes": [_rec(0, outcome)] * 2, "voice.state": state},
        contacts=["r1"],
        time_scale=10.0,
    )
    assert [(d.call_ref, d.ended_at) for d in h.dials] == [("r1", 4.0)]
    assert [(d.flow_key, d.event_type, d.http_status) for d in h.deliveries] == [
        ("r1", "started", 200),
        ("r1", "completed", 200),
        ("r1", "completed", 0),
    ]
    # Only requests that took a limiter slot and were not refused count against the windows.
    assert sum(1 for r in h.requests if r.status != 429) == 2
    assert h.results == [{"contact_id": "r1", "id": "o1"}]
    assert [fk for fk, _ in h.leg_status_snapshots] == ["r1#0", "r1#1"]
    report = check(h, cps=1, rps=1, cap=1)
    assert report.ok, report.render()


def test_derived_results_prefer_outcomes_and_fall_back_to_failed_creates() -> None:
    failed = {"type": "dispatcher.result", "kind": "create_call", "status": "failed"}
    events = [{**failed, "id": "x1", "call_ref": "a"}, {**failed, "id": "x2", "call_ref": "b"}]
    outcomes = [{"id": "o-a", "scope": "leg", "call_ref": "a"}]
    got = derived_results(events, outcomes, ["a", "b", "c"])
    assert sorted((r["contact_id"], r["id"]) for r in got) == [("a", "o-a"), ("b", "x2")]
