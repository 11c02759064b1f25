"""Fault injection per API operation, drawn from the seeded profile.

Four faults, as a client meets them against the real platform:
- an injected 429 *instead of* processing, decided before the rate limiter (so it takes no slot):
  the account's limits as Vonage sees them, which a client cannot observe (other clients on the
  account, a lower limit than configured); the body is the real limiter's;
- an injected 5xx *instead of* processing (safe to retry);
- added latency before the response (client timeouts);
- a dropped connection *after* the request was processed: the call exists, the client never hears
  so. This is the case that makes ``POST /v1/calls`` non-idempotent in practice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator.sandbox.simulator.profile import Profile

__all__ = ["FaultDecision", "decide", "throttled"]


@dataclass(frozen=True, slots=True)
class FaultDecision:
    error_status: int | None = None
    drop: bool = False
    latency: float = 0.0  # real seconds

    @property
    def any(self) -> bool:
        return self.error_status is not None or self.drop or self.latency > 0


NONE = FaultDecision()


def decide(profile: Profile, op: str, rng: random.Random) -> FaultDecision:
    fault = profile.fault_for(op) if profile.faults.endpoints else None
    if fault is None:
        return NONE
    latency = fault.latency_ms / 1000.0
    if fault.latency_jitter_ms:
        latency += rng.uniform(0, fault.latency_jitter_ms / 1000.0)
    if fault.error_rate and rng.random() < fault.error_rate:
        return FaultDecision(error_status=fault.error_status, latency=latency)
    drop = bool(fault.drop_rate) and rng.random() < fault.drop_rate
    return FaultDecision(drop=drop, latency=latency)


def throttled(profile: Profile, op: str, rng: random.Random) -> bool:
    """Whether to answer this request with an injected 429 (draws only when the rate is set)."""
    fault = profile.fault_for(op) if profile.faults.endpoints else None
    return fault is not None and bool(fault.throttle_rate) and rng.random() < fault.throttle_rate
