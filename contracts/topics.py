"""Topic definitions: the single source for names, keys, partitions and retention.

Everything that creates, checks or documents topics (the local broker, production start-up, the
Strimzi ``KafkaTopic`` manifests, the README, the AsyncAPI document and ``index.json`` of the
schema export) reads these tables, so they cannot drift apart. :data:`TRAFFIC` says which role
publishes and which subscribes to which records of each topic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

DAY_MS = 24 * 60 * 60 * 1000
HOUR_MS = 60 * 60 * 1000

#: The largest record the product writes, and so the smallest ``max.message.bytes`` a topic may
#: have: producers refuse anything bigger client-side, and the role that made it dead-letters its
#: input instead of crash-looping on a write the broker can never accept.
MAX_RECORD_BYTES = 1_000_000


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
    #: Exactly one partition, whatever ``TOPIC_PARTITIONS`` says, checked at start-up: its
    #: reader must see every record in one order (the agent pool).
    single_partition: bool = False

    @property
    def config(self) -> dict[str, str]:
        """Broker-side topic configuration: what the product relies on, checked at start-up.

        Changelogs (compacted) keep the latest value per key forever (``retention.ms=-1``). They
        roll a segment every hour, because the cleaner never compacts the active segment: with
        Kafka's default of 7 days, a restore would read a week of history. Tombstones stay a day
        (``delete.retention.ms``), so a restore that started before the cleaner ran still sees
        the delete. ``min.insync.replicas=2`` with 3 replicas is what makes ``acks=all`` mean
        "on two brokers", so one broker can be down and writes still succeed.
        """
        cfg = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
            "max.message.bytes": str(MAX_RECORD_BYTES + 1024),  # + the batch's own header
        }
        if self.compacted:
            cfg["retention.ms"] = "-1"
            cfg["segment.ms"] = str(HOUR_MS)
            cfg["delete.retention.ms"] = str(DAY_MS)
        if self.replication_factor >= 3:
            cfg["min.insync.replicas"] = "2"
        return dict(sorted(cfg.items()))

    def with_prefix(self, prefix: str) -> TopicSpec:
        return replace(self, name=f"{prefix}{self.name}") if prefix else self


# Partition counts: the worker's events/state pair must be co-partitioned (same count).
EVENTS_PARTITIONS = 12

VOICE_EVENTS = TopicSpec(
    "voice.events", EVENTS_PARTITIONS, "flow key", "EventEnvelope | CommandResult envelope"
)
VOICE_COMMANDS = TopicSpec(
    "voice.commands",
    EVENTS_PARTITIONS,
    "flow key; acct:{account} for call-creating commands",
    "CommandEnvelope",
)
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
    "CampaignControl, CampaignTick, and the Outcome and CommandResult of the campaign's calls",
)
CAMPAIGN_STATE = TopicSpec(
    "campaign.state", 3, "campaign name", "campaign snapshot", compacted=True
)
CAMPAIGN_RESULTS = TopicSpec(
    "campaign.results",
    3,
    "{campaign}/{contact_id}",
    "ContactResult",
    retention_ms=30 * DAY_MS,
)
CAMPAIGN_UPLOADS = TopicSpec(
    "campaign.uploads",
    3,
    "upload id + contacts | dnc",
    "one contact (JSON object) or one DNC number (E.164) per record",
    # A campaign reads its uploaded rows until it finishes: keep them as long as results.
    retention_ms=30 * DAY_MS,
)

#: The agent pool's input: operators' and other services' ``AgentCommand`` (key = agent id), the
#: calls' records (``AgentCall``, key = the callee's call_ref: reserve, the legs' facts, the
#: results of the agent legs' commands) and the agents app's own clock ticks. **One partition,
#: deliberately**: one owner sees every agent and every waiting call in one order, so an agent
#: can never be reserved twice and "longest idle" means the whole team's. The bound this sets:
#: one agents app process does all of it (reservations are a dict lookup and a scan of at most
#: ``MAX_AGENTS`` agents; thousands per second fit), and a take-over pauses reservations for the
#: restore of one small changelog. A company with several independent teams runs them as
#: separate deployments (``TOPIC_PREFIX``).
AGENTS_CONTROL = TopicSpec(
    "agents.control",
    1,
    "agent id (AgentCommand); the callee's call_ref (AgentCall); `tick`",
    "AgentCommand, AgentCall, AgentsTick, and the CommandResult of the agent legs' commands",
    single_partition=True,
)
AGENTS_STATE = TopicSpec(
    "agents.state",
    1,
    "`pool`",
    "the agent pool snapshot (every agent's AgentRecord, the calls waiting or bridged)",
    compacted=True,
    single_partition=True,
)

#: Topics whose partition counts must be equal: a worker restores the state of input partition p
#: from changelog partition p, and the dispatcher keeps command partition p's dial ledger in
#: ledger partition p. A different count silently mixes keys from different partitions.
COPARTITIONED: tuple[tuple[TopicSpec, TopicSpec], ...] = (
    (VOICE_EVENTS, VOICE_STATE),
    (VOICE_COMMANDS, DISPATCH_LEDGER),
    (CAMPAIGN_CONTROL, CAMPAIGN_STATE),
    (AGENTS_CONTROL, AGENTS_STATE),
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
    AGENTS_CONTROL,
    AGENTS_STATE,
)


#: Each topic by its (unprefixed) name.
TOPICS_BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}


def topics(prefix: str = "", partitions: int | None = None) -> tuple[TopicSpec, ...]:
    """All topics with ``prefix`` applied; ``partitions`` overrides every count (local/test use)."""
    out = []
    for spec in TOPICS:
        s = spec.with_prefix(prefix)
        if partitions is not None and not spec.single_partition:
            s = replace(s, partitions=partitions)
        out.append(s)
    return tuple(out)


def topic_name(spec: TopicSpec, prefix: str = "") -> str:
    """The topic's name on the broker: ``prefix`` (the ``TOPIC_PREFIX`` setting) + its name."""
    return f"{prefix}{spec.name}"


#: Topics a command may name as its ``reply_to``: where its requester reads the result.
REPLY_TOPICS = frozenset({CAMPAIGN_CONTROL.name, AGENTS_CONTROL.name})


# --- Who publishes and who subscribes ---------------------------------------------------------

#: The roles of the traffic table: the four product roles and everything outside the product
#: (other services, and the ``orchestrator campaign`` CLI, which writes and reads through Kafka).
INGRESS = "ingress"
WORKER = "worker"
DISPATCHER = "dispatcher"
CAMPAIGN_CONTROLLER = "campaign-controller"
AGENTS = "agents"
EXTERNAL = "external"
ROLES: tuple[str, ...] = (INGRESS, WORKER, DISPATCHER, CAMPAIGN_CONTROLLER, AGENTS, EXTERNAL)

#: The contacts topic a campaign file may name (``contacts.topic``): not one of the product's
#: topics (other services own it, and its name is per campaign), but a contract all the same.
CONTACTS_SOURCE = "contacts"


@dataclass(frozen=True, slots=True)
class Traffic:
    """Some records of one topic: their models, who writes them and who reads them.

    ``messages`` are model names as the schema export writes them (``<Name>.schema.json``); they
    are names rather than classes because one of them (the dial ledger entry) is defined in the
    dispatcher, which this package must not import. ``tests/unit/contracts`` resolves each.
    """

    topic: str
    messages: tuple[str, ...]
    publishers: tuple[str, ...]
    subscribers: tuple[str, ...]
    note: str = ""


TRAFFIC: tuple[Traffic, ...] = (
    Traffic(
        VOICE_EVENTS.name,
        ("EventEnvelope",),
        (INGRESS,),
        (WORKER,),
        "Each verified webhook, stored before the ingress answers Vonage.",
    ),
    Traffic(
        VOICE_EVENTS.name,
        ("CommandResult",),
        (DISPATCHER,),
        (WORKER,),
        "What happened to each command, for the call's state machine.",
    ),
    Traffic(
        VOICE_COMMANDS.name,
        ("CommandEnvelope",),
        (WORKER, CAMPAIGN_CONTROLLER, AGENTS, INGRESS, EXTERNAL),
        (DISPATCHER,),
        "Voice/Application API operations; the ingress writes those of POST /v1/commands.",
    ),
    Traffic(
        VOICE_OUTCOMES.name,
        ("Outcome",),
        (WORKER,),
        (EXTERNAL,),
        "One final record per leg and per conversation.",
    ),
    Traffic(
        VOICE_STATE.name,
        ("VoiceStateRecord",),
        (WORKER,),
        (WORKER, INGRESS),
        "The worker restores from it; the control API reads it for GET /v1/calls/{flow_key}.",
    ),
    Traffic(
        VOICE_DLQ.name,
        ("DeadLetter",),
        (WORKER, DISPATCHER, CAMPAIGN_CONTROLLER, AGENTS),
        (EXTERNAL,),
        "For operators: every record that could not be processed, with the reason.",
    ),
    Traffic(
        DISPATCH_LEDGER.name,
        ("LedgerEntry",),
        (DISPATCHER,),
        (DISPATCHER,),
        "Internal: the never-dial-twice ledger, restored by the partition's new owner.",
    ),
    Traffic(
        CAMPAIGN_CONTROL.name,
        ("CampaignControl",),
        (INGRESS, EXTERNAL),
        (CAMPAIGN_CONTROLLER,),
        "Operators' requests (control API, `orchestrator campaign`).",
    ),
    Traffic(
        CAMPAIGN_CONTROL.name,
        ("CampaignTick",),
        (CAMPAIGN_CONTROLLER,),
        (CAMPAIGN_CONTROLLER,),
        "The controller's clock ticks.",
    ),
    Traffic(
        CAMPAIGN_CONTROL.name,
        ("CommandResult",),
        (DISPATCHER,),
        (CAMPAIGN_CONTROLLER,),
        "The results of the campaign's commands (their `reply_to`), keyed by campaign.",
    ),
    Traffic(
        CAMPAIGN_CONTROL.name,
        ("Outcome",),
        (WORKER,),
        (CAMPAIGN_CONTROLLER,),
        "The outcomes of the campaign calls' legs, keyed by campaign (read from the call_ref).",
    ),
    Traffic(
        CAMPAIGN_CONTROL.name,
        ("LegMilestone",),
        (WORKER,),
        (CAMPAIGN_CONTROLLER,),
        "Agent campaigns: a call's AMD result (human or machine) as it happens, keyed by campaign.",
    ),
    Traffic(
        CAMPAIGN_CONTROL.name,
        ("AgentNotice",),
        (AGENTS,),
        (CAMPAIGN_CONTROLLER,),
        "Agent campaigns: which agent took a call and after what wait, abandoned calls, and the "
        "agents' load (throttled), keyed by campaign.",
    ),
    Traffic(
        CAMPAIGN_STATE.name,
        ("CampaignStateRecord",),
        (CAMPAIGN_CONTROLLER,),
        (CAMPAIGN_CONTROLLER, INGRESS, EXTERNAL),
        "Restored by the controller; read for status by the control API and the CLI.",
    ),
    Traffic(
        CAMPAIGN_RESULTS.name,
        ("ContactResult",),
        (CAMPAIGN_CONTROLLER,),
        (INGRESS, EXTERNAL),
        "Exactly one final result per contact.",
    ),
    Traffic(
        CAMPAIGN_UPLOADS.name,
        ("ContactRow",),
        (INGRESS,),
        (CAMPAIGN_CONTROLLER,),
        "Contacts uploaded with POST /v1/campaigns (key `{upload id}/contacts`); the same "
        "upload's do-not-call numbers are plain-text E.164 values under `{upload id}/dnc`.",
    ),
    Traffic(
        AGENTS_CONTROL.name,
        ("AgentCommand",),
        (INGRESS, EXTERNAL),
        (AGENTS,),
        "Log an agent in (with the profile) or out, or mark them available or offline "
        "(PUT /v1/agents/{id}/state, or another service such as an agent desktop); key = agent id.",
    ),
    Traffic(
        AGENTS_CONTROL.name,
        ("AgentCall",),
        (CAMPAIGN_CONTROLLER, WORKER),
        (AGENTS,),
        "Internal: a campaign's reserve and demand (controller) and the callee's and agent "
        "legs' facts (worker), keyed by the callee's call_ref (demand: by campaign).",
    ),
    Traffic(
        AGENTS_CONTROL.name,
        ("CommandResult",),
        (DISPATCHER,),
        (AGENTS,),
        "The results of the agents app's commands (agent legs, abandon transfers): their "
        "`reply_to`.",
    ),
    Traffic(
        AGENTS_CONTROL.name,
        ("AgentsTick",),
        (AGENTS,),
        (AGENTS,),
        "The agents app's clock ticks (deadlines and wrap-ups are decided when read back).",
    ),
    Traffic(
        AGENTS_STATE.name,
        ("AgentPoolRecord",),
        (AGENTS,),
        (AGENTS, INGRESS, EXTERNAL),
        "Restored by the agents app; read by GET /v1/agents.",
    ),
    Traffic(
        CONTACTS_SOURCE,
        ("ContactRow",),
        (EXTERNAL,),
        (CAMPAIGN_CONTROLLER,),
        "The topic named by a campaign file's contacts.topic, read in offset order.",
    ),
)
