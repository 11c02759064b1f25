"""Profile loading, validation messages, the shipped example, and the generated --help text."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandbox.simulator.profile import (
    OUTCOMES,
    Profile,
    ProfileError,
    describe_profile,
    load_profile,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sim-profile.yaml"


def test_defaults_are_valid() -> None:
    p = load_profile(None)
    assert p == Profile()
    assert sum(p.outcomes.weights()) > 0
    assert p.limits.too_early_seconds == 1.5


def test_spans_accept_numbers_and_pairs() -> None:
    p = load_profile({"timing": {"ring": 3, "talk": [1, 2.5]}})
    assert p.timing.ring == (3.0, 3.0)
    assert p.timing.talk == (1.0, 2.5)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"timing": {"ring": [5, 1]}}, "timing.ring"),
        ({"outcomes": {"human": -1}}, "outcomes.human"),
        ({"outcomes": dict.fromkeys(OUTCOMES, 0)}, "outcomes"),
        ({"faults": {"endpoints": {"create_cal": {}}}}, "faults.endpoints"),
        ({"overrides": [{"match": "(", "outcome": "busy"}]}, "overrides.0"),
        ({"events": {"duplicate": 2}}, "events.duplicate"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_errors_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ProfileError, match=key.replace(".", r"\.")):
        load_profile(data)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ProfileError, match="mapping"):
        load_profile(bad)


def test_example_profile_loads() -> None:
    p = load_profile(EXAMPLE)
    assert p.seed == 2024
    assert p.override_for("447700900001") is not None
    assert p.override_for("447700900001").outcome == "busy"  # type: ignore[union-attr]
    assert p.fault_for("create_call").drop_rate > 0  # type: ignore[union-attr]
    assert p.fault_for("get_call") == p.faults.endpoints["*"]
    assert p.agent_for("sip:agent-7@pbx.example.com") is p.agents[0]
    assert p.agent_for("447700900001") is None


def test_help_documents_every_key_with_its_default() -> None:
    text = "\n".join(describe_profile())

    def leaves(model: type, prefix: str = "") -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                out += leaves(ann, f"{prefix}{name}.")
            else:
                out.append(name)
        return out

    for leaf in leaves(Profile):
        assert f"{leaf}:" in text, leaf
    assert "human: 70" in text
    assert 'rate: "0.00450000"' in text
