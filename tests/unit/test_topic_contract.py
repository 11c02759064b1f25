"""The topic contract's rules, on facts as the cluster reports them."""

from __future__ import annotations

from contracts.topics import MAX_RECORD_BYTES, topics
from orchestrator.kafka.topic_contract import TopicFacts, check


def _facts(**changes: dict[str, str] | int) -> dict[str, TopicFacts]:
    out = {}
    for spec in topics("p."):
        cfg = dict(spec.config)
        override = changes.get(spec.name.removeprefix("p.").replace(".", "_").replace("-", "_"))
        partitions = spec.partitions
        if isinstance(override, dict):
            cfg.update(override)
        elif isinstance(override, int):
            partitions = override
        out[spec.name] = TopicFacts(spec.name, partitions, 3, cfg)
    return out


def test_the_generated_config_keeps_the_contract() -> None:
    assert check(topics("p."), _facts()) == []


def test_each_rule() -> None:
    found = check(
        topics("p."),
        _facts(
            voice_state={"cleanup.policy": "compact,delete"},
            voice_outcomes={"cleanup.policy": "compact"},
            voice_dlq={"max.message.bytes": str(MAX_RECORD_BYTES - 1)},
            campaign_results={"min.insync.replicas": "1"},
            voice_dispatch_ledger=6,
        ),
    )
    got = {(m.topic, m.problem.split(" (")[0].split(":")[0]) for m in found}
    assert got == {
        ("p.voice.state", "cleanup.policy is 'compact,delete', needs 'compact'"),
        ("p.voice.outcomes", "cleanup.policy is 'compact', needs 'delete'"),
        (
            "p.voice.dlq",
            f"max.message.bytes is {MAX_RECORD_BYTES - 1}, needs at least {MAX_RECORD_BYTES}",
        ),
        ("p.campaign.results", "min.insync.replicas is 1 with 3 replicas, needs at least 2"),
        ("p.voice.dispatch-ledger", "6 partitions, but p.voice.commands has 12"),
    }


def test_a_missing_topic_is_named() -> None:
    facts = _facts()
    del facts["p.campaign.uploads"]
    assert [str(m) for m in check(topics("p."), facts)] == ["p.campaign.uploads: missing"]


def test_the_agent_pool_topics_have_exactly_one_partition() -> None:
    # TOPIC_PARTITIONS (local use) does not reach them: one owner must see every agent.
    assert {s.name: s.partitions for s in topics("p.", 3) if "agents" in s.name} == {
        "p.agents.control": 1,
        "p.agents.state": 1,
    }
    found = check(topics("p."), _facts(agents_control=2, agents_state=2))
    assert sorted(str(m).split(" (")[0] for m in found) == [
        "p.agents.control: 2 partitions, needs exactly 1",
        "p.agents.state: 2 partitions, needs exactly 1",
    ]
