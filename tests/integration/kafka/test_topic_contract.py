"""The topic contract on a real broker: roles refuse topics that would break a guarantee, and no
client ever creates a topic by naming it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import VOICE_STATE
from orchestrator.config import Settings
from orchestrator.kafka.admin import (
    TopicContractError,
    ensure_topics,
    inspect_topics,
    product_topics,
)
from orchestrator.kafka.clients import make_admin, make_consumer, make_producer
from orchestrator.kafka.reading import partitions_of
from orchestrator.kafka.topic_contract import describe
from orchestrator.localbroker import LocalBroker
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "TOPIC_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        TOPIC_PREFIX=settings.topic_prefix,
        LOG_FORMAT="console",
    )
    return env


async def _create_with_state_partitions(settings: Settings, n: int) -> None:
    specs = [
        replace(s, partitions=n) if s.name.endswith(VOICE_STATE.name) else s
        for s in product_topics(settings)
    ]
    await inspect_topics(settings, create=True, specs=specs)


async def test_check_only_names_a_state_topic_not_co_partitioned_with_its_input(
    broker: LocalBroker,
) -> None:
    settings = make_settings(broker.bootstrap)
    await _create_with_state_partitions(settings, 2)  # voice.events has 3
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "orchestrator", "topics", "ensure", "--check-only"],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("mismatch:")]
    assert lines == [
        f"mismatch: {settings.topic_prefix}voice.state: 2 partitions, but "
        f"{settings.topic_prefix}voice.events has 3: they must be co-partitioned "
        "(partition p of one holds the state of partition p of the other)"
    ], done.stderr
    assert "topics ok" not in done.stdout


async def test_a_role_refuses_to_start_on_a_broken_contract_in_one_line(
    broker: LocalBroker,
) -> None:
    settings = make_settings(broker.bootstrap)
    await _create_with_state_partitions(settings, 2)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "orchestrator", "worker", "--health-port", "0"],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "config error" in line]
    assert len(errors) == 1 and "voice.state: 2 partitions" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


async def test_cleanup_policy_and_message_size_are_checked(kafka_settings: Settings) -> None:
    prefix = kafka_settings.topic_prefix
    admin = make_admin(kafka_settings)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, f"{prefix}voice.state", {"cleanup.policy": "delete"}
                ),
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    f"{prefix}voice.outcomes",
                    {"max.message.bytes": "100000"},
                ),
            ]
        )
        # The controller applies the change; the broker that answers DescribeConfigs learns it
        # from the metadata log a moment later.
        for _ in range(100):
            facts = await describe(admin, [f"{prefix}voice.state"])
            if facts[f"{prefix}voice.state"].config.get("cleanup.policy") == "delete":
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    with pytest.raises(TopicContractError) as caught:
        await ensure_topics(kafka_settings, create=False)
    message = str(caught.value)
    assert f"{prefix}voice.state: cleanup.policy is 'delete', needs 'compact'" in message
    assert f"{prefix}voice.outcomes: max.message.bytes is 100000" in message
    _, mismatches = await inspect_topics(kafka_settings, create=False)
    assert {m.topic for m in mismatches} == {f"{prefix}voice.state", f"{prefix}voice.outcomes"}


@pytest.fixture(scope="module")
def auto_creating_broker() -> Iterator[LocalBroker]:
    """A broker configured as many clusters are: it creates any topic a client asks about."""
    with LocalBroker(extra_config={"auto.create.topics.enable": "true"}) as b:
        yield b


async def test_clients_never_create_a_topic_by_naming_it(
    auto_creating_broker: LocalBroker,
) -> None:
    settings = make_settings(auto_creating_broker.bootstrap)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        assert await partitions_of(consumer, "mistyped.contacts") == []
    finally:
        await consumer.stop()
    producer = make_producer(settings, request_timeout_ms=2000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka's unknown-topic error or a timeout
            await asyncio.wait_for(producer.send_and_wait("mistyped.outcomes", b"x"), 5)
    finally:
        await producer.stop()
    admin = make_admin(settings)
    await admin.start()
    try:
        assert not {"mistyped.contacts", "mistyped.outcomes"} & set(await admin.list_topics())
    finally:
        await admin.close()
