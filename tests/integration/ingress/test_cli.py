"""``orchestrator ingress`` as a user runs it: a process on a port, real HTTP, SIGTERM exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from orchestrator.config import Settings
from orchestrator.localbroker import free_port
from tests.integration.ingress.conftest import EXAMPLE_FLOWS, SECRET, read_topic, signed_headers
from tests.integration.ingress.test_webhooks import ANSWER, STARTED

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def _env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "TOPIC_PREFIX": settings.topic_prefix,
            "VONAGE_SIGNATURE_SECRET": f"old-secret-for-rotation,{SECRET}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


async def test_ingress_process_serves_and_stops_cleanly(kafka_settings: Settings) -> None:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-running child, polled over HTTP
        [
            sys.executable,
            "-m",
            "orchestrator",
            "ingress",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--flows",
            str(EXAMPLE_FLOWS),
        ],
        env=_env(kafka_settings, port),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "ingress never became ready"
                await asyncio.sleep(0.2)
            body = orjson.dumps(STARTED)
            resp = await client.post(
                "/webhooks/event/cli-1", content=body, headers=signed_headers(body)
            )
            assert resp.status_code == 204
            answer = orjson.dumps(ANSWER)
            resp = await client.post(
                "/webhooks/answer/cli-1", content=answer, headers=signed_headers(answer)
            )
            assert resp.status_code == 200 and resp.json()[0]["action"] == "talk"
            assert "orchestrator_ingress_requests_total" in (await client.get("/metrics")).text
        records = await read_topic(
            kafka_settings, f"{kafka_settings.topic_prefix}voice.events", expect=2
        )
        assert [k for k, _ in records] == [b"cli-1", b"cli-1"]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(25) == 0
        assert time.monotonic() - started < 25
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "ingress started" in out and "ingress stopped" in out
    assert SECRET not in out and "old-secret-for-rotation" not in out


def test_allow_unsigned_warns_at_start(kafka_settings: Settings) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "ingress",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--allow-unsigned",
        ],
        env=_env(kafka_settings, port, VONAGE_SIGNATURE_SECRET=""),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.post(
                    f"http://127.0.0.1:{port}/webhooks/event/u-1", content=orjson.dumps(STARTED)
                )
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert resp.status_code == 204
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(25) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "--allow-unsigned" in out  # the start-up warning
    assert "UNSIGNED webhook accepted" in out  # and one per unsigned request


def test_missing_secret_is_a_one_line_config_error(kafka_settings: Settings) -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "ingress", "--port", str(port)],
        env=_env(kafka_settings, port, VONAGE_SIGNATURE_SECRET=""),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        "config error: VONAGE_SIGNATURE_SECRET: required to verify webhooks "
        "(or --allow-unsigned, local only)"
    ]


def test_broken_flow_is_a_one_line_config_error(kafka_settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nstart: a\nsteps: {a: {goto: b}}\n")
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "ingress",
            "--port",
            str(port),
            "--flows",
            str(tmp_path),
        ],
        env=_env(kafka_settings, port),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    err = done.stderr.decode().strip()
    assert len(err.splitlines()) == 1
    assert "bad.yaml" in err and "goto target 'b' is not a step" in err
