"""Without the sandbox (the production image), the CLI still runs the product and says why the
sandbox's commands are missing instead of failing with an import error."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Runs the CLI in a fresh interpreter in which the sandbox and the local broker tooling cannot be
# imported, as in the image (deploy/Dockerfile.dockerignore leaves them out).
_WITHOUT_SANDBOX = """
import importlib.abc, sys

class LeftOut(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        for gone in ("orchestrator.sandbox", "orchestrator.localbroker"):
            if name == gone or name.startswith(gone + "."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, LeftOut())
from orchestrator.cli import main
sys.argv = ["orchestrator", *sys.argv[1:]]
main()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_SANDBOX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_product_and_the_missing_sandbox() -> None:
    out = _run("--help")
    assert out.returncode == 0, out.stderr
    for command in ("ingress", "worker", "dispatcher", "campaign", "run", "schema", "topics"):
        assert command in out.stdout
    assert "not installed here" in out.stdout


@pytest.mark.parametrize("command", ["simulate", "demo", "check", "soak"])
def test_sandbox_command_says_the_sandbox_is_absent(command: str) -> None:
    out = _run(command, "--port", "8090")
    assert out.returncode == 1
    assert f"`orchestrator {command}`" in out.stderr
    assert "needs the sandbox (orchestrator/sandbox)" in out.stderr
    assert "Traceback" not in out.stderr


def test_broker_says_the_local_broker_tooling_is_absent() -> None:
    out = _run("broker", "--port", "0")
    assert out.returncode == 1
    assert "needs the local broker tooling (orchestrator/localbroker)" in out.stderr
    assert "Traceback" not in out.stderr
