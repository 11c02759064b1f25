"""The checker finds each anomaly it claims to find, and stays quiet on a clean history."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.sandbox.checker.checks import (
    ApiRequest,
    Delivery,
    Dial,
    History,
    check,
    concurrency,
    rate_windows,
)


def _clean() -> History:
    ev = lambda fk, leg, t: {  # noqa: E731
        "type": "vonage.webhook",
        "flow_key": fk,
        "event_type": t,
        "payload": {"uuid": leg},
    }
    return History(
        dials=[
            Dial("r1", "u1", "447700900001", 0.0, 5.0),
            Dial("r2", "u2", "447700900002", 0.5, 3.0),
        ],
        requests=[
            ApiRequest(0.0, True, 201),
            ApiRequest(0.5, True, 201),
            ApiRequest(0.6, False, 204),
        ],
        deliveries=[Delivery("r1", "u1", "completed", 200), Delivery("r2", "u2", "completed", 200)],
        events=[
            ev("r1", "u1", "started"),
            ev("r1", "u1", "completed"),
            ev("r2", "u2", "completed"),
        ],
        outcomes=[
            {"id": "o1", "scope": "leg", "flow_key": "r1", "uuid": "u1", "disposition": "answered"},
            {"id": "o2", "scope": "leg", "flow_key": "r2", "uuid": "u2", "disposition": "busy"},
            {"id": "o2", "scope": "leg", "flow_key": "r2", "uuid": "u2", "disposition": "busy"},
        ],
        results=[{"contact_id": "c1"}, {"contact_id": "c2"}],
        contacts=["c1", "c2"],
        leg_status_snapshots=[("r1", {"u1": "started"}), ("r1", {"u1": "completed"})],
    )


def test_clean_history_passes() -> None:
    report = check(_clean(), cps=3, rps=15, cap=2)
    assert report.ok, report.render()
    assert "calls dialed: 2" in report.render()


def test_each_anomaly_is_flagged() -> None:
    h = _clean()
    h.dials.append(Dial("r1", "u9", "447700900001", 1.0, 2.0))  # duplicate dial + concurrency 3
    h.deliveries.append(Delivery("r3", "u3", "answered", 200))  # acked, never stored
    h.events.append(
        {
            "type": "vonage.webhook",
            "flow_key": "r4",
            "event_type": "completed",
            "payload": {"uuid": "u4"},
        }
    )
    h.outcomes.append(
        {"id": "o3", "scope": "leg", "flow_key": "r1", "uuid": "u1", "disposition": "busy"}
    )
    h.results.append({"contact_id": "c1"})
    h.contacts.append("c3")
    h.leg_status_snapshots.append(("r1", {"u1": "ringing"}))
    h.requests += [ApiRequest(0.7 + i * 0.01, True, 201) for i in range(3)]
    kinds = {a.kind for a in check(h, cps=3, rps=15, cap=2).anomalies}
    assert kinds == {
        "duplicate-dial",
        "concurrency",
        "lost-event",
        "unapplied-event",
        "duplicate-outcome",
        "duplicate-result",
        "missing-result",
        "out-of-order",
        "rate-window",
    }


@given(st.lists(st.floats(0, 20, allow_nan=False), max_size=60), st.integers(1, 5))
def test_rate_window_matches_brute_force(times: list[float], limit: int) -> None:
    reqs = [ApiRequest(t, True, 201) for t in times]
    worst = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
    flagged = bool(rate_windows(reqs, cps=limit, rps=100))
    assert flagged == (worst > limit)


def test_rejected_requests_do_not_count() -> None:
    reqs = [ApiRequest(0.1 * i, True, 429) for i in range(10)] + [ApiRequest(0.0, True, 201)]
    assert rate_windows(reqs, cps=1, rps=1) == []


def test_concurrency_back_to_back_calls_do_not_overlap() -> None:
    dials = [Dial(f"r{i}", f"u{i}", "1", float(i), float(i + 1)) for i in range(5)]
    assert concurrency(dials, cap=1) == []
