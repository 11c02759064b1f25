"""The websocket protocol's framing: frame sizes per rate and the first text message's shape."""

from __future__ import annotations

import json

import pytest

from orchestrator.sandbox.simulator.websocket_leg import connected_message, frame_bytes


@pytest.mark.parametrize(
    ("content_type", "size"),
    [("audio/l16;rate=8000", 320), ("audio/l16;rate=16000", 640), ("audio/l16;rate=24000", 960)],
)
def test_a_frame_is_20_ms_of_16_bit_pcm(content_type: str, size: int) -> None:
    assert frame_bytes(content_type) == size


def test_first_message_flattens_headers_after_the_protocol_keys() -> None:
    endpoint = {
        "type": "websocket",
        "uri": "wss://example.com/socket",
        "content-type": "audio/l16;rate=16000",
        "headers": {"language": "en-GB", "caller-id": "447700900123", "event": "spoofed"},
    }
    text = connected_message(endpoint)
    assert list(json.loads(text).items()) == [
        ("event", "websocket:connected"),
        ("content-type", "audio/l16;rate=16000"),
        ("language", "en-GB"),
        ("caller-id", "447700900123"),
    ]
