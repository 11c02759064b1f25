"""Record headers and call traces: the pure parts (formats, derivation, bad input)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestrator.kafka.headers import record_headers, traceparent_of, valid_traceparent
from orchestrator.tracing import Tracing, call_traceparent, tracing_for, use_exporter

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_headers_carry_type_version_and_trace() -> None:
    assert record_headers("Outcome", 1, GOOD) == [
        ("type", b"Outcome"),
        ("schema_version", b"1"),
        ("traceparent", GOOD.encode()),
    ]
    assert record_headers("Outcome", 2) == [("type", b"Outcome"), ("schema_version", b"2")]


def test_a_well_formed_traceparent_is_read_back() -> None:
    assert traceparent_of(record_headers("X", 1, GOOD)) == GOOD


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"garbage",
        GOOD.upper().encode(),  # hex must be lower case
        GOOD.replace("-01", "-0").encode(),
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01").encode(),  # all-zero trace id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01").encode(),  # zero span id
        ("ff" + GOOD[2:]).encode(),  # version ff is invalid; only 00 is understood
        GOOD.encode() + b"-extra",
    ],
)
def test_a_malformed_traceparent_is_ignored(value: bytes) -> None:
    assert traceparent_of([("traceparent", value)]) is None


@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=80)), max_size=5))
def test_any_headers_from_outside_give_a_valid_trace_or_none(
    headers: list[tuple[str, bytes]],
) -> None:
    found = traceparent_of(headers)
    assert found is None or valid_traceparent(found)


@given(st.text(min_size=1, max_size=300))
def test_a_call_trace_is_valid_and_the_same_everywhere(flow_key: str) -> None:
    tp = call_traceparent(flow_key)
    assert valid_traceparent(tp)
    assert tp == call_traceparent(flow_key)


def test_different_calls_have_different_traces() -> None:
    ids = {call_traceparent(f"camp.abc.{i}.1").split("-")[1] for i in range(1000)}
    assert len(ids) == 1000


def test_tracing_off_passes_the_context_on_unchanged() -> None:
    off = Tracing("worker", None)
    with off.span("worker apply", GOOD) as child:
        assert child == GOOD


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    use_exporter(exp)
    try:
        yield exp
    finally:
        use_exporter(None)


def test_tracing_on_makes_a_child_in_the_same_trace(exporter: InMemorySpanExporter) -> None:
    tracing = tracing_for("worker")
    assert tracing.enabled
    with tracing.span("worker apply", GOOD, attributes={"voice.key": "k"}) as child:
        assert valid_traceparent(child)
        assert child.split("-")[1] == GOOD.split("-")[1]
        assert child.split("-")[2] != GOOD.split("-")[2]
    (span,) = exporter.get_finished_spans()
    assert span.name == "worker apply"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == GOOD.split("-")[2]
    assert span.attributes is not None and span.attributes["voice.role"] == "worker"


def test_a_failing_step_is_recorded_on_its_span(exporter: InMemorySpanExporter) -> None:
    tracing = tracing_for("dispatcher")
    with pytest.raises(RuntimeError), tracing.span("dispatcher create_call", GOOD):
        raise RuntimeError("boom")
    (span,) = exporter.get_finished_spans()
    assert not span.status.is_ok
