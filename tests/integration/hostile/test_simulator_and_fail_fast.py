"""The simulator never answers a bare 500; roles missing a setting they need never start.

Reproductions from issue 18: ``GET /v1/calls?record_index=18446744073709551616`` and
``GET /v2/applications?page=...`` got a text/plain 500 (orjson cannot write ints >= 2**64); a
dispatcher without ``VONAGE_PRIVATE_KEY`` (but with an API key and secret) started, said ready,
and left every create ``unknown``; ``KAFKA_BOOTSTRAP_SERVER`` (one letter short) was ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.localbroker import free_port
from orchestrator.sandbox.simulator.auth import mint_application_jwt
from tests.integration.campaign.harness import private_key_pem
from tests.integration.hostile.conftest import Target
from tests.integration.hostile.procs import ROOT, Proc, flood, start_role, watched

pytestmark = [pytest.mark.integration]

MB = 1024 * 1024
APP_ID = "aaaaaaaa-0000-4000-8000-000000000018"


@pytest.fixture(scope="module")
def pem() -> str:
    return private_key_pem()


@pytest.fixture(scope="module")
def simulator(pem: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    port = free_port()
    env = {"VONAGE_APPLICATION_ID": APP_ID, "VONAGE_PRIVATE_KEY": pem}
    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    args = ["simulate", "--port", str(port), "--api-key", "k18", "--api-secret", "s18"]
    proc = start_role(args, env, port, log, "/_sim/health")
    try:
        yield proc
    finally:
        proc.stop()


async def test_simulator_numbers_out_of_range_are_400_problems(simulator: Proc, pem: str) -> None:
    jwt = {"Authorization": f"Bearer {mint_application_jwt(APP_ID, pem)}"}
    async with httpx.AsyncClient(base_url=simulator.base_url, timeout=10) as client:
        with watched(simulator, "/_sim/health") as m:
            for query in ("record_index=18446744073709551616", "page_size=99999999999999999999"):
                r = await client.get(f"/v1/calls?{query}", headers=jwt)
                assert r.status_code == 400, r.text
                assert r.headers["content-type"] == "application/json"
                assert r.json()["title"] == "Bad Request" and r.json()["invalid_parameters"]
            for query in ("page=18446744073709551616", "page=-1", "page_size=1e400"):
                r = await client.get(f"/v2/applications?{query}", auth=("k18", "s18"))
                assert r.status_code == 400, r.text
                assert r.json()["invalid_parameters"], r.text
            r = await client.get("/_sim/ledger?since=18446744073709551616")
            assert r.status_code == 200
        m.check("simulator big ints")


async def test_simulator_caps_heads_and_bodies(simulator: Proc) -> None:
    head = b"GET /v1/calls HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer "
    body_head = (
        b"POST /v1/calls HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {500 * MB}\r\n\r\n".encode()
    )
    with watched(simulator, "/_sim/health") as m:
        big_head = await asyncio.to_thread(flood, simulator.port, head, b"A" * 65536, 100 * MB)
        big_body = await asyncio.to_thread(flood, simulator.port, body_head, b"{" * 65536, 500 * MB)
    assert big_head.status == 431, big_head
    assert big_body.status == 413, big_body
    assert b"Payload Too Large" in big_body.body
    m.check("simulator 100 MB header / 500 MB body")


def _run_until_exit(args: list[str], env: dict[str, str], health_port: int) -> tuple[int, str, int]:
    """Run a role to its exit, probing /readyz meanwhile; (exit code, output, 200s seen)."""
    full = {"PATH": "/usr/bin:/bin", **env}
    popen = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", *args],
        cwd=ROOT,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    ready = 0
    deadline = time.monotonic() + 60
    while popen.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", health_port, timeout=0.5)
            conn.request("GET", "/readyz")
            ready += conn.getresponse().status == 200
        time.sleep(0.05)
    if popen.poll() is None:
        popen.kill()
    out = popen.communicate(timeout=10)[0].decode(errors="replace")
    return popen.returncode, out, ready


def _kafka_env(target: Target) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": target.settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": target.settings.topic_prefix,
        "LOG_FORMAT": "json",
    }


async def test_dispatcher_without_private_key_exits_naming_it(target: Target) -> None:
    port = free_port()
    env = {
        **_kafka_env(target),
        "VONAGE_APPLICATION_ID": APP_ID,
        "VONAGE_API_KEY": "k18",  # does not make up for the private key
        "VONAGE_API_SECRET": "s18",
        "KAFKA_BOOTSTRAP_SERVER": "typo:9092",
    }
    args = ["dispatcher", "--health-host", "127.0.0.1", "--health-port", str(port)]
    code, out, ready = await asyncio.to_thread(_run_until_exit, args, env, port)
    assert code != 0, out
    errors = [line for line in out.splitlines() if line.startswith("config error:")]
    assert len(errors) == 1 and "VONAGE_PRIVATE_KEY" in errors[0], out
    assert ready == 0, "/readyz said ready"
    assert "KAFKA_BOOTSTRAP_SERVER is not a known setting" in out, out
    assert "did you mean KAFKA_BOOTSTRAP_SERVERS?" in out and "typo:9092" not in out


async def test_ingress_without_signature_secret_exits_naming_it(target: Target) -> None:
    port = free_port()
    args = ["ingress", "--host", "127.0.0.1", "--port", str(port)]
    code, out, ready = await asyncio.to_thread(_run_until_exit, args, _kafka_env(target), port)
    assert code != 0 and ready == 0, out
    assert any(
        line.startswith("config error: VONAGE_SIGNATURE_SECRET") for line in out.splitlines()
    ), out


async def test_dispatcher_with_the_key_by_its_path_alias_gets_ready(
    target: Target, pem: str, tmp_path: Path
) -> None:
    """The positive control: same settings plus VONAGE_PRIVATE_KEY_PATH, and it says ready."""
    key = tmp_path / "private.key"
    key.write_text(pem)
    port = free_port()
    env = {
        **_kafka_env(target),
        "VONAGE_APPLICATION_ID": APP_ID,
        "VONAGE_PRIVATE_KEY_PATH": str(key),
    }
    log = tmp_path / "dispatcher.log"
    args = ["dispatcher", "--health-host", "127.0.0.1", "--health-port", str(port)]
    proc = await asyncio.to_thread(start_role, args, env, port, log, "/healthz")
    try:
        deadline = time.monotonic() + 45
        status = 0
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline and status != 200:
                with contextlib.suppress(httpx.HTTPError):
                    status = (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code
                await asyncio.sleep(0.2)
        assert status == 200, proc.output()[-2000:]
    finally:
        await asyncio.to_thread(proc.stop)
