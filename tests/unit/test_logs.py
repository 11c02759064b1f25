"""Logging: JSON off a terminal, secrets never printed, call ids bound into every line."""

from __future__ import annotations

import io
import json

from orchestrator.config import Settings
from orchestrator.logs import bind_call, clear_call, configure_logging, get_logger


def test_json_lines_with_call_ids_and_redaction() -> None:
    out = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=out)  # type: ignore[call-arg]
    try:
        bind_call(flow_key="ref-1", uuid="leg-1", conversation_uuid=None)
        get_logger("t").info("hello", api_secret="hunter2", authorization="Bearer x", n=1)
    finally:
        clear_call()
        configure_logging(Settings(log_format="console"))  # type: ignore[call-arg]
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "hello" and line["flow_key"] == "ref-1" and line["uuid"] == "leg-1"
    assert "conversation_uuid" not in line
    assert line["api_secret"] == "**redacted**" and line["authorization"] == "**redacted**"
    assert "hunter2" not in out.getvalue()
