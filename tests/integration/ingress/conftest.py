"""The ingress app in-process (httpx.ASGITransport, lifespan entered) against the real broker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from contracts.flow import FlowSet
from orchestrator.config import Settings
from orchestrator.ingress.asgi import IngressOptions, create_app
from orchestrator.ingress.flows import load_flows
from orchestrator.ingress.signature import sign_for_tests
from orchestrator.kafka.clients import make_consumer
from orchestrator.kafka.reading import end_offsets, partitions_of

SECRET = "integration-signature-secret-0123456789"
TOKEN = "control-token-for-tests"
EXAMPLE_FLOWS = Path(__file__).resolve().parents[3] / "examples" / "flows"


def with_secrets(settings: Settings, **extra: Any) -> Settings:
    update: dict[str, Any] = {
        "vonage_signature_secret": SecretStr(SECRET),
        "control_api_token": SecretStr(TOKEN),
    }
    update.update(extra)
    return settings.model_copy(update=update)


def signed_headers(body: bytes, secret: str = SECRET, **claims: Any) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {sign_for_tests(secret, body, **claims)}",
        "Content-Type": "application/json",
    }


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
            yield client


@dataclass
class Ingress:
    app: Starlette
    client: httpx.AsyncClient
    settings: Settings

    async def post(self, path: str, payload: Any, **claims: Any) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return await self.client.post(path, content=body, headers=signed_headers(body, **claims))

    @property
    def events_topic(self) -> str:
        return f"{self.settings.topic_prefix}voice.events"


AppFactory = Callable[..., AbstractAsyncContextManager[Ingress]]


@pytest.fixture
def make_ingress(kafka_settings: Settings) -> AppFactory:
    """Build and start an ingress app; keyword arguments go to ``create_app``."""

    @asynccontextmanager
    async def factory(
        settings: Settings | None = None,
        flows: FlowSet | None = None,
        options: IngressOptions | None = None,
        **kw: Any,
    ) -> AsyncIterator[Ingress]:
        s = settings or with_secrets(kafka_settings)
        app = create_app(
            s,
            flows=flows if flows is not None else load_flows(EXAMPLE_FLOWS),
            options=options or IngressOptions(publish_deadline=5.0),
            **kw,
        )
        async with running(app) as client:
            yield Ingress(app, client, s)

    return factory


async def read_topic(
    settings: Settings, topic: str, *, expect: int = 1, within: float = 10.0
) -> list[tuple[bytes | None, Any]]:
    """Every record on ``topic`` from the beginning, until ``expect`` were seen or ``within`` s passed."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        deadline = time.monotonic() + within
        tps = await partitions_of(consumer, topic, within=within)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes | None, Any]] = []
        while len(out) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out += [(r.key, orjson.loads(r.value) if r.value else None) for r in records]
        return out
    finally:
        await consumer.stop()


async def topic_size(settings: Settings, topic: str) -> int:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        return sum((await end_offsets(consumer, await partitions_of(consumer, topic))).values())
    finally:
        await consumer.stop()
