"""The real ``orchestrator simulate`` process: starts, prints how to use it, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.sandbox.simulator.auth import mint_application_jwt

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sim-profile.yaml"


def test_cli_serves_https_with_a_default_application(tmp_path: Path) -> None:
    key_out = tmp_path / "app.key"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VONAGE_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "simulate",
            "--port",
            "0",
            "--tls",
            "--profile",
            str(EXAMPLE),
            "--key-out",
            str(key_out),
            "--application-id",
            "11111111-2222-3333-4444-555555555555",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "VONAGE_API_KEY" in line:
                break
        text = "".join(lines)
        base = re.search(r"simulator on (https://\S+)", text)
        ca = re.search(r"CA file (\S+)", text)
        assert base and ca, text
        assert f"VONAGE_PRIVATE_KEY={key_out}" in text
        assert "seed 2024" in text
        token = mint_application_jwt("11111111-2222-3333-4444-555555555555", key_out.read_text())
        ctx = ssl.create_default_context(cafile=ca.group(1))
        with httpx.Client(base_url=base.group(1), verify=ctx) as c:
            assert c.get("/_sim/health").json()["ok"] is True
            r = c.get("/v1/calls", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["count"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
