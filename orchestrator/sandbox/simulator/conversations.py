"""Named conversations (conferences): the ``conversation`` NCCO action's shared rooms.

Names are scoped per application: the first leg to join a name creates the conversation, later
legs with the same name join it (DIGEST §7). Moderator semantics: a leg with ``startOnEnter:
false`` waits (music on hold) until a leg with ``startOnEnter: true`` joins; when a leg with
``endOnExit: true`` leaves, the conversation ends and every other leg in it is hung up; when the
last leg leaves it ends too. An ended conversation is forgotten, so the name can start afresh
(its record stays in :attr:`ConversationRegistry.log` for the ledger).

Every join and leave resolves the conversation's ``changed`` future, so a waiting leg can
re-decide who ends it (:mod:`.bridge`: a callee waits for an agent, then the agent governs).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.sandbox.simulator.conversation_log import (
    ConversationLog,
    ConversationRecord,
    Stay,
)

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.calls import Call

__all__ = ["ConversationRegistry", "Member", "NamedConversation"]


@dataclass(slots=True)
class Member:
    call: Call
    start_on_enter: bool
    end_on_exit: bool
    stay: Stay
    #: the leg's own deadline (hangup_at, deadline_by) while an agent's is governing it
    suspended: tuple[float | None, str] | None = None


@dataclass(slots=True)
class NamedConversation:
    app_id: str
    name: str
    uuid: str
    created_sim: float
    log: ConversationRecord
    members: dict[str, Member] = field(default_factory=dict)
    started: asyncio.Future[None] | None = None
    ended: asyncio.Future[None] | None = None
    changed: asyncio.Future[None] | None = None  # resolved (and replaced) on each join/leave
    started_sim: float | None = None
    record: dict[str, Any] | None = None  # the action that asked for recording
    record_call: Call | None = None
    max_members: int = 0

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.ended = loop.create_future()
        self.changed = loop.create_future()

    def touch(self) -> None:
        """Wake the legs waiting in this conversation: its membership changed."""
        old = self.changed
        self.changed = asyncio.get_running_loop().create_future()
        if old is not None and not old.done():
            old.set_result(None)

    @property
    def is_started(self) -> bool:
        return self.started is not None and self.started.done()

    @property
    def is_ended(self) -> bool:
        return self.ended is not None and self.ended.done()


class ConversationRegistry:
    def __init__(self, max_records: int = 200_000) -> None:
        self._by_name: dict[tuple[str, str], NamedConversation] = {}
        self.log = ConversationLog(max_records)

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
            con_uuid = f"CON-{uuid.uuid4()}"
            record = ConversationRecord(app_id, name, con_uuid, now_sim)
            self.log.add(record)
            conv = NamedConversation(app_id, name, con_uuid, now_sim, record)
            self._by_name[(app_id, name)] = conv
        stay = Stay(call, now_sim, start_on_enter=start_on_enter, end_on_exit=end_on_exit)
        conv.log.stays.append(stay)
        conv.members[call.uuid] = Member(call, start_on_enter, end_on_exit, stay)
        conv.max_members = max(conv.max_members, len(conv.members))
        if start_on_enter and not conv.is_started:
            conv.started_sim = now_sim
            conv.log.started_sim = now_sim
            assert conv.started is not None
            conv.started.set_result(None)
        conv.touch()
        return conv

    def leave(self, conv: NamedConversation, call: Call, *, now_sim: float) -> list[Call]:
        """Remove a leg; returns the legs that must now be hung up (conversation ended)."""
        member = conv.members.pop(call.uuid, None)
        if member is not None:
            member.stay.left_sim = now_sim
        if conv.is_ended:
            return []
        to_hang_up: list[Call] = []
        if member is not None and member.end_on_exit and conv.is_started:
            # They are out the moment the platform hangs them up, not when their task gets to it.
            for other in conv.members.values():
                other.stay.left_sim = now_sim
                to_hang_up.append(other.call)
            conv.members.clear()
        if not conv.members:
            assert conv.ended is not None
            conv.ended.set_result(None)
            conv.log.ended_sim = now_sim
            if self._by_name.get((conv.app_id, conv.name)) is conv:
                del self._by_name[(conv.app_id, conv.name)]
        conv.touch()
        return to_hang_up

    def clear(self) -> None:
        self._by_name.clear()
        self.log.clear()
