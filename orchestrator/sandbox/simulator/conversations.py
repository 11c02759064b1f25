"""Named conversations (conferences): the ``conversation`` NCCO action's shared rooms.

Names are scoped per application: the first leg to join a name creates the conversation, later
legs with the same name join it (DIGEST §7). Moderator semantics: a leg with ``startOnEnter:
false`` waits (music on hold) until a leg with ``startOnEnter: true`` joins; when a leg with
``endOnExit: true`` leaves, the conversation ends and every other leg in it is hung up; when the
last leg leaves it ends too. An ended conversation is forgotten, so the name can start afresh.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.calls import Call

__all__ = ["ConversationRegistry", "Member", "NamedConversation"]


@dataclass(slots=True)
class Member:
    call: Call
    start_on_enter: bool
    end_on_exit: bool


@dataclass(slots=True)
class NamedConversation:
    app_id: str
    name: str
    uuid: str
    created_sim: float
    members: dict[str, Member] = field(default_factory=dict)
    started: asyncio.Future[None] | None = None
    ended: asyncio.Future[None] | None = None
    started_sim: float | None = None
    record: dict[str, Any] | None = None  # the action that asked for recording
    record_call: Call | None = None
    max_members: int = 0

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.ended = loop.create_future()

    @property
    def is_started(self) -> bool:
        return self.started is not None and self.started.done()

    @property
    def is_ended(self) -> bool:
        return self.ended is not None and self.ended.done()


class ConversationRegistry:
    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], NamedConversation] = {}

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, app_id: str, name: str) -> NamedConversation | None:
        return self._by_name.get((app_id, name))

    def join(
        self,
        app_id: str,
        name: str,
        call: Call,
        *,
        start_on_enter: bool,
        end_on_exit: bool,
        now_sim: float,
    ) -> NamedConversation:
        conv = self._by_name.get((app_id, name))
        if conv is None or conv.is_ended:
            conv = NamedConversation(app_id, name, f"CON-{uuid.uuid4()}", now_sim)
            self._by_name[(app_id, name)] = conv
        conv.members[call.uuid] = Member(call, start_on_enter, end_on_exit)
        conv.max_members = max(conv.max_members, len(conv.members))
        if start_on_enter and not conv.is_started:
            conv.started_sim = now_sim
            assert conv.started is not None
            conv.started.set_result(None)
        return conv

    def leave(self, conv: NamedConversation, call: Call) -> list[Call]:
        """Remove a leg; returns the legs that must now be hung up (conversation ended)."""
        member = conv.members.pop(call.uuid, None)
        if conv.is_ended:
            return []
        to_hang_up: list[Call] = []
        if member is not None and member.end_on_exit and conv.is_started:
            to_hang_up = [m.call for m in conv.members.values()]
            conv.members.clear()
        if not conv.members:
            assert conv.ended is not None
            conv.ended.set_result(None)
            if self._by_name.get((conv.app_id, conv.name)) is conv:
                del self._by_name[(conv.app_id, conv.name)]
        return to_hang_up

    def clear(self) -> None:
        self._by_name.clear()
