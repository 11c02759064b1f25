"""Event payloads exactly as Vonage shapes them (DIGEST §4.2), and the sender of one leg's events.

Shapes follow the real examples: status events carry ``uuid``; AMD events carry ``call_uuid`` and
no ``direction``; ``answered`` has ``start_time``/``rate``/``network`` present but null;
``completed`` has money and duration as strings; ``error`` has only ``reason``,
``conversation_uuid`` and ``timestamp``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from orchestrator.sandbox.simulator.calls import endpoint_headers
from orchestrator.sandbox.simulator.clock import iso

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.applications import SimApplication
    from orchestrator.sandbox.simulator.calls import Call
    from orchestrator.sandbox.simulator.engine import SimEngine

__all__ = [
    "NCCO_SYNTAX_ERROR",
    "CallEvents",
    "amd_payload",
    "completed_payload",
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
    headers = endpoint_headers(call.to)
    if headers is not None:
        body["headers"] = headers  # a websocket leg's events echo its endpoint's headers
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


class CallEvents:
    """Sends one leg's events to its event URL, maybe twice, as Vonage may (one per leg)."""

    def __init__(self, engine: SimEngine, call: Call, app: SimApplication | None) -> None:
        self.engine = engine
        self.call = call
        self.app = app

    async def send(
        self,
        payload: dict[str, Any],
        label: str,
        *,
        url: str | None = None,
        method: str | None = None,
        kind: str = "event",
    ) -> None:
        """To the leg's event URL (or ``url``); duplicated as often as the profile says."""
        call, engine = self.call, self.engine
        target = url or call.event_url
        if not target:
            return
        m = method or (call.event_method if url is None else "POST")
        await engine.poster.notify(call, self.app, payload, target, m, kind=kind, label=label)
        duplicate = engine.profile.events.duplicate
        if duplicate and call.rng.random() < duplicate:
            await engine.poster.notify(
                call, self.app, payload, target, m, kind=kind, label=label, duplicate=True
            )
