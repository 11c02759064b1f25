"""Every exported model by name, and the topic table's model names resolved to classes.

The one place that joins ``contracts`` (which may not import the runtime) with the one record
model the runtime defines itself: the dial ledger's entry, in ``orchestrator.dispatcher.ledger``.
"""

from __future__ import annotations

from pydantic import BaseModel

from contracts.schema import all_models
from contracts.topics import TOPICS, TRAFFIC, TopicSpec, Traffic

__all__ = [
    "CAMPAIGN_FILE",
    "DEFAULT_BASE_URI",
    "models",
    "record_names",
    "released_names",
    "schema_file",
    "schema_id",
    "topic_spec",
]

#: The campaign file's model: not on a topic, but written by people and validated by editors.
CAMPAIGN_FILE = "CampaignSpec"

#: ``$id`` prefix of the exported schemas unless ``--base-uri`` names where they are published.
DEFAULT_BASE_URI = "urn:voice-orchestrator:schema:"


def models() -> dict[str, type[BaseModel]]:
    """Every model the export writes a schema for, by name."""
    from orchestrator.dispatcher.ledger import LedgerEntry

    out = dict(all_models())
    out[LedgerEntry.__name__] = LedgerEntry
    return out


def record_names() -> list[str]:
    """Names of the models of every record on every topic, in the topic table's order."""
    seen: dict[str, None] = {}
    for row in TRAFFIC:
        for name in row.messages:
            seen.setdefault(name, None)
    return list(seen)


def released_names() -> list[str]:
    """What the compatibility baseline covers: every record, and the campaign file."""
    return sorted({*record_names(), CAMPAIGN_FILE})


def schema_file(name: str) -> str:
    return f"{name}.schema.json"


def schema_id(name: str, base_uri: str = DEFAULT_BASE_URI) -> str:
    return f"{base_uri}{schema_file(name)}"


def topic_spec(row: Traffic) -> TopicSpec | None:
    """The product topic of a traffic row, or None for the contacts source (named per campaign)."""
    return next((t for t in TOPICS if t.name == row.topic), None)
