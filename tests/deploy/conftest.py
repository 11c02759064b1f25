"""Fixtures for the deploy checks: one kubectl per session, and throw-away copies of ``deploy/``.

Every "broken manifest" test edits a copy under ``tmp_path`` and runs the same checks as
``make deploy-check`` on it, so the real tree is never touched.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from deploy.check import DEPLOY_DIR, Report, run_checks  # noqa: E402
from deploy.check.helm import Helm, ensure_helm  # noqa: E402
from deploy.check.kubectl import Kubectl, ensure_kubectl  # noqa: E402
from deploy.check.promtool import Promtool, ensure_promtool  # noqa: E402

# Build-context entries the Dockerfile copies; linked into each copy so its COPY check holds.
CONTEXT_ENTRIES = ("pyproject.toml", "README.md", "contracts", "handlers", "orchestrator")


@pytest.fixture(scope="session")
def kubectl() -> Kubectl:
    messages: list[str] = []
    found = ensure_kubectl(messages.append)
    if found is None:
        pytest.skip(
            "kubectl with kustomize >= 4.5 unavailable and not installable here: "
            + "; ".join(messages)
        )
    return found


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """A copy of ``deploy/`` inside a fake repository root; returns the copy's deploy dir."""
    target = tmp_path / "deploy"
    shutil.copytree(DEPLOY_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for entry in CONTEXT_ENTRIES:
        if (REPO_ROOT / entry).exists():
            (tmp_path / entry).symlink_to(REPO_ROOT / entry)
    return target


@pytest.fixture
def check(kubectl: Kubectl, promtool: Promtool) -> Callable[[Path], Report]:
    """Every check but the Helm chart's (tests of other rules skip its cost)."""

    def run(deploy_dir: Path) -> Report:
        return run_checks(deploy_dir, kubectl=kubectl, promtool=promtool, chart=False)

    return run


@pytest.fixture
def check_all(kubectl: Kubectl, promtool: Promtool, helm: Helm) -> Callable[[Path], Report]:
    """Every check, the Helm chart's included: what `make deploy-check` runs."""

    def run(deploy_dir: Path) -> Report:
        return run_checks(deploy_dir, kubectl=kubectl, promtool=promtool, helm=helm)

    return run


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    messages: list[str] = []
    found = ensure_promtool(messages.append)
    if found is None:
        pytest.fail("promtool unavailable and not installable here: " + "; ".join(messages))
    return found


@pytest.fixture(scope="session")
def helm() -> Helm:
    messages: list[str] = []
    found = ensure_helm(messages.append)
    if found is None:
        pytest.fail("helm unavailable and not installable here: " + "; ".join(messages))
    return found
