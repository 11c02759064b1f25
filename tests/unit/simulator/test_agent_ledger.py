"""The ledger's agent figures: occupancy over the whole span and while contacts were left."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.sandbox.agent_ledger import ledger_figures


def at(s: float) -> str:
    return f"2026-12-07T10:{int(s) // 60:02d}:{s % 60:06.3f}+00:00"


def callee(ref: str, created: float, answered: float | None, amd: str | None) -> dict[str, Any]:
    return {"call_ref": ref, "agent": False, "to": "4479", "amd_result": amd, "outcome": amd,
            "times": {"created": at(created), "answered": at(answered) if answered else None,
                      "ended": at(answered + 1) if answered else at(created + 5)}}  # fmt: skip


def test_occupancy_while_contacts_were_left_leaves_out_the_lists_tail() -> None:
    # One agent; dials at 0, 100 and 200 s; the second call is talked from 110 to 300 s: the
    # tail after the last dial (200 s) counts in the whole span, not while contacts were left.
    agent = {"call_ref": "c.1.1.a1", "agent": True, "to": "4477",
             "times": {"created": at(105), "answered": at(110), "ended": at(300)}}  # fmt: skip
    ledger = {
        "calls": [
            callee("c.0.1", 0, None, None),
            callee("c.1.1", 100, 108, "human"),
            callee("c.2.1", 200, None, None),
            agent,
        ],
        "conversations": [
            {
                "legs": [
                    {
                        "call_ref": "c.1.1",
                        "agent": False,
                        "amd_result": "human",
                        "joined": at(108),
                        "left": at(300),
                    },
                    {"call_ref": "c.1.1.a1", "agent": True, "joined": at(110), "left": at(300)},
                ]
            }
        ],
    }
    f = ledger_figures(ledger, "c", agents=1)
    assert f.bridged == 1 and f.talk_s == pytest.approx(190)
    assert f.span_s == pytest.approx(300) and f.occupancy == pytest.approx(190 / 300)
    assert f.dialing_s == pytest.approx(200) and f.talk_dialing_s == pytest.approx(90)
    assert f.occupancy_dialing == pytest.approx(90 / 200)
