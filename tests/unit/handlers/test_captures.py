"""A flow's answers reach the leg's outcome (whatever order the webhooks came in) and the results."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts.campaign import ContactResult, Disposition
from contracts.envelopes import Outcome
from handlers import voice
from orchestrator.campaign.operations import results_csv

REF = "spring.r.0.1"
LEG = "11111111-1111-1111-1111-111111111111"


def _event(i: int, event_type: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": f"evt-{i}",
        "type": "vonage.webhook",
        "flow_key": REF,
        "call_ref": REF,
        "webhook": "input" if event_type == "input" else "event",
        "event_type": event_type,
        "occurred_at": payload["timestamp"],
        "received_at": payload["timestamp"],
        "payload": {"uuid": LEG, "conversation_uuid": "CON-1", **payload},
        **extra,
    }


def _ts(s: int) -> str:
    return f"2026-03-03T17:00:{s:02d}.000Z"


EVENTS = [
    _event(1, "started", {"status": "started", "timestamp": _ts(1)}),
    _event(2, "answered", {"status": "answered", "timestamp": _ts(2)}),
    # a timeout, re-prompted, then "1" chose the branch to "confirmed"
    _event(
        3,
        "input",
        {"dtmf": {"digits": "", "timed_out": True}, "timestamp": _ts(5)},
        flow={"flow": "confirm", "step": "menu", "capture": "answer"},
    ),
    _event(
        4,
        "input",
        {"dtmf": {"digits": "1", "timed_out": False}, "timestamp": _ts(9)},
        flow={"flow": "confirm", "step": "menu", "capture": "answer", "goto": "confirmed"},
    ),
    _event(5, "input", {"speech": {"results": [{"text": "next week"}]}, "timestamp": _ts(12)}),
    _event(6, "completed", {"status": "completed", "duration": "15", "timestamp": _ts(16)}),
]


def _outcome(order: list[int]) -> dict[str, Any]:
    state = None
    for i in order:
        state, _ = voice.transition(state, EVENTS[i])
    assert state is not None
    settled = voice.settle(state, idle_s=60.0)
    outs = [e.value for e in settled.emits if e.value.get("scope") == "leg"]
    assert len(outs) == 1
    Outcome.model_validate(outs[0])
    return outs[0]


@given(st.permutations(range(len(EVENTS))), st.lists(st.integers(0, len(EVENTS) - 1), max_size=3))
def test_captures_do_not_depend_on_webhook_order_or_duplicates(
    order: list[int], dups: list[int]
) -> None:
    assert _outcome([*order, *dups])["captures"] == {
        "answer": "1",
        "answer.branch": "confirmed",
        "input": "next week",
    }


def test_results_csv_carries_contact_columns_and_captures_neutralised() -> None:
    def result(cid: str, columns: dict[str, str], captures: dict[str, str]) -> ContactResult:
        return ContactResult(
            id=ContactResult.make_id("c", cid),
            campaign="c",
            contact_id=cid,
            index=int(cid),
            number="+14155550100",
            name="Ann",
            disposition=Disposition.ANSWERED,
            attempts=1,
            finished_at=datetime(2026, 1, 1, tzinfo=UTC),
            columns=columns,
            captures=captures,
        )

    rows = list(
        csv.DictReader(
            io.StringIO(
                "".join(
                    results_csv(
                        [
                            result("0", {"date": "Friday", "index": "x"}, {"input": "1"}),
                            result("1", {"date": "=1+2"}, {}),
                        ]
                    )
                )
            )
        )
    )
    assert rows[0]["date"] == "Friday" and rows[0]["capture.input"] == "1"
    assert rows[0]["contact.index"] == "x" and rows[0]["index"] == "0"  # ours keeps its name
    assert rows[1]["date"] == "'=1+2" and rows[1]["capture.input"] == ""
