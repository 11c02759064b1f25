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
"""

from __future__ import annotations

import re
from typing import NamedTuple

from contracts.campaign import CAMPAIGN_NAME_PATTERN

__all__ = [
    "CALL_REF_PATTERN",
    "CampaignCallRef",
    "campaign_of",
    "is_call_ref",
    "make_call_ref",
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
