"""Hypothesis-generated junk never makes the ingress answer 5xx (>= 10,000 requests per run).

Bodies are *signed* (the fuzz targets the parser, classifier and flow renderer, not just the
signature check), and the mix includes raw bytes, arbitrary JSON, and mutations of real payloads,
sent to every endpoint shape (with and without flow/step/ctx path segments). The app runs
in-process (httpx.ASGITransport) with the real producer against the session broker, so the
bodies that are valid are really stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from orchestrator.config import Settings
from orchestrator.ingress.asgi import IngressOptions, create_app
from orchestrator.ingress.flows import load_flows
from orchestrator.ingress.signature import sign_for_tests
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker
from tests.conftest import make_settings
from tests.integration.ingress.conftest import EXAMPLE_FLOWS, SECRET, with_secrets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FUZZ_EXAMPLES = int(__import__("os").environ.get("FUZZ_N", "10000"))

KEYS = [
    "uuid",
    "call_uuid",
    "conversation_uuid",
    "conversation_uuid_from",
    "conversation_uuid_to",
    "status",
    "type",
    "to",
    "from",
    "from_user",
    "direction",
    "timestamp",
    "start_time",
    "end_time",
    "duration",
    "rate",
    "price",
    "network",
    "detail",
    "sip_code",
    "dtmf",
    "speech",
    "recording_url",
    "recording_uuid",
    "size",
    "reason",
    "original_request",
    "custom_data",
    "sub_state",
    "headers",
    "transcription_url",
]
STATUSES = [
    "started",
    "ringing",
    "answered",
    "busy",
    "cancelled",
    "unanswered",
    "rejected",
    "failed",
    "timeout",
    "disconnected",
    "completed",
    "human",
    "machine",
    "input",
    "record",
    "recording",
    "transcribed",
    "transfer",
    "error",
    "success",
    "failure",
    "bogus",
    "",
]
BASE = {
    "uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "conversation_uuid": "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "to": "447700900001",
    "from": "447700900000",
    "status": "started",
    "timestamp": "2020-01-01T12:00:00.000Z",
}


def _dumps(value: Any) -> bytes:
    # stdlib json: also writes integers beyond 64 bits, which the ingress must refuse cleanly.
    return json.dumps(value).encode()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(STATUSES)
    | st.sampled_from(["2020-01-01 12:00:00", "2020-13-45T99:99:99Z", "0.0045", "1e400", "-1"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)
mutated = st.builds(
    lambda base, drop, extra: _dumps({**{k: v for k, v in base.items() if k not in drop}, **extra}),
    st.just(BASE),
    st.sets(st.sampled_from(sorted(BASE)), max_size=3),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5),
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(_dumps),
    mutated,
    mutated,
    mutated,
)
segment = st.one_of(
    st.sampled_from(
        [
            "ivr",
            "menu",
            "sales",
            "voicemail",
            "conference",
            "pin",
            "nope",
            "eyJhIjoxfQ",
            "e30",
            "!!",
        ]
    ),
    st.text(alphabet="abcXYZ019_-.~%", min_size=1, max_size=12),
)
paths = st.builds(
    lambda kind, segs: "/webhooks/" + "/".join([kind, *segs]),
    st.sampled_from(["answer", "event", "input", "notify", "fallback", "recording", "bogus"]),
    st.lists(segment, max_size=4),
)


@pytest.fixture(scope="module")
def fuzz_settings(broker: LocalBroker) -> Iterator[Settings]:
    settings = with_secrets(make_settings(broker.bootstrap))
    asyncio.run(ensure_topics(settings, create=True))
    yield settings


def test_junk_never_gets_a_5xx(fuzz_settings: Settings) -> None:
    app = create_app(
        fuzz_settings,
        flows=load_flows(EXAMPLE_FLOWS),
        options=IngressOptions(publish_deadline=10.0),
    )
    statuses: dict[int, int] = {}
    with asyncio.Runner() as runner:
        lifespan = app.router.lifespan_context(app)
        runner.run(lifespan.__aenter__())
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ingress"
        )
        try:

            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            @given(
                path=paths,
                body=bodies,
                method=st.sampled_from(["POST", "POST", "POST", "GET"]),
                auth=st.sampled_from(
                    ["good", "good", "good", "good", "none", "junk", "wrong-hash"]
                ),
                query=st.one_of(st.just(""), st.text(max_size=60)),
            )
            def one(path: str, body: bytes, method: str, auth: str, query: str) -> None:
                signed = body if method == "POST" else b""
                headers: dict[str, Any] = {}
                if auth == "good":
                    headers["Authorization"] = f"Bearer {sign_for_tests(SECRET, signed)}"
                elif auth == "junk":
                    headers["Authorization"] = "Bearer " + body[:40].hex()
                elif auth == "wrong-hash":
                    headers["Authorization"] = f"Bearer {sign_for_tests(SECRET, b'x')}"
                resp = runner.run(
                    client.request(
                        method,
                        path,
                        content=body if method == "POST" else None,
                        params=query or None,
                        headers=headers,
                    )
                )
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                assert resp.status_code < 500, (path, body[:200], resp.text)

            one()
        finally:
            runner.run(client.aclose())
            runner.run(lifespan.__aexit__(None, None, None))
    total = sum(statuses.values())
    print(f"fuzz: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert total >= FUZZ_EXAMPLES
    # The mix reaches every layer: refused signatures, parse errors, schema errors, and stores.
    assert statuses.get(401, 0) > 0 and statuses.get(400, 0) > 0 and statuses.get(422, 0) > 0
    assert statuses.get(204, 0) + statuses.get(200, 0) > 0
