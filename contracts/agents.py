"""Agents as a resource: who takes an answered call, what asks to change their state, what is stored.

An agent campaign bridges each human answer to an agent: a person on a phone, a SIP desk phone, a
Client SDK app user, or a voice bot behind a WebSocket. The endpoint models are NCCO ``connect``'s
own (:mod:`contracts.ncco`), so whatever an agent's endpoint says is exactly what the connect
will carry, validated by the same rules.

Two records travel on Kafka, both keyed by the agent's id so one partition sees one agent's
history in order:

- :class:`AgentCommand`, which another service (a CRM, an agent desktop, the control API)
  publishes to log an agent in or out or to mark them available or offline. Its ``id`` is an
  event id: a command delivered twice is applied once.
- :class:`AgentRecord`, the agent's state as last written by the pool's owner: a compacted
  changelog, so a restarted owner restores every agent from its latest record (including the
  event ids it already applied, so a redelivered command stays a no-op after a restart).

Times in the record are epoch seconds (floats), like the runtime's other changelog records.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts._base import AwareTime
from contracts.ncco import AppEndpoint, PhoneEndpoint, SipEndpoint, WebsocketEndpoint

__all__ = [
    "AGENT_ID_PATTERN",
    "MAX_NEED_BYTES",
    "MAX_PROFILE_BYTES",
    "Agent",
    "AgentAction",
    "AgentCommand",
    "AgentEndpoint",
    "AgentId",
    "AgentNeed",
    "AgentRecord",
    "AgentState",
    "LeaveAfterCall",
    "check_labels",
]

#: Agent ids are Kafka keys and URL path segments (``PUT /v1/agents/{id}/state``): kept path-safe.
AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_LABELS = 50
#: Longest wrap-up an agent may be given: past an hour it is a break, and breaks are ``offline``.
MAX_WRAP_UP_SECONDS = 3600.0
#: Largest agent profile (as JSON): the whole pool is one changelog record, so each agent's
#: share of it is bounded (a WebSocket endpoint's headers are metadata, not payload).
MAX_PROFILE_BYTES = 1024
#: Largest need (group and skills, as JSON) a call may ask of its agent.
MAX_NEED_BYTES = 200

AgentId = Annotated[str, Field(pattern=AGENT_ID_PATTERN)]

AgentEndpoint = Annotated[
    PhoneEndpoint | SipEndpoint | AppEndpoint | WebsocketEndpoint,
    Field(discriminator="type"),
]
"""Where the agent's leg is connected: NCCO ``connect``'s endpoints (phone, SIP, app, WebSocket)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def check_labels(value: list[str], what: str) -> list[str]:
    """Skills and groups are matched exactly, so spelling slips would silently never match."""
    if len(value) > _MAX_LABELS:
        raise ValueError(f"at most {_MAX_LABELS} {what}")
    for label in value:
        if not _LABEL.match(label):
            raise ValueError(
                f"{what[:-1]} {label!r}: letters, digits, '_', '.' or '-' (at most 64)"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"{what} must not repeat")
    return value


class AgentNeed(_Model):
    """What an agent must have to take a call: a group (if named) and all the listed skills."""

    group: str | None = Field(None, description="Only agents in this group.")
    skills: list[str] = Field(default_factory=list, description="Agents with every one of these.")

    @field_validator("group")
    @classmethod
    def _group(cls, v: str | None) -> str | None:
        if v is not None:
            check_labels([v], "groups")
        return v

    @field_validator("skills")
    @classmethod
    def _skills(cls, v: list[str]) -> list[str]:
        return check_labels(v, "skills")

    @model_validator(mode="after")
    def _size(self) -> AgentNeed:
        # Every agent holding a call keeps its need (to find the next agent): kept small.
        size = len(orjson.dumps(self.model_dump(mode="json", exclude_none=True)))
        if size > MAX_NEED_BYTES:
            raise ValueError(
                f"a group and skills of {size} bytes as JSON, at most {MAX_NEED_BYTES}"
            )
        return self


class Agent(_Model):
    """An agent's profile: where to reach them and what calls they may take."""

    id: AgentId
    endpoint: AgentEndpoint
    groups: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    wrap_up_seconds: float = Field(
        30.0,
        ge=0,
        le=MAX_WRAP_UP_SECONDS,
        description="After each call the agent is in wrap-up this long before taking another.",
    )

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        return check_labels(v, "groups")

    @field_validator("skills")
    @classmethod
    def _skills(cls, v: list[str]) -> list[str]:
        return check_labels(v, "skills")

    @model_validator(mode="after")
    def _size(self) -> Agent:
        size = len(orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True)))
        if size > MAX_PROFILE_BYTES:
            raise ValueError(
                f"the profile is {size} bytes as JSON, at most {MAX_PROFILE_BYTES} (shorten the "
                "endpoint's headers, skills or groups)"
            )
        return self

    def fits(self, need: AgentNeed | None) -> bool:
        """Whether this agent may take a call that needs ``need`` (None: any agent)."""
        if need is None:
            return True
        if need.group is not None and need.group not in self.groups:
            return False
        return set(need.skills) <= set(self.skills)


class AgentState(StrEnum):
    AVAILABLE = "available"  # logged in, idle, may be reserved
    RESERVED = "reserved"  # held for one answered call until it is connected or released
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # after a call, until wrap_up_until
    OFFLINE = "offline"  # logged out, on a break, or put offline after a failed leg


class AgentAction(StrEnum):
    """What another service may ask. Call-related states (reserved, on call) are the pool's own."""

    LOGIN = "login"  # with the profile; the agent becomes available
    LOGOUT = "logout"  # offline and logged out (after the current call, if any)
    AVAILABLE = "available"  # ready again: ends wrap-up early, or a break, or a leg failure
    OFFLINE = "offline"  # a break: still logged in (after the current call, if any)


class AgentCommand(_Model):
    """A request to change one agent's state, on ``agents.control`` (key = agent id)."""

    type: Literal["agent.command"] = "agent.command"
    schema_version: int = 1
    id: str = Field(
        min_length=1,
        max_length=200,
        description="Event id, unique per request: a command delivered twice is applied once.",
    )
    occurred_at: AwareTime
    agent_id: AgentId
    action: AgentAction
    agent: Agent | None = Field(
        None, description="The agent's profile: required with login, refused otherwise."
    )
    requested_by: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _profile(self) -> AgentCommand:
        if self.action == AgentAction.LOGIN:
            if self.agent is None:
                raise ValueError("agent: is required with action login (the agent's profile)")
            if self.agent.id != self.agent_id:
                raise ValueError(f"agent.id {self.agent.id!r} differs from agent_id")
        elif self.agent is not None:
            raise ValueError(f"agent: only with action login, not {self.action.value}")
        return self

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))


LeaveAfterCall = Literal["offline", "logout"]


class AgentRecord(_Model):
    """One agent's state on ``agents.state`` (key = agent id): what the pool restores from."""

    type: Literal["agent.state"] = "agent.state"
    schema_version: int = 1
    agent: Agent
    state: AgentState
    since: float = Field(description="When the agent entered ``state`` (epoch seconds).")
    logged_in_since: float | None = Field(None, description="None while logged out.")
    idle_since: float | None = Field(
        None, description="When the agent last became free: the longest idle is reserved first."
    )
    call_ref: str | None = Field(None, description="The call the agent is reserved for or on.")
    need: AgentNeed | None = Field(None, description="What that call needs (to find another).")
    wrap_up_until: float | None = None
    leave_after_call: LeaveAfterCall | None = Field(
        None, description="Asked to go offline or log out during a call: done when it ends."
    )
    offline_reason: str | None = Field(None, description="logout, offline, or leg_<status>.")
    calls: int = Field(0, ge=0, description="Calls the agent talked on.")
    talk_seconds: float = Field(0.0, ge=0, description="Closed talk time (excludes a live call).")
    wrap_up_seconds_total: float = Field(0.0, ge=0)
    logged_in_seconds: float = Field(0.0, ge=0, description="Closed logged-in time.")
    recent_events: list[str] = Field(
        default_factory=list, description="The last event ids applied (oldest first), for dedup."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AgentRecord:
        holds_call = self.state in {AgentState.RESERVED, AgentState.ON_CALL}
        if holds_call != (self.call_ref is not None):
            raise ValueError("call_ref: set exactly when the agent is reserved or on a call")
        if (self.state == AgentState.WRAP_UP) != (self.wrap_up_until is not None):
            raise ValueError("wrap_up_until: set exactly when the agent is in wrap-up")
        if self.state != AgentState.OFFLINE and self.logged_in_since is None:
            raise ValueError(f"logged_in_since: required in state {self.state.value}")
        return self

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))
