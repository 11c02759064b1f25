"""Headers and traces, end to end: a small campaign on the real broker and the simulator.

Every record the roles write carries ``type`` (a message name of the AsyncAPI document for its
topic), ``schema_version`` and a well-formed ``traceparent``; and one contact's call is one
trace, from the campaign's dial command through the ingress, the worker and the dispatcher to
the outcome and the contact's result, read from an in-memory span exporter.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.campaign import CampaignStatus
from contracts.topics import TOPICS, TRAFFIC, topic_name
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer
from orchestrator.kafka.headers import traceparent_of
from orchestrator.kafka.reading import partitions_of, read_to_end
from orchestrator.localbroker import LocalBroker
from orchestrator.tracing import call_traceparent, use_exporter
from tests.integration.campaign.harness import ANCHOR, campaign_spec, local_env, write_contacts

pytestmark = [pytest.mark.integration]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    use_exporter(exporter)
    try:
        yield exporter
    finally:
        use_exporter(None)  # roles started by later tests in this process trace nothing


async def _records(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    out: list[ConsumerRecord[bytes, bytes]] = []
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        await read_to_end(consumer, tps, lambda _tp, batch: out.extend(batch))
    finally:
        await consumer.stop()
    return out


def _trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


@pytest.mark.timeout(180)
async def test_every_record_has_headers_and_a_call_is_one_trace(
    broker: LocalBroker, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    n = 6
    contacts, dnc, _, _ = write_contacts(tmp_path, n, mix=(0.0, 0.0))
    async with local_env(
        broker.bootstrap, cps=10, time_scale=20, clock_scale=60, seed=3, faults=False
    ) as env:
        spec = campaign_spec(
            "traced", contacts, dnc, cap=10, hours=False, stop_at=ANCHOR + timedelta(minutes=90)
        )
        await env.start(spec, total=n)
        await env.wait_for("traced", lambda p: p.status == CampaignStatus.COMPLETED, within=120)
        await asyncio.sleep(1.0)  # the last checkpoints (outcomes, state) land
        settings = env.settings
        by_topic = {
            spec_.name: await _records(settings, topic_name(spec_, settings.topic_prefix))
            for spec_ in TOPICS
        }

    # 1. Headers on every record, with a type the AsyncAPI document lists for that topic.
    allowed: dict[str, set[str]] = defaultdict(set)
    for row in TRAFFIC:
        allowed[row.topic].update(row.messages)
    seen_types: dict[str, set[str]] = defaultdict(set)
    for topic, records in by_topic.items():
        for rec in records:
            headers = dict(rec.headers)
            where = f"{topic}@{rec.partition}:{rec.offset}"
            assert "type" in headers, f"{where}: no type header ({headers})"
            record_type = headers["type"].decode()
            if topic == "campaign.uploads":
                assert record_type in {"ContactRow", "DncNumber"}, where
            else:
                assert record_type in allowed[topic], f"{where}: type {record_type!r}"
            assert headers.get("schema_version", b"").isdigit(), where
            assert traceparent_of(rec.headers) is not None, f"{where}: traceparent {headers}"
            seen_types[topic].add(record_type)
    for topic in ("voice.events", "voice.commands", "campaign.control", "campaign.results"):
        assert by_topic[topic], f"nothing on {topic}"
    assert {"EventEnvelope", "CommandResult"} <= seen_types["voice.events"]
    assert {"CampaignControl", "CampaignTick", "CommandResult", "Outcome"} <= seen_types[
        "campaign.control"
    ]

    # Outcomes say which campaign and contact they are for (no call_ref decoding needed).
    outcomes = [
        orjson.loads(r.value or b"")
        for r in by_topic["campaign.control"]
        if dict(r.headers).get("type") == b"Outcome"
    ]
    assert outcomes and all(
        o["campaign"] == "traced" and 0 <= o["contact_index"] < n for o in outcomes
    ), outcomes[:3]

    # 2. One trace per call: the result of an answered contact is in the trace of its call, and
    # that trace holds a span of every hop.
    results = [r for r in by_topic["campaign.results"] if r.value is not None]
    answered = []
    for rec in results:
        value = orjson.loads(rec.value or b"")
        if value.get("disposition") == "answered" and value.get("call_refs"):
            answered.append((value["call_refs"][-1], traceparent_of(rec.headers)))
    assert answered, "no answered contact"
    finished = spans.get_finished_spans()
    by_trace: dict[str, set[str]] = defaultdict(set)
    for span in finished:
        by_trace[f"{span.context.trace_id:032x}"].add(span.name)
    inputs = 0
    for call_ref, result_trace in answered:
        trace_id = _trace_id(call_traceparent(call_ref))
        assert result_trace is not None and _trace_id(result_trace) == trace_id, call_ref
        names = by_trace[trace_id]
        for expected in (
            "campaign-controller apply",  # the result came back to the controller
            "dispatcher create_call",  # the Voice API request
            "webhook event",  # the ingress: status events
            "worker apply",  # the call's state machine
            "worker timer",  # the outcome, once the call was quiet
        ):
            assert expected in names, f"{call_ref}: no {expected!r} span in {sorted(names)}"
        inputs += "webhook input" in names  # the answer to "press 1", when the callee gave one
    assert inputs, "no answered call's trace holds its input webhook"
    # Spans are children of the hop before them: the dispatcher's span has a parent in the trace.
    dispatch = [s for s in finished if s.name == "dispatcher create_call"]
    assert dispatch and all(s.parent is not None for s in dispatch)
