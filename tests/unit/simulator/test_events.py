"""Event payloads match the product's webhook contracts; money is a string with 8 decimals."""

from __future__ import annotations

import random

import pytest

from contracts.webhooks import classify_webhook
from orchestrator.sandbox.simulator.calls import Call, call_ref_of
from orchestrator.sandbox.simulator.engine import SimEngine
from orchestrator.sandbox.simulator.events import (
    amd_payload,
    completed_payload,
    error_payload,
    price_of,
    status_payload,
)
from orchestrator.sandbox.simulator.profile import Profile


def test_price() -> None:
    assert price_of("0.00450000", 0) == "0.00000000"
    assert price_of("0.00450000", 60) == "0.00450000"
    assert price_of("0.10000000", 2) == "0.00333333"


@pytest.mark.parametrize(
    ("url", "ref"),
    [
        ("https://x.example/webhooks/event/abc-123", "abc-123"),
        ("https://x.example/webhooks/event/abc?x=1", "abc"),
        ("https://x.example/events", None),
        (None, None),
    ],
)
def test_call_ref(url: str | None, ref: str | None) -> None:
    assert call_ref_of(url) == ref


def _call() -> Call:
    return Call(
        uuid="aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        conversation_uuid="CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        app_id="app",
        to={"type": "phone", "number": "447700900000"},
        from_={"type": "phone", "number": "442079460000"},
        event_url="https://x.example/webhooks/event/r1",
        event_method="POST",
        outcome="human",
        rng=random.Random(1),
        created_mono=0.0,
        created_wall=0.0,
        created_sim=1_700_000_000.0,
    )


async def test_payloads_validate_with_contracts() -> None:
    engine = SimEngine(profile=Profile())
    call = _call()
    for status in ("started", "ringing", "busy", "cancelled", "rejected", "failed", "timeout"):
        assert classify_webhook(status_payload(engine, call, status), "event").event_type == status
    ans = status_payload(engine, call, "answered", start_time=None, rate=None, network=None)
    assert classify_webhook(ans, "event").event_type == "answered"
    assert (
        classify_webhook(amd_payload(engine, call, "machine", "beep_start"), "event").event_type
        == "machine"
    )
    assert classify_webhook(error_payload(engine, call, "boom"), "event").event_type == "error"
    call.answered_sim, call.end_sim, call.duration = 1_700_000_010.0, 1_700_000_070.0, 60
    call.rate, call.price = "0.00450000", price_of("0.00450000", 60)
    done = completed_payload(engine, call)
    model = classify_webhook(done, "event")
    assert model.event_type == "completed"
    assert done["duration"] == "60" and done["price"] == "0.00450000"
    assert done["start_time"].endswith("Z") and "." in done["start_time"]
    await engine.close()
