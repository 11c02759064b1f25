"""Role processes against the local broker's secure listeners, as users run them."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from orchestrator.runtime.shutdown import SHUTDOWN_BUDGET_S

ROOT = Path(__file__).resolve().parents[3]

#: Variables of the test runner's environment that must not leak into a role under test.
_OWN = ("VONAGE_", "KAFKA_", "TOPIC_", "ORCHESTRATOR_", "CONTROL_API", "LOG_")


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
    env.update(values)
    return env


def strimzi_mount(directory: Path, files: dict[str, bytes]) -> Path:
    """Files laid out as the kubelet mounts a Secret: each name a symlink into ``..data``."""
    data = directory / "..2026_01_01_00_00_00.000000000"
    data.mkdir(parents=True)
    for name, content in files.items():
        (data / name).write_bytes(content)
    (directory / "..data").symlink_to(data.name)
    for name in files:
        (directory / name).symlink_to(Path("..data") / name)
    return directory


@dataclass
class Finished:
    """A command that ran to its end: exit code, seconds, everything it printed."""

    name: str
    returncode: int
    seconds: float
    output: str

    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()]


async def run_to_end(name: str, args: list[str], env: dict[str, str], limit_s: float) -> Finished:
    """``orchestrator ARGS`` until it exits (killed after ``limit_s``), stdout and stderr merged."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator",
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    return Finished(name, proc.returncode or 0, time.monotonic() - started, out.decode())


@dataclass
class Role:
    """A long-running role process whose output goes to a file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "orchestrator",
                *self.args,
                env=self.env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def stop(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.terminate()
            try:
                # The role's own watch ends a stalled stop at its budget, with what it waited on.
                await asyncio.wait_for(proc.wait(), SHUTDOWN_BUDGET_S + 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return proc.returncode


async def wait_ready(url: str, role: Role, limit_s: float) -> None:
    """Until ``url`` answers 200; fails early, with the role's output, if the role exits."""
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            assert role.proc is not None
            if role.proc.returncode is not None:
                raise AssertionError(f"{role.name} exited {role.proc.returncode}:\n{role.output()}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{role.name} not ready at {url} in {limit_s}s:\n{role.output()[-3000:]}")
