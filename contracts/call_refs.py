"""Call references: our own id of a call, and the one place that writes and reads them.

Every call this system originates gets a ``call_ref``. It is written into the path of every
webhook URL Vonage gets for the call (``/webhooks/{kind}/{call_ref}``), so each webhook finds its
call flow without a lookup, and it is the flow key of the call's records. It must therefore be
URL-path safe (:data:`CALL_REF_PATTERN`).

A campaign's calls use a structured reference, ``{campaign}.{run}.{row}.{attempt}``
(:func:`make_call_ref`): deterministic, so a command re-emitted after a restart is the same
command, and readable, so whoever sees a call_ref (the worker, to route a leg's outcome to its
campaign) can tell which campaign placed the call (:func:`campaign_of`) without asking anyone.
Calls placed through the control API get ``api-{hex}`` and belong to no campaign.

An agent campaign bridges each human answer to an agent: the agent's own leg is a call of its
own, with the reference ``{callee call_ref}.a{n}`` (:func:`make_agent_leg_ref`): the callee's
reference (which names the campaign) and the number of the agent leg placed for that callee (a
busy agent's callee gets a second leg, ``.a2``, to the next agent). Path-safe like every
reference, parseable (:func:`parse_agent_leg_ref`), and not a campaign call's reference, so the
worker never mistakes an agent's leg for a contact's attempt: it routes the agent leg's facts to
the agent pool (``agents.control``), keyed by the callee's reference.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from contracts.campaign import CAMPAIGN_NAME_PATTERN

__all__ = [
    "CALL_REF_PATTERN",
    "AgentLegRef",
    "CampaignCallRef",
    "campaign_of",
    "is_call_ref",
    "make_agent_leg_ref",
    "make_call_ref",
    "parse_agent_leg_ref",
    "parse_campaign_call_ref",
]

#: What a call_ref may be: it travels in URL paths, so only unreserved characters.
CALL_REF_PATTERN = r"^[A-Za-z0-9._~-]{1,128}$"
_CALL_REF = re.compile(CALL_REF_PATTERN)
#: ``{campaign}.{run}.{row}.{attempt}``: the campaign name, the run's 8 hex digits, the contact's
#: row in the source and the attempt number (from 1).
_CAMPAIGN_CALL_REF = re.compile(
    "^(" + CAMPAIGN_NAME_PATTERN.strip("^$") + r")\.([0-9a-f]{8})\.(\d+)\.(\d+)$"
)


_AGENT_LEG_REF = re.compile(
    "^(" + CAMPAIGN_NAME_PATTERN.strip("^$") + r"\.[0-9a-f]{8}\.\d+\.\d+)\.a(\d{1,3})$"
)
#: Agent legs placed for one callee at most (each failed agent leg places the next one).
MAX_AGENT_LEGS = 999


class AgentLegRef(NamedTuple):
    """The parts of an agent leg's reference."""

    call_ref: str  # the callee's (a campaign call's) reference
    n: int  # the agent leg's number for that callee, from 1


class CampaignCallRef(NamedTuple):
    """The parts of a campaign call's reference."""

    campaign: str
    run: str
    row: int
    attempt: int


def is_call_ref(value: str) -> bool:
    """Whether ``value`` can be a call_ref (URL-path safe, 1-128 characters)."""
    return _CALL_REF.fullmatch(value) is not None


def make_call_ref(campaign: str, run: str, row: int, attempt: int) -> str:
    """The call_ref of one attempt of a campaign: deterministic from its four parts."""
    return f"{campaign}.{run}.{row}.{attempt}"


def parse_campaign_call_ref(call_ref: str | None) -> CampaignCallRef | None:
    """The parts of a campaign call's reference; None for any other call_ref."""
    if not call_ref:
        return None
    m = _CAMPAIGN_CALL_REF.match(call_ref)
    if m is None:
        return None
    return CampaignCallRef(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))


def campaign_of(call_ref: str | None) -> str | None:
    """The campaign that placed the call, or None for calls not placed by a campaign."""
    if not call_ref:
        return None
    m = _CAMPAIGN_CALL_REF.match(call_ref)
    return m.group(1) if m else None


def make_agent_leg_ref(call_ref: str, n: int) -> str:
    """The reference of the ``n``-th agent leg placed for the callee of ``call_ref``."""
    if parse_campaign_call_ref(call_ref) is None:
        raise ValueError(f"not a campaign call's reference: {call_ref[:80]!r}")
    if not 1 <= n <= MAX_AGENT_LEGS:
        raise ValueError(f"agent leg number {n} outside 1..{MAX_AGENT_LEGS}")
    return f"{call_ref}.a{n}"


def parse_agent_leg_ref(ref: str | None) -> AgentLegRef | None:
    """The callee's reference and the leg's number, or None for any other call_ref."""
    if not ref:
        return None
    m = _AGENT_LEG_REF.match(ref)
    if m is None:
        return None
    return AgentLegRef(m.group(1), int(m.group(2)))
