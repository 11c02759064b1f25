"""The records of the compacted state topics ``voice.state`` and ``campaign.state``.

The runtime writes them (``orchestrator.runtime.store.encode_changelog``) as plain JSON, not
through these models; they exist so the two topics have a schema like every other topic, and
``tests/unit/contracts/test_record_models.py`` checks them against what the runtime and the
campaign controller really write, so they cannot drift apart.

``voice.state``'s ``state`` is the worker's private snapshot of one flow key: it is documented
as an object and nothing more, because only the worker reads it back (its shape, and how older
versions of it load, is :mod:`contracts.voice_state`). The
campaign snapshot is read by other processes (the control API's status, ``orchestrator campaign
status``), so its ``progress`` is a full :class:`~contracts.campaign.CampaignProgress`.
A tombstone (a null value) deletes a key on both topics.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.campaign import CampaignProgress, CampaignSpec

__all__ = ["CampaignSnapshot", "CampaignStateRecord", "StateClock", "VoiceStateRecord"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: int = Field(
        ge=-1,
        description="Input offset of the last record applied to the key; a replayed record at or "
        "below it is skipped.",
    )
    at: float = Field(description="When the key last received a record (epoch seconds).")
    due: float | None = Field(None, description="The key's timer, when one is set (epoch s).")
    done: float | None = Field(None, description="When the key finished (epoch seconds).")


class VoiceStateRecord(_Record):
    """One call flow's state on ``voice.state`` (key = flow key), written by the worker."""

    state: dict[str, Any] = Field(
        description="The worker's snapshot of the flow's legs and conversation (internal)."
    )


class StateClock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(description="The campaign clock of the last tick read (epoch seconds).")
    wall: float = Field(description="Real time of that tick (epoch seconds).")


class CampaignSnapshot(BaseModel):
    """The campaign controller's state of one campaign."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: CampaignSpec
    start_id: str = Field(description="Id of the start request (CampaignControl.id).")
    source_ranges: list[tuple[int, int, int]] | None = Field(
        None, description="Topic source: (partition, begin, end) offsets fixed at start."
    )
    meta: dict[str, Any] = Field(description="Counters and cursor of the campaign (internal).")
    tracks: list[dict[str, Any]] = Field(description="Contacts in flight or waiting (internal).")
    progress: CampaignProgress
    clock: StateClock


class CampaignStateRecord(_Record):
    """One campaign's state on ``campaign.state`` (key = campaign name)."""

    state: CampaignSnapshot
