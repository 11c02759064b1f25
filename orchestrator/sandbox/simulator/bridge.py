"""Who ends a bridged call: a waiting callee's patience, then the agent's handle time.

A callee's ``talk`` draw says how long a person stays on the line. In a named conversation with an
agent that would be wrong: a person who got through talks until the agent is done. So while a
person (outcome ``human``, not an agent) waits in a conversation with no agent in it, their talk
draw, counted from answer as always, is their *patience*: past it they hang up. Once an agent
shares the conversation their own deadline is suspended (only ``length_timer`` still applies) and
the agent's handle time governs: the agent hangs up, and ``endOnExit`` ends the callee. If the
agent leaves and the person stays, their patience is back, and if it is spent they hang up at once.
A voicemail (outcome ``machine``) keeps its own length: it waits for no one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.calls import Call
    from orchestrator.sandbox.simulator.conversations import Member, NamedConversation
    from orchestrator.sandbox.simulator.engine import SimEngine

__all__ = ["govern", "restore"]


def govern(engine: SimEngine, call: Call, conv: NamedConversation, member: Member) -> None:
    """Set the leg's deadline for the company it has now (call at each membership change)."""
    person = call.agent is None and call.outcome == "human"
    with_agent = any(
        m.call.agent is not None for uid, m in conv.members.items() if uid != call.uuid
    )
    if not (person and with_agent):
        restore(call, member)
        return
    if member.suspended is not None:
        return
    member.suspended = (call.hangup_at, call.deadline_by)
    call.hangup_at = _length_deadline(engine, call)
    call.deadline_by = "platform"


def restore(call: Call, member: Member) -> None:
    """Give the leg its own deadline back (no agent with it any more, or it left)."""
    if member.suspended is not None:
        call.hangup_at, call.deadline_by = member.suspended
        member.suspended = None


def _length_deadline(engine: SimEngine, call: Call) -> float | None:
    if call.answered_sim is None:
        return None
    clock = engine.clock
    return clock.mono_at(call.answered_sim) + clock.real_seconds(float(call.length_timer))
