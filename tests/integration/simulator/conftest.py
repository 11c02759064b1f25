"""Fixtures for simulator tests: a real webhook receiver and simulators on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from orchestrator.sandbox.simulator import Simulator
from tests.integration.simulator.receiver import Receiver

SECRET = "test-signature-secret-32-bytes-long!!"

# Fast, deterministic defaults: short rings and talks, no reordering/duplicates unless asked.
FAST: dict[str, Any] = {
    "timing": {
        "setup": 0.2,
        "ring": 1.0,
        "ring_fail": 1.0,
        "talk": 3.0,
        "machine_talk": 3.0,
        "amd": 0.5,
        "stream": 1.0,
        "record": 1.0,
    },
    "events": {"reorder_started_ringing": 0, "reorder_final_completed": 0, "duplicate": 0},
    "webhooks": {"retry_backoff": 0.05},
}


def only(outcome: str, **extra: Any) -> dict[str, Any]:
    """A profile where every call has ``outcome``."""
    weights = dict.fromkeys(
        ("human", "machine", "busy", "unanswered", "rejected", "failed", "timeout", "cancelled"), 0
    )
    weights[outcome] = 1
    prof = {**FAST, "outcomes": weights}
    prof.update(extra)
    return prof


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver(SECRET) as r:
        yield r


@pytest.fixture
def make_sim() -> Callable[..., AbstractAsyncContextManager[Simulator]]:
    def factory(**kw: Any) -> AbstractAsyncContextManager[Simulator]:
        kw.setdefault("signature_secret", SECRET)
        kw.setdefault("seed", 7)
        kw.setdefault("time_scale", 20.0)
        kw.setdefault("profile", FAST)
        return Simulator(port=0, **kw)

    return factory
