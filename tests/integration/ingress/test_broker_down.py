"""Broker loss: the ingress answers 503 (never 2xx) and nothing is half-written.

Uses its own broker (not the session one), because it kills it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from contracts.envelopes import EventEnvelope
from orchestrator.ingress.asgi import IngressOptions, create_app
from orchestrator.ingress.flows import load_flows
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker
from tests.conftest import make_settings
from tests.integration.ingress.conftest import (
    EXAMPLE_FLOWS,
    read_topic,
    running,
    signed_headers,
    with_secrets,
)
from tests.integration.ingress.test_webhooks import ANSWER, STARTED

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    b = LocalBroker().start()
    try:
        yield b
    finally:
        b.stop()


async def _wait_ready(client: object, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        resp = await client.get("/readyz")  # type: ignore[attr-defined]
        if resp.status_code == 200:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"not ready: {resp.text}")


async def test_broker_down_gives_503_and_a_retry_stores_exactly_once(
    own_broker: LocalBroker,
) -> None:
    settings = with_secrets(make_settings(own_broker.bootstrap))
    await ensure_topics(settings, create=True)
    topic = f"{settings.topic_prefix}voice.events"
    app = create_app(
        settings,
        flows=load_flows(EXAMPLE_FLOWS),
        options=IngressOptions(publish_deadline=1.0),
    )
    async with running(app) as client:
        ok_body = orjson.dumps({**STARTED, "status": "ringing"})
        resp = await client.post(
            "/webhooks/event/ref-ok", content=ok_body, headers=signed_headers(ok_body)
        )
        assert resp.status_code == 204

        own_broker.kill()

        event_body = orjson.dumps(STARTED)
        event_headers = signed_headers(event_body, jti=str(uuid.uuid4()))
        answer_body = orjson.dumps(ANSWER)
        answer_headers = signed_headers(answer_body, jti=str(uuid.uuid4()))
        started = time.monotonic()
        resp = await client.post(
            "/webhooks/event/ref-down", content=event_body, headers=event_headers
        )
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"] == "1"
        assert time.monotonic() - started < 5, "answered within the deadline, not hung"
        # An answer callback is refused too: Vonage retries, then uses the fallback URL.
        resp = await client.post(
            "/webhooks/answer/ref-down", content=answer_body, headers=answer_headers
        )
        assert resp.status_code == 503
        assert (await client.get("/readyz")).status_code == 503

        # The broker comes back with its storage. Vonage retries with the same token, which was
        # released, not burnt, by the failed attempt.
        own_broker.start()
        await ensure_topics(settings, create=True)
        await _wait_ready(client)
        await asyncio.sleep(1.5)  # longer than the deadline: a late write would have landed
        for _ in range(60):  # Vonage retries for longer; a loaded machine reconnects slowly
            resp = await client.post(
                "/webhooks/event/ref-down", content=event_body, headers=event_headers
            )
            if resp.status_code != 503:
                break
            await asyncio.sleep(0.5)
        assert resp.status_code == 204, resp.text
        resp = await client.post(
            "/webhooks/answer/ref-down", content=answer_body, headers=answer_headers
        )
        assert resp.status_code == 200

    records = await read_topic(settings, topic, expect=6, within=8)
    envelopes = [EventEnvelope.model_validate(v) for _, v in records]
    # The webhook stored before the loss survived it (a real broker's storage outlives a crash).
    # Each retried webhook is stored complete. A try that was answered 503 may still land once
    # the broker is back (the producer's batch was in flight when the deadline passed): that is
    # a duplicate with the same deterministic id, which consumers drop; never a different or
    # partial record.
    assert {e.event_type for e in envelopes} == {"answer", "ringing", "started"}
    assert {e.id for e in envelopes if e.flow_key == "ref-down"} == {
        EventEnvelope.make_id("event", "ref-down", event_body),
        EventEnvelope.make_id("answer", "ref-down", answer_body),
    }
    assert len([e for e in envelopes if e.flow_key == "ref-ok"]) == 1
