"""Small request/response types shared by the API handlers (kept apart from the ASGI plumbing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.applications import SimApplication
    from orchestrator.sandbox.simulator.engine import SimEngine
    from orchestrator.sandbox.simulator.ledger import RequestRecord
    from orchestrator.sandbox.simulator.lifecycle import Legs

__all__ = ["MAX_INDEX", "Ctx", "Resp"]

#: Largest paging number (record_index, page) accepted; above it a 400 with the problem body,
#: where an unbounded int used to reach orjson (no ints >= 2**64) and end in a bare 500.
MAX_INDEX = 2**31 - 1


@dataclass(slots=True)
class Resp:
    status: int
    body: Any = None  # JSON-ready value, raw bytes, or None for an empty body
    content_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class Ctx:
    engine: SimEngine
    legs: Legs
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    rec: RequestRecord
    mono: float  # monotonic instant the request was admitted (the ledger's ``t``)
    app: SimApplication | None = None
