"""What the ledger shows of named conversations: who was in each one, from when to when.

A checker must be able to verify a bridging product without trusting it: which callee shared a
conversation with which agent leg and for how long, whether one agent was in two conversations
at once, whether a voicemail ever reached an agent. The live registry forgets a conversation once
it ends (so its name can start afresh), hence this separate, bounded record of every stay.
Times are simulated (ISO, like a call's ``times``); ``seconds`` is the stay's simulated length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from orchestrator.sandbox.simulator.clock import iso

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.calls import Call

__all__ = ["ConversationLog", "ConversationRecord", "Stay"]


class Stay:
    """One leg's time in one conversation (a leg that leaves and rejoins has two stays)."""

    __slots__ = ("call", "end_on_exit", "joined_sim", "left_sim", "start_on_enter")

    def __init__(
        self, call: Call, joined_sim: float, *, start_on_enter: bool, end_on_exit: bool
    ) -> None:
        self.call = call  # read at snapshot time: AMD may report after the leg joined
        self.joined_sim = joined_sim
        self.left_sim: float | None = None
        self.start_on_enter = start_on_enter
        self.end_on_exit = end_on_exit

    def to_json(self) -> dict[str, Any]:
        call = self.call
        left = self.left_sim
        return {
            "uuid": call.uuid,
            "call_ref": call.call_ref,
            "to": call.to_str,
            "agent": call.agent is not None,
            "outcome": call.outcome,
            "amd_result": call.amd_result,
            "joined": iso(self.joined_sim),
            "left": iso(left) if left is not None else None,
            "seconds": round(left - self.joined_sim, 3) if left is not None else None,
            "start_on_enter": self.start_on_enter,
            "end_on_exit": self.end_on_exit,
        }


class ConversationRecord:
    """One named conversation from its first joiner to its end, with every stay in it."""

    __slots__ = ("app_id", "created_sim", "ended_sim", "name", "started_sim", "stays", "uuid")

    def __init__(self, app_id: str, name: str, uuid: str, created_sim: float) -> None:
        self.app_id = app_id
        self.name = name
        self.uuid = uuid
        self.created_sim = created_sim
        self.started_sim: float | None = None
        self.ended_sim: float | None = None
        self.stays: list[Stay] = []

    def involves(self, call_ref: str) -> bool:
        return any(s.call.call_ref == call_ref for s in self.stays)

    def to_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "app_id": self.app_id,
            "created": iso(self.created_sim),
            "started": iso(self.started_sim) if self.started_sim is not None else None,
            "ended": iso(self.ended_sim) if self.ended_sim is not None else None,
            "legs": [s.to_json() for s in self.stays],
        }


class ConversationLog:
    """The last ``max_records`` conversations, oldest first (memory stays bounded)."""

    def __init__(self, max_records: int) -> None:
        self._records: deque[ConversationRecord] = deque(maxlen=max_records)

    def __iter__(self) -> Iterator[ConversationRecord]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: ConversationRecord) -> None:
        self._records.append(record)

    def clear(self) -> None:
        self._records.clear()

    @staticmethod
    def to_json(
        records: Iterable[ConversationRecord], call_ref: str | None = None
    ) -> list[dict[str, Any]]:
        return [r.to_json() for r in records if call_ref is None or r.involves(call_ref)]
