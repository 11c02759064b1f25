"""The records that carry an agent campaign's calls between the roles.

An agent campaign (``mode: progressive | predictive``) dials as any campaign does; the callee's
answer NCCO puts them into the named conversation ``bridge-{call_ref}`` (:func:`bridge_name`).
What happens next crosses four roles, each record on a topic its reader already owns:

1. The worker sees the callee's AMD result and writes a :class:`LegMilestone` (``human`` or
   ``machine``) to ``campaign.control``, keyed by campaign, as it happens; a leg that ends never
   answered (unanswered, busy, failed...) gets an ``ended`` milestone, so that predictive pacing
   stops counting it as a line that may still bring a person (its outcome follows the worker's
   settle window, a second later).
2. The controller (it knows the campaign's mode) turns ``human`` into an :class:`AgentCall`
   ``reserve`` on ``agents.control`` (key = the callee's call_ref). ``machine`` never leaves the
   controller: a machine answer never reaches an agent. At the campaign's start and end the
   controller writes a ``demand`` (key = campaign) so the pool reports the agents' load to it.
3. The agents app reserves the longest-idle fitting agent and places the agent's leg (a
   ``create_call`` to the agent's endpoint joining ``bridge-{call_ref}``), or keeps the callee
   waiting until ``detected_at + connect_within``, then abandons: a transfer of the callee to the
   campaign's abandon message. It tells the campaign with an :class:`AgentNotice`
   (``connected``, ``abandoned``, and the throttled ``load``).
4. The worker follows the agent's leg like any leg (its call_ref is ``{call_ref}.a{n}``,
   :mod:`contracts.call_refs`) and writes its facts as :class:`AgentCall` ``agent_answered``,
   ``agent_ended`` (after an answer) and ``agent_failed`` (busy, unanswered, failed, timeout,
   rejected, cancelled: a WebSocket that could not be opened fails); the callee's own end is
   ``callee_ended``. All keyed by the callee's call_ref.

Ids are deterministic (``stable_id`` of the call_ref, the leg and the fact), so a record
produced again after a crash is recognised. Times the pool decides by are epoch seconds of our
own clocks (when the ingress received the AMD webhook), never Vonage's timestamps: the rules'
"within 2 seconds" is about what the callee hears, measured where we can measure it.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts._base import AwareTime
from contracts.agents import AgentId, AgentNeed, AgentRecord
from contracts.campaign import CAMPAIGN_NAME_PATTERN

__all__ = [
    "AGENT_CALL_KINDS",
    "MAX_VALUES_BYTES",
    "AgentCall",
    "AgentLoadFigures",
    "AgentNotice",
    "AgentPoolRecord",
    "AgentPoolSnapshot",
    "AgentsTick",
    "LegMilestone",
    "bridge_name",
]


#: The contact's values a reserve carries (only those the abandon message uses): the pool keeps
#: them while the caller waits, in its one changelog record.
MAX_VALUES_BYTES = 512


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))


def bridge_name(call_ref: str) -> str:
    """The named conversation a callee and their agent meet in."""
    return f"bridge-{call_ref}"


class LegMilestone(_Model):
    """An agent campaign's call reached an AMD result: on ``campaign.control`` (key = campaign).

    Sent live by the worker, once per leg and result, only for calls whose create-call command
    carried the ``agents`` hint (agentless campaigns cost nothing).
    """

    type: Literal["voice.milestone"] = "voice.milestone"
    schema_version: int = 1
    id: str
    occurred_at: AwareTime = Field(
        description="When we learned it: the ingress's receipt of the AMD webhook (our clock)."
    )
    flow_key: str
    call_ref: str
    campaign: str = Field(pattern=CAMPAIGN_NAME_PATTERN)
    uuid: str = Field(description="The callee's leg.")
    status: Literal["human", "machine", "ended"] = Field(
        description="The AMD result, or ended: the leg ended never answered (its outcome follows)."
    )
    amd_at: AwareTime | None = Field(None, description="Vonage's timestamp of the AMD result.")
    conversation_uuid: str | None = None
    region_url: str | None = Field(None, description="Where commands for the leg must go.")


#: What an :class:`AgentCall` may say, and who says it.
AGENT_CALL_KINDS = (
    "demand",  # controller: this campaign wants agents (or no longer: active false)
    "reserve",  # controller: a person answered call_ref; connect them to an agent
    "callee_ended",  # worker: the callee's leg ended
    "agent_answered",  # worker: the agent's leg (leg_ref) answered: bridged
    "agent_ended",  # worker: the agent's leg ended after its answer
    "agent_failed",  # worker: the agent's leg ended without an answer (status says how)
)

_NEEDS: dict[str, tuple[str, ...]] = {
    "demand": ("active",),
    "reserve": ("call_ref", "detected_at", "uuid", "connect_within"),
    "callee_ended": ("call_ref",),
    "agent_answered": ("call_ref", "leg_ref"),
    "agent_ended": ("call_ref", "leg_ref"),
    "agent_failed": ("call_ref", "leg_ref", "status"),
}


class AgentCall(_Model):
    """A call's record for the agent pool, on ``agents.control``.

    Key: the callee's call_ref (``demand``: the campaign). Internal between the product's roles,
    documented because it shares the topic with :class:`~contracts.agents.AgentCommand`.
    """

    type: Literal["agent.call"] = "agent.call"
    schema_version: int = 1
    id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareTime
    kind: Literal[
        "demand", "reserve", "callee_ended", "agent_answered", "agent_ended", "agent_failed"
    ]
    campaign: str = Field(pattern=CAMPAIGN_NAME_PATTERN)
    call_ref: str | None = Field(None, description="The callee's call_ref.")
    leg_ref: str | None = Field(None, description="The agent leg's call_ref.")
    uuid: str | None = Field(
        None, description="reserve: the callee's leg; agent_*: the agent's leg, when known."
    )
    region_url: str | None = None
    status: str | None = Field(None, max_length=40, description="agent_failed: how it failed.")
    detected_at: float | None = Field(
        None, description="reserve: when the human answer was seen (epoch s, our clock)."
    )
    need: AgentNeed | None = Field(None, description="What the agent must have.")
    connect_within: float | None = Field(None, gt=0, le=60)
    account: str | None = Field(None, description="Rate-limit scope of the pool's commands.")
    caller: str | None = Field(
        None,
        max_length=64,
        description="The number agent legs are called from (the campaign's first caller id); "
        "none: random_from_number.",
    )
    values: dict[str, str] | None = Field(
        None, description="reserve: the contact's values for the abandon message's variables."
    )
    active: bool | None = Field(None, description="demand: wants agents (false: finished).")
    abandon_message: str | None = Field(
        None, max_length=1500, description="demand: the message template an abandoned callee hears."
    )

    @model_validator(mode="after")
    def _fields(self) -> AgentCall:
        missing = [n for n in _NEEDS[self.kind] if getattr(self, n) is None]
        if missing:
            raise ValueError(f"{self.kind}: needs {', '.join(missing)}")
        if self.values and len(orjson.dumps(self.values)) > MAX_VALUES_BYTES:
            raise ValueError(f"values: at most {MAX_VALUES_BYTES} bytes as JSON")
        return self


class AgentLoadFigures(_Model):
    """The campaign's agents (those who fit its need) at one moment, and their running totals."""

    available: int = 0
    reserved: int = 0
    on_call: int = 0
    wrap_up: int = 0
    offline: int = 0
    waiting: int = Field(0, description="This campaign's callers waiting for an agent now.")
    logged_in: int = 0
    calls: int = Field(0, description="Calls these agents talked on (running total).")
    talk_seconds: float = Field(0.0, description="Running total, the live calls included.")
    wrap_up_seconds: float = 0.0
    logged_in_seconds: float = Field(0.0, description="Running total, live sessions included.")


class AgentNotice(_Model):
    """What the agent pool tells a campaign, on ``campaign.control`` (key = campaign)."""

    type: Literal["agent.notice"] = "agent.notice"
    schema_version: int = 1
    id: str
    occurred_at: AwareTime
    campaign: str = Field(pattern=CAMPAIGN_NAME_PATTERN)
    kind: Literal["connected", "abandoned", "load"]
    call_ref: str | None = None
    agent_id: AgentId | None = Field(None, description="connected: the agent who took the call.")
    wait_s: float | None = Field(
        None, ge=0, description="From the human answer seen to the agent's answer (or abandon)."
    )
    reason: str | None = Field(None, description="abandoned: no_agent or queue_full.")
    load: AgentLoadFigures | None = None

    @model_validator(mode="after")
    def _fields(self) -> AgentNotice:
        if self.kind == "load" and self.load is None:
            raise ValueError("load: needs the figures")
        if self.kind != "load" and (self.call_ref is None or self.wait_s is None):
            raise ValueError(f"{self.kind}: needs call_ref and wait_s")
        if self.kind == "connected" and self.agent_id is None:
            raise ValueError("connected: needs agent_id")
        return self


class AgentsTick(_Model):
    """The agents app's clock reading on its own input (key ``tick``), acted on when read back.

    Deadlines (``connect_within``) and wrap-up ends are decided by time; deciding on the wall
    clock directly would let a replay after a crash decide differently from the first run (the
    controller's ticks, :class:`~contracts.campaign.CampaignTick`, say the same).
    """

    type: Literal["agents.tick"] = "agents.tick"
    wall: float = Field(description="Real seconds since the epoch.")


class AgentPoolSnapshot(BaseModel):
    """The agents app's state: every agent, the calls it is serving, the campaigns it reports to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    clock: float = Field(description="Stream time of the last record applied (epoch seconds).")
    agents: list[AgentRecord]
    calls: list[dict[str, Any]] = Field(
        default_factory=list, description="Callers waiting or bridged (internal)."
    )
    campaigns: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Campaigns that asked for agents (internal)."
    )
    done: list[str] = Field(
        default_factory=list, description="Calls finished lately (late records ignored)."
    )
    refused: list[dict[str, Any]] = Field(
        default_factory=list, description="The last logins refused, with the reason."
    )


class AgentPoolRecord(BaseModel):
    """The pool on ``agents.state`` (key ``pool``): the runtime's changelog record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: int = Field(ge=-1, description="Input offset of the last record applied.")
    at: float = Field(description="When the pool last received a record (epoch seconds).")
    due: float | None = None
    done: float | None = None
    state: AgentPoolSnapshot
