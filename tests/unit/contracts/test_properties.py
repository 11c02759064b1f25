"""(d) Properties: the webhook classifier and the NCCO parser are total on JSON input, and every
NCCO the models accept round-trips through JSON unchanged."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.ncco import Ncco, NccoError, parse_ncco
from contracts.webhooks import Webhook, WebhookValidationError, classify_webhook

from ._strategies import json_values, ncco_like, webhook_like, webhook_mutants

KINDS = [None, "answer", "event", "input", "notify", "fallback", "recording"]
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _classify(body: Any, kind: str | None) -> None:
    try:
        hook = classify_webhook(body, kind)
    except WebhookValidationError as exc:
        assert str(exc)
        return
    assert isinstance(hook, Webhook)
    assert isinstance(hook.event_type, str) and hook.event_type
    assert hook.leg_uuid is None or (isinstance(hook.leg_uuid, str) and hook.leg_uuid)
    # whatever we accepted can be stored as JSON
    orjson.dumps(hook.model_dump(mode="json", by_alias=True))


@FAST
@given(body=json_values, kind=st.sampled_from(KINDS))
def test_classifier_total_on_arbitrary_json(body: Any, kind: str | None) -> None:
    _classify(body, kind)


@FAST
@given(body=webhook_like, kind=st.sampled_from(KINDS))
def test_classifier_total_on_webhook_like_json(body: dict[str, Any], kind: str | None) -> None:
    _classify(body, kind)


@FAST
@given(body=webhook_mutants(), kind=st.sampled_from([None, "event", "input", "recording"]))
def test_classifier_total_on_mutated_valid_webhooks(body: dict[str, Any], kind: str | None) -> None:
    _classify(body, kind)


@FAST
@given(data=json_values)
def test_parse_ncco_total_on_arbitrary_json(data: Any) -> None:
    try:
        assert isinstance(parse_ncco(data), Ncco)
    except NccoError as exc:
        assert str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ncco_like)
def test_accepted_ncco_round_trips_unchanged(data: list[dict[str, Any]]) -> None:
    try:
        ncco = parse_ncco(data)
    except NccoError as exc:
        assert str(exc).startswith(("action[", "ncco"))
        return
    out = ncco.to_list()
    assert out == data
    again = parse_ncco(orjson.loads(orjson.dumps(out)))
    assert again.to_list() == data


def test_round_trip_property_sees_both_outcomes() -> None:
    """Guard against a strategy that only ever produces rejected NCCOs (a vacuous property)."""
    accepted = rejected = 0
    for example in _samples(300):
        try:
            parse_ncco(example)
            accepted += 1
        except NccoError:
            rejected += 1
    assert accepted > 20 and rejected > 20, (accepted, rejected)


def _samples(n: int) -> list[Any]:
    out: list[Any] = []

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(ncco_like)
    def collect(x: Any) -> None:
        out.append(x)

    collect()
    return out


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
