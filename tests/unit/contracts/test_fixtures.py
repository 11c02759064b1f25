"""(c) Our own hand-written fixtures cover every Vonage model, so the suite does not depend on the
shared reference tree being present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts._base import ApiModel
from contracts.ncco import Ncco
from contracts.voice_api import UpdateCallRequest

from ._parse import parse_as, vonage_models, wire

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vonage"
CASES = sorted((p.parent.name, p.stem) for p in FIXTURES.glob("*/*.json"))


def _load(model: str, variant: str) -> object:
    return json.loads((FIXTURES / model / f"{variant}.json").read_text())


def test_every_vonage_model_has_a_fixture() -> None:
    have = {m for m, _ in CASES}
    missing = sorted(set(vonage_models()) - have)
    assert not missing, f"models without a fixture in {FIXTURES}: {missing}"
    unknown = sorted(have - set(vonage_models()))
    assert not unknown, f"fixture folders naming no model: {unknown}"


@pytest.mark.parametrize(("model", "variant"), CASES, ids=[f"{m}/{v}" for m, v in CASES])
def test_fixture_parses(model: str, variant: str) -> None:
    body = _load(model, variant)
    parsed = parse_as(model, body)
    out = wire(parsed)
    if isinstance(parsed, Ncco | ApiModel | UpdateCallRequest):
        # What we send must come back exactly as written (the fixtures use canonical types).
        assert out == body
    else:
        # Tolerant models keep every member Vonage sent (values may be normalised).
        assert isinstance(out, dict) and isinstance(body, dict)
        assert set(body) <= set(out), sorted(set(body) - set(out))
