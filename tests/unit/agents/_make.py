"""Builders shared by the agent tests."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.agents import Agent, AgentAction, AgentCommand, PhoneEndpoint


def agent(
    agent_id: str, *, groups: tuple[str, ...] = (), skills: tuple[str, ...] = (), wrap: float = 10.0
) -> Agent:
    digits = "".join(ch for ch in agent_id if ch.isdigit()) or "0"
    return Agent(
        id=agent_id,
        endpoint=PhoneEndpoint(number=f"4477009{int(digits):05d}"),
        groups=list(groups),
        skills=list(skills),
        wrap_up_seconds=wrap,
    )


def command(
    event_id: str, agent_id: str, action: AgentAction, now: float, profile: Agent | None = None
) -> AgentCommand:
    return AgentCommand(
        id=event_id,
        occurred_at=datetime.fromtimestamp(now, UTC),
        agent_id=agent_id,
        action=action,
        agent=profile,
    )


def login(profile: Agent, now: float, event_id: str | None = None) -> AgentCommand:
    return command(
        event_id or f"login-{profile.id}-{now}", profile.id, AgentAction.LOGIN, now, profile
    )
