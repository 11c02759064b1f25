"""The topic contract: what the product's guarantees assume of each topic, checked on the cluster.

A role that starts on a topic the contract does not hold for would break a guarantee quietly,
not loudly: a changelog with ``cleanup.policy=delete`` loses state after a week, a changelog
whose partition count differs from its input topic's restores another partition's keys, a
``max.message.bytes`` under what the product writes crash-loops a role on the first large record,
and ``min.insync.replicas=1`` lets ``acks=all`` mean "on one disk". So each role reads the
topics' metadata and configuration at start-up and refuses to run on a mismatch, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import COPARTITIONED, MAX_RECORD_BYTES, TopicSpec

__all__ = ["Mismatch", "TopicFacts", "check", "describe"]

_CHECKED = ("cleanup.policy", "min.insync.replicas", "max.message.bytes")


@dataclass(frozen=True, slots=True)
class TopicFacts:
    """What the cluster says about one topic."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Mismatch:
    topic: str
    problem: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.problem}"


async def describe(admin: AIOKafkaAdminClient, names: Iterable[str]) -> dict[str, TopicFacts]:
    """Partitions, replication and the checked configuration of every named topic that exists."""
    names = list(names)
    meta = {t["topic"]: t for t in await admin.describe_topics(names)}
    present = [n for n in names if n in meta and meta[n]["error_code"] == 0]
    configs: dict[str, dict[str, str]] = {n: {} for n in present}
    if present:
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
        for response in await admin.describe_configs(resources):
            for _err, _msg, _type, name, entries in response.resources:
                for entry in entries:
                    key, value = entry[0], entry[1]
                    if key in _CHECKED and name in configs:
                        configs[name][key] = value
    out: dict[str, TopicFacts] = {}
    for name in present:
        parts = meta[name]["partitions"]
        replicas = min((len(p["replicas"]) for p in parts), default=0)
        out[name] = TopicFacts(name, len(parts), replicas, configs[name])
    return out


def check(specs: Iterable[TopicSpec], facts: Mapping[str, TopicFacts]) -> list[Mismatch]:
    """Every way the cluster's topics differ from what the product relies on."""
    specs = list(specs)
    by_base = {_base(s): s for s in specs}
    out: list[Mismatch] = []
    for spec in specs:
        found = facts.get(spec.name)
        if found is None:
            out.append(Mismatch(spec.name, "missing"))
            continue
        if spec.single_partition and found.partitions != 1:
            out.append(
                Mismatch(
                    spec.name,
                    f"{found.partitions} partitions, needs exactly 1 (one owner must see every "
                    "agent and call in one order)",
                )
            )
        policy = found.config.get("cleanup.policy", "")
        wanted = "compact" if spec.compacted else "delete"
        if policy != wanted:
            why = (
                "a changelog must keep every key's latest value"
                if spec.compacted
                else "compaction would drop records that share a key"
            )
            out.append(
                Mismatch(spec.name, f"cleanup.policy is {policy!r}, needs {wanted!r} ({why})")
            )
        size = _int(found.config.get("max.message.bytes"))
        if size is not None and size < MAX_RECORD_BYTES:
            out.append(
                Mismatch(
                    spec.name,
                    f"max.message.bytes is {size}, needs at least {MAX_RECORD_BYTES} "
                    "(the largest record the product writes)",
                )
            )
        isr = _int(found.config.get("min.insync.replicas"))
        if found.replication_factor >= 3 and isr is not None and isr < 2:
            out.append(
                Mismatch(
                    spec.name,
                    f"min.insync.replicas is {isr} with {found.replication_factor} replicas, "
                    "needs at least 2 (acks=all would be acknowledged by one broker)",
                )
            )
    for left, right in COPARTITIONED:
        a, b = by_base.get(left.name), by_base.get(right.name)
        if a is None or b is None or a.name not in facts or b.name not in facts:
            continue
        na, nb = facts[a.name].partitions, facts[b.name].partitions
        if na != nb:
            out.append(
                Mismatch(
                    b.name,
                    f"{nb} partitions, but {a.name} has {na}: they must be co-partitioned "
                    "(partition p of one holds the state of partition p of the other)",
                )
            )
    return out


def _base(spec: TopicSpec) -> str:
    """The unprefixed name (``t1.voice.state`` -> ``voice.state``) for the co-partition table."""
    for left, right in COPARTITIONED:
        for s in (left, right):
            if spec.name.endswith(s.name):
                return s.name
    return spec.name


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
