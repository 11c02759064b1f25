"""Event payloads exactly as Vonage shapes them (DIGEST §4.2), and the one emit helper.

Shapes follow the real examples: status events carry ``uuid``; AMD events carry ``call_uuid`` and
no ``direction``; ``answered`` has ``start_time``/``rate``/``network`` present but null;
``completed`` has money and duration as strings; ``error`` has only ``reason``,
``conversation_uuid`` and ``timestamp``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from orchestrator.sandbox.simulator.clock import iso

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.applications import SimApplication
    from orchestrator.sandbox.simulator.calls import Call
    from orchestrator.sandbox.simulator.engine import SimEngine

__all__ = [
    "NCCO_SYNTAX_ERROR",
    "amd_payload",
    "completed_payload",
    "emit",
    "error_payload",
    "price_of",
    "status_payload",
]

NCCO_SYNTAX_ERROR = "Syntax error in NCCO. Invalid value type or action."
_EIGHT = Decimal("0.00000001")


def status_payload(engine: SimEngine, call: Call, status: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": call.from_str,
        "to": call.to_str,
        "uuid": call.uuid,
        "conversation_uuid": call.conversation_uuid,
        "status": status,
        "direction": call.direction,
        "timestamp": iso(engine.clock.sim()),
    }
    body.update(extra)
    return body


def amd_payload(
    engine: SimEngine, call: Call, status: str, sub_state: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "call_uuid": call.uuid,
        "from": call.from_str,
        "to": call.to_str,
        "status": status,
        "conversation_uuid": call.conversation_uuid,
        "timestamp": iso(engine.clock.sim()),
    }
    if sub_state:
        body["sub_state"] = sub_state
    return body


def error_payload(engine: SimEngine, call: Call, reason: str) -> dict[str, Any]:
    return {
        "reason": reason,
        "conversation_uuid": call.conversation_uuid,
        "timestamp": iso(engine.clock.sim()),
    }


def price_of(rate: str, seconds: int) -> str:
    price = Decimal(rate) * Decimal(seconds) / Decimal(60)
    return f"{price.quantize(_EIGHT, rounding=ROUND_HALF_UP):f}"


def completed_payload(engine: SimEngine, call: Call) -> dict[str, Any]:
    end = call.end_sim or engine.clock.sim()
    start = call.answered_sim or end
    return status_payload(
        engine,
        call,
        "completed",
        start_time=iso(start),
        end_time=iso(end),
        duration=str(call.duration or 0),
        rate=call.rate or "0.00000000",
        price=call.price or "0.00000000",
        network=call.network or engine.profile.pricing.network,
        disconnected_by=call.disconnected_by or "platform",
    )


async def emit(
    engine: SimEngine,
    call: Call,
    app: SimApplication | None,
    payload: dict[str, Any],
    label: str,
    *,
    url: str | None = None,
    method: str | None = None,
    kind: str = "event",
) -> None:
    """Send one event to the leg's event URL (or ``url``); maybe deliver it twice, as Vonage may."""
    target = url or call.event_url
    if not target:
        return
    m = method or (call.event_method if url is None else "POST")
    await engine.poster.notify(call, app, payload, target, m, kind=kind, label=label)
    if engine.profile.events.duplicate and call.rng.random() < engine.profile.events.duplicate:
        await engine.poster.notify(
            call, app, payload, target, m, kind=kind, label=label, duplicate=True
        )
