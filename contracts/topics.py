"""Topic definitions: the single source for names, keys, partitions and retention.

Everything that creates, checks or documents topics (the local broker, production start-up, the
Strimzi ``KafkaTopic`` manifests, the README) reads this table, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One Kafka topic as the product expects it to exist."""

    name: str
    partitions: int
    key: str
    value: str
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    replication_factor: int = 3

    @property
    def config(self) -> dict[str, str]:
        """Broker-side topic configuration (``cleanup.policy``, ``retention.ms``)."""
        cfg = {"retention.ms": str(self.retention_ms)}
        cfg["cleanup.policy"] = "compact" if self.compacted else "delete"
        if self.compacted:
            # Compacted changelogs keep the latest value forever; -1 stops time-based deletion.
            cfg["retention.ms"] = "-1"
        return cfg

    def with_prefix(self, prefix: str) -> TopicSpec:
        return replace(self, name=f"{prefix}{self.name}") if prefix else self


# Partition counts: the worker's events/state pair must be co-partitioned (same count).
EVENTS_PARTITIONS = 12

VOICE_EVENTS = TopicSpec(
    "voice.events", EVENTS_PARTITIONS, "flow key", "EventEnvelope | CommandResult envelope"
)
VOICE_COMMANDS = TopicSpec("voice.commands", EVENTS_PARTITIONS, "flow key", "CommandEnvelope")
VOICE_OUTCOMES = TopicSpec("voice.outcomes", EVENTS_PARTITIONS, "flow key", "OutcomeEnvelope")
VOICE_STATE = TopicSpec(
    "voice.state", EVENTS_PARTITIONS, "flow key", "state snapshot + source offset", compacted=True
)
VOICE_DLQ = TopicSpec("voice.dlq", 3, "original key", "DeadLetter", retention_ms=30 * DAY_MS)
DISPATCH_LEDGER = TopicSpec(
    "voice.dispatch-ledger",
    EVENTS_PARTITIONS,
    "command id",
    "DialLedgerEntry (create-call attempts recorded before sending)",
    compacted=True,
)
CAMPAIGN_CONTROL = TopicSpec(
    "campaign.control",
    3,
    "campaign name",
    "CampaignControl, CampaignTick, forwarded Outcome and CommandResult",
)
CAMPAIGN_STATE = TopicSpec(
    "campaign.state", 3, "campaign name / contact", "campaign snapshot", compacted=True
)
CAMPAIGN_RESULTS = TopicSpec(
    "campaign.results", 3, "campaign name / contact id", "ContactResult", retention_ms=30 * DAY_MS
)
CAMPAIGN_UPLOADS = TopicSpec(
    "campaign.uploads",
    3,
    "upload id + contacts | dnc",
    "one contact (JSON object) or one DNC number (E.164) per record",
    # A campaign reads its uploaded rows until it finishes: keep them as long as results.
    retention_ms=30 * DAY_MS,
)

TOPICS: tuple[TopicSpec, ...] = (
    VOICE_EVENTS,
    VOICE_COMMANDS,
    VOICE_OUTCOMES,
    VOICE_STATE,
    VOICE_DLQ,
    DISPATCH_LEDGER,
    CAMPAIGN_CONTROL,
    CAMPAIGN_STATE,
    CAMPAIGN_RESULTS,
    CAMPAIGN_UPLOADS,
)


def topics(prefix: str = "", partitions: int | None = None) -> tuple[TopicSpec, ...]:
    """All topics with ``prefix`` applied; ``partitions`` overrides every count (local/test use)."""
    out = []
    for spec in TOPICS:
        s = spec.with_prefix(prefix)
        if partitions is not None:
            s = replace(s, partitions=partitions)
        out.append(s)
    return tuple(out)


def topic_name(spec: TopicSpec, prefix: str = "") -> str:
    return f"{prefix}{spec.name}"
