"""Agent endpoints in the profile and their seeded draws (one leg RNG per destination and dial)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from orchestrator.sandbox.simulator import agents
from orchestrator.sandbox.simulator.calls import Call
from orchestrator.sandbox.simulator.engine import SimEngine
from orchestrator.sandbox.simulator.profile import (
    OUTCOMES,
    Agent,
    ProfileError,
    describe_profile,
    load_profile,
)

SIP_AGENT = {"match": r"^sip:agent-\d+@", "answer": 2, "handle": [40, 60]}


def test_agents_parse_with_defaults_and_first_match_wins() -> None:
    p = load_profile(
        {
            "agents": [
                SIP_AGENT,
                {"match": "^447700900", "busy": 0.1, "unreachable": 0.05, "handle_mean": 45},
            ]
        }
    )
    sip, phone = p.agents
    assert sip.answer == (2.0, 2.0) and sip.handle == (40.0, 60.0)
    assert sip.handle_mean is None and sip.busy == 0 and sip.websocket_handle is False
    assert phone.answer == (1.0, 3.0) and phone.handle == (30.0, 90.0)
    assert phone.handle_mean == 45 and phone.unreachable == 0.05
    assert p.agent_for("sip:agent-7@pbx.example.com") is sip
    assert p.agent_for("447700900123") is phone
    assert p.agent_for("447911123456") is None
    assert load_profile(None).agent_for("447700900123") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"match": "("}, "invalid regex"),
        ({"match": "x", "busy": 0.5, "unreachable": 0.3, "unanswered": 0.3}, "<= 1"),
        ({"match": "x", "busy": 1.5}, "agents.0.busy"),
        ({"match": "x", "handle": [9, 1]}, "agents.0.handle"),
        ({"match": "x", "handle_mean": 0}, "agents.0.handle_mean"),
        ({"match": "x", "talk": 3}, "agents.0.talk"),
        ({"busy": 0.1}, "agents.0.match"),
    ],
)
def test_bad_agent_entries_name_the_key(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace(".", r"\.")):
        load_profile({"agents": [entry]})


def test_help_lists_an_agent_entrys_keys() -> None:
    text = "\n".join(describe_profile())
    for key in Agent.model_fields:
        assert f"{key}:" in text.split("agents:", 1)[1], key
    assert "  - match: (required)" in text
    assert "handle: [30, 90]" in text


class _Fixed(random.Random):
    """An RNG whose random() returns the given values in turn (to probe the thresholds)."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self._values = list(values)

    def random(self) -> float:
        return self._values.pop(0)


@pytest.mark.parametrize(
    ("u", "outcome"),
    [
        (0.0, "busy"),
        (0.19, "busy"),
        (0.21, "failed"),
        (0.29, "failed"),
        (0.31, "unanswered"),
        (0.59, "unanswered"),
        (0.61, "human"),
        (0.999, "human"),
    ],
)
def test_agent_outcome_thresholds(u: float, outcome: str) -> None:
    agent = Agent(match="x", busy=0.2, unreachable=0.1, unanswered=0.3)
    assert agents.draw_outcome(_Fixed(u), agent) == outcome


def test_handle_time_uniform_or_exponential() -> None:
    uniform = Agent(match="x", handle=[10, 20])
    draws = [agents.handle_time(random.Random(i), uniform) for i in range(200)]
    assert all(10 <= d <= 20 for d in draws)
    exp = Agent(match="x", handle=[10, 20], handle_mean=50)
    draws = [agents.handle_time(random.Random(i), exp) for i in range(4000)]
    assert 45 < sum(draws) / len(draws) < 55
    assert max(draws) > 100  # the long tail a uniform span cannot give


def _legs(seed: int, destinations: list[str], profile: dict[str, Any]) -> list[Call]:
    engine = SimEngine(profile=load_profile(profile), seed=seed)
    return [
        engine.new_leg(
            app_id="app",
            to={"type": "phone", "number": d},
            from_={"type": "phone", "number": "447700900000"},
            event_url=None,
            event_method="POST",
        )
        for d in destinations
    ]


MIXED: dict[str, Any] = {
    "agents": [{"match": "^4477009005", "busy": 0.3, "unreachable": 0.2, "unanswered": 0.2}]
}


def _draws(calls: list[Call]) -> list[tuple[str, str, float, float]]:
    # The outcome, then the ring and handle drawn next from the same leg RNG.
    out = []
    for c in calls:
        assert c.agent is not None
        out.append(
            (
                c.to_str,
                c.outcome,
                agents.answer_delay(c.rng, c.agent),
                agents.handle_time(c.rng, c.agent),
            )
        )
    return out


def test_agent_draws_are_seeded_per_destination_and_dial() -> None:
    dests = ["447700900501", "447700900502"] * 20
    first = _draws(_legs(11, dests, MIXED))
    assert first == _draws(_legs(11, dests, MIXED))
    # The draw depends on (seed, destination, n-th dial), not on what else was dialled between.
    only_501 = _draws(_legs(11, ["447700900501"] * 20, MIXED))
    assert [d for d in first if d[0] == "447700900501"] == only_501
    assert first != _draws(_legs(12, dests, MIXED))
    assert {d[1] for d in first} == {"human", "busy", "failed", "unanswered"}


def test_agent_draws_replace_callee_outcomes_and_overrides() -> None:
    machine_only = dict.fromkeys(OUTCOMES, 0.0) | {"machine": 1.0, "rejected": 1.0}
    prof = {
        **MIXED,
        "outcomes": machine_only,
        "overrides": [{"match": "^447700900", "outcome": "machine"}],
    }
    legs = _legs(3, [f"4477009005{i:02d}" for i in range(60)], prof)
    assert {c.outcome for c in legs} <= {"human", "busy", "failed", "unanswered"}
    assert all(c.agent is not None and c.override is None for c in legs)
    assert all(c.to_ledger()["agent"] is True for c in legs)
    callee = _legs(3, ["447700900100"], prof)[0]
    assert callee.agent is None and callee.outcome == "machine"
    assert callee.to_ledger()["agent"] is False and callee.to_ledger()["amd_result"] is None
