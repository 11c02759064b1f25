"""Properties of the voice machines, proved with hypothesis over realistic event sets.

A realistic event set is one call flow from ``orchestrator.sandbox.synthetic`` (every outcome kind:
answered by a human or a machine, busy, unanswered, timeout, failed, cancelled, rejected, failed
and unknown create-call results, a ``connect``-ed second leg, a transfer into a named conversation,
an inbound call). Hypothesis permutes it and adds duplicates.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from contracts.envelopes import CommandEnvelope, Outcome, VoiceEvent
from handlers import voice
from orchestrator.sandbox.synthetic import KINDS, Scenario, make_scenario

_VOICE_EVENT = TypeAdapter(VoiceEvent)


def run(
    envs: list[dict[str, Any]], settle_every: set[int] | None = None
) -> tuple[Any, list[voice.Emit]]:
    """Fold ``transition`` over ``envs`` (settling after the indices in ``settle_every``), settle."""
    flow = None
    emits: list[voice.Emit] = []
    for i, env in enumerate(envs):
        flow, out = voice.transition(flow, env)
        emits += out
        if settle_every and i in settle_every:
            res = voice.settle(flow, 1.0)
            flow = res.flow
            emits += res.emits
    assert flow is not None
    res = voice.settle(flow, 1.0)
    return res.flow, emits + res.emits


def _by_id(emits: list[voice.Emit], topic: str) -> dict[str, dict[str, Any]]:
    return {e.value["id"]: e.value for e in emits if e.topic == topic}


def _commands(emits: list[voice.Emit]) -> dict[str, dict[str, Any]]:
    return {
        i: {k: v for k, v in value.items() if k != "occurred_at"}
        for i, value in _by_id(emits, voice.COMMANDS_TOPIC).items()
    }


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_scenario(random.Random(seed), f"call-{seed}", kind)


@st.composite
def shuffled_with_duplicates(draw: st.DrawFn, envs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = draw(st.permutations(envs))
    extra = draw(st.lists(st.sampled_from(envs), max_size=len(envs)))
    out = list(order)
    for env in extra:
        out.insert(draw(st.integers(0, len(out))), env)
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_kind_reports_exactly_what_it_should(kind: str, seed: int) -> None:
    sc = make_scenario(random.Random(seed), f"call-{seed}", kind)
    for env in sc.envelopes:
        _VOICE_EVENT.validate_python(env)  # the fixtures are real contract envelopes
    flow, emits = run(sc.envelopes)
    outcomes = {
        e.value["id"]: e.value["disposition"] for e in emits if e.topic == voice.OUTCOMES_TOPIC
    }
    commands = {e.value["id"] for e in emits if e.topic == voice.COMMANDS_TOPIC}
    assert outcomes == sc.outcomes
    assert commands == sc.commands
    for e in emits:
        model = Outcome if e.topic == voice.OUTCOMES_TOPIC else CommandEnvelope
        parsed = model.model_validate(e.value)
        assert parsed.flow_key == e.key == sc.flow_key
    assert voice.settle(flow, 1.0).finished


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), sc=scenarios())
def test_any_order_any_duplicates_same_state_same_outcomes(
    data: st.DataObject, sc: Scenario
) -> None:
    """Every permutation with duplicates converges to the same flow and the same records."""
    expected_flow, expected_emits = run(sc.envelopes)
    envs = data.draw(shuffled_with_duplicates(sc.envelopes))
    flow, emits = run(envs)
    assert flow == expected_flow
    # Same outcome records, content included (the settle runs after the events, as the settle
    # window ensures). A command is sent the moment it is warranted, so its ``occurred_at`` is the
    # triggering event's time; everything else about it is the same in every order.
    assert _by_id(emits, voice.OUTCOMES_TOPIC) == _by_id(expected_emits, voice.OUTCOMES_TOPIC)
    assert _commands(emits) == _commands(expected_emits)
    counts = Counter(e.value["id"] for e in emits)
    assert all(n == 1 for n in counts.values()), counts
    assert {i for i in counts if i.startswith("out-")} == set(sc.outcomes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), sc=scenarios())
def test_settling_at_any_time_reports_each_outcome_exactly_once(
    data: st.DataObject, sc: Scenario
) -> None:
    """Timers may fire between any two events: still one record per outcome id, none missing."""
    envs = data.draw(shuffled_with_duplicates(sc.envelopes))
    settle_at = set(data.draw(st.lists(st.integers(0, len(envs) - 1), max_size=len(envs))))
    flow, emits = run(envs, settle_at)
    counts = Counter(e.value["id"] for e in emits)
    assert all(n == 1 for n in counts.values()), counts
    assert {i for i in counts if i.startswith("out-")} == set(sc.outcomes)
    assert {i for i in counts if i.startswith("cmd-")} == sc.commands
    again = voice.settle(flow, 10**9)
    assert again.emits == [] and again.finished


def test_pydantic_envelopes_are_accepted_too() -> None:
    sc = make_scenario(random.Random(7), "call-7", "connect")
    models = [_VOICE_EVENT.validate_python(env) for env in sc.envelopes]
    _, from_models = run(models)  # type: ignore[arg-type]
    _, from_dicts = run(sc.envelopes)
    assert from_models == from_dicts
