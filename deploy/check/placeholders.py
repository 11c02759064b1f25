"""Placeholders that must not reach a cluster: empty required settings and example hosts.

An overlay is a *production* overlay unless it says otherwise, so a copy is checked as strictly
as anything a user deploys, whatever they name it (fail closed):

- ``overlays/<name>.example/`` is a template (the repository's ``prod.example``). Its
  placeholders are listed as notes: they are the fields a copy must fill in. The suffix is what
  marks it, so ``cp -r prod.example prod`` (the documented first step) yields an enforced overlay.
- An overlay whose Namespace carries ``voice-orchestrator/environment: development`` (``dev``) is
  for trying things out; its placeholders are notes as well.

Every finding names the setting or field, the object, and the file to change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .contract import REQUIRED_SETTINGS, SETTINGS_CONFIGMAP
from .findings import Report
from .k8s import Obj, ident

ENVIRONMENT_LABEL = "voice-orchestrator/environment"
TEMPLATE_SUFFIX = ".example"

#: Reserved example domains (RFC 2606 / RFC 6761): nothing real answers there.
EXAMPLE_HOST_RE = re.compile(
    r"(?<![A-Za-z0-9-])(?:[A-Za-z0-9-]+\.)*(?:example\.(?:com|net|org)|[A-Za-z0-9-]+\.(?:example|invalid))(?![A-Za-z0-9-])",
    re.I,
)


def overlay_mode(directory: Path, objects: list[Obj]) -> str:
    """``template``, ``development`` or ``production`` (the default)."""
    if directory.name.endswith(TEMPLATE_SUFFIX):
        return "template"
    for obj in objects:
        labels = obj.get("metadata", {}).get("labels") or {}
        if obj.get("kind") == "Namespace" and labels.get(ENVIRONMENT_LABEL) == "development":
            return "development"
    return "production"


def _kustomization(directory: Path) -> dict[str, Any]:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = directory / name
        if path.is_file():
            doc = yaml.safe_load(path.read_text()) or {}
            return doc if isinstance(doc, dict) else {}
    return {}


def _resource_dirs(directory: Path) -> list[Path]:
    """This kustomization and the directories it includes, nearest first (who sets a value last)."""
    out = [directory]
    for res in _kustomization(directory).get("resources") or []:
        sub = (directory / str(res)).resolve()
        if sub.is_dir():
            out += _resource_dirs(sub)
    return out


def _env_keys(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {
        line.split("=", 1)[0].strip()
        for line in path.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }


def _setting_source(directory: Path, key: str, repo_root: Path) -> str:
    """The file whose configMapGenerator gives ``key`` its value (the nearest one wins)."""
    for d in _resource_dirs(directory):
        kustomization = d / "kustomization.yaml"
        for gen in _kustomization(d).get("configMapGenerator") or []:
            if gen.get("name") != SETTINGS_CONFIGMAP:
                continue
            literals = {str(x).split("=", 1)[0] for x in gen.get("literals") or []}
            if key in literals:
                return _rel(kustomization, repo_root)
            for env in gen.get("envs") or []:
                if key in _env_keys(d / str(env)):
                    return _rel(d / str(env), repo_root)
    return _rel(directory / "kustomization.yaml", repo_root)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += _strings(v, f"{path}.{k}" if path else str(k))
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out += _strings(v, f"{path}[{i}]")
        return out
    return []


def _fix_file(directory: Path, field: str, repo_root: Path) -> str:
    if ".image" in field or field.endswith("image"):
        return f"`images:` in {_rel(directory / 'kustomization.yaml', repo_root)}"
    return f"a patch in {_rel(directory / 'kustomization.yaml', repo_root)}"


def find_placeholders(directory: Path, objects: list[Obj], repo_root: Path) -> list[str]:
    """Every placeholder of one render, as ``object: field: problem; fix`` sentences."""
    found: list[str] = []
    for obj in objects:
        if obj.get("kind") == "ConfigMap" and obj["metadata"]["name"].startswith(
            SETTINGS_CONFIGMAP
        ):
            data = obj.get("data") or {}
            for key in REQUIRED_SETTINGS:
                if not str(data.get(key, "")).strip():
                    src = _setting_source(directory, key, repo_root)
                    found.append(f"{ident(obj)}: required setting {key} is empty (set it in {src})")
            for key, value in sorted(data.items()):
                m = EXAMPLE_HOST_RE.search(str(value))
                if m:
                    src = _setting_source(directory, key, repo_root)
                    found.append(
                        f"{ident(obj)}: setting {key} uses the example host {m.group(0)!r} "
                        f"(set it in {src})"
                    )
            continue
        for field, value in _strings(obj.get("spec", {}), "spec"):
            m = EXAMPLE_HOST_RE.search(value)
            if m:
                found.append(
                    f"{ident(obj)}: {field} uses the example host {m.group(0)!r} "
                    f"(set it with {_fix_file(directory, field, repo_root)})"
                )
    return found


def check_placeholders(
    where: str, directory: Path, objects: list[Obj], report: Report, repo_root: Path
) -> None:
    mode = overlay_mode(directory, objects)
    found = find_placeholders(directory, objects, repo_root)
    if mode == "production":
        for text in found:
            obj, _, message = text.partition(": ")
            report.add("placeholders", f"{where} {obj}", message)
        return
    if found:
        report.notes.append(
            f"{where} ({mode}): {len(found)} placeholder(s) a deployable copy must replace, "
            f"e.g. {found[0]}"
        )
