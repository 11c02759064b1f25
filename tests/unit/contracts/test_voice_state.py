"""The voice state's versions: a changelog written by a version-1 worker restores unchanged.

``tests/fixtures/voice_state_v1.json`` holds call flows (synthetic events of several kinds) and the
states the version-1 machine built from them (short keys: ``st``, ``att``, ``pol``...), before and
after settling. Upgraded, each must equal what the current machine builds from the same events,
and the machine must carry on from it exactly as from its own state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.voice_state import VOICE_STATE_VERSION, upgrade_voice_state
from handlers import voice
from orchestrator.worker.voice_app import VoiceApp

CASES: list[dict[str, Any]] = orjson.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "voice_state_v1.json").read_bytes()
)


def _fold(events: list[dict[str, Any]]) -> Any:
    flow = None
    for event in events:
        flow, _ = voice.transition(flow, event)
    return flow


@pytest.mark.parametrize("case", CASES, ids=[c["kind"] for c in CASES])
def test_version_1_states_upgrade_to_what_the_machine_builds(case: dict[str, Any]) -> None:
    flow = _fold(case["events"])
    before = upgrade_voice_state(case["v1_before_settle"])
    assert before == flow
    assert before["version"] == VOICE_STATE_VERSION
    settled = voice.settle(flow, 1.0)
    assert upgrade_voice_state(case["v1_settled"]) == settled.flow
    # The machine carries on from an upgraded state as from its own.
    assert voice.settle(before, 1.0) == settled


@pytest.mark.parametrize("case", CASES[:2], ids=[c["kind"] for c in CASES[:2]])
def test_the_worker_restores_version_1_and_current_states(case: dict[str, Any]) -> None:
    app = VoiceApp()
    flow = _fold(case["events"])
    assert app.load_state(case["v1_before_settle"]) == flow
    assert app.load_state(orjson.loads(orjson.dumps(app.dump_state(flow)))) == flow


def test_current_states_pass_through_unchanged() -> None:
    flow = _fold(CASES[0]["events"])
    assert upgrade_voice_state(flow) is flow


def test_partial_version_1_records_upgrade_what_they_hold() -> None:
    raw = {"legs": {"u1": {"st": {"started": "t"}, "amd": {}, "out": 1}}}
    leg = upgrade_voice_state(raw)["legs"]["u1"]
    assert leg == {"statuses": {"started": "t"}, "amd": {}, "reported": True}
