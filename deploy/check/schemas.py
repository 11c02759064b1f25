"""Schema validation of rendered objects.

Built-in kinds go through ``kubernetes-validate --strict`` (unknown fields are errors) for every
Kubernetes version in :data:`K8S_VERSIONS`. Custom resources (KEDA, Strimzi, Prometheus Operator)
have no schema there, so they are checked against the JSON Schemas in ``deploy/schemas/``, written
from each project's documented fields. An object whose kind has neither is an error too: nothing
reaches a cluster unchecked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from .findings import Report

# Oldest supported (lifecycle.preStop.sleep is on by default from 1.30) and newest available.
FLOOR_VERSION = "1.30"


def k8s_versions() -> tuple[str, ...]:
    override = os.environ.get("DEPLOY_K8S_VERSIONS")
    if override:
        return tuple(v.strip() for v in override.split(",") if v.strip())
    import kubernetes_validate

    latest = ".".join(kubernetes_validate.latest_version().split(".")[:2])
    return (FLOOR_VERSION, latest) if latest != FLOOR_VERSION else (FLOOR_VERSION,)


def crd_schema_name(obj: dict[str, Any]) -> str:
    group = str(obj.get("apiVersion", "")).replace("/", "_")
    return f"{group}_{obj.get('kind')}.json"


@cache
def _crd_validators(schema_dir: str) -> dict[str, jsonschema.protocols.Validator]:
    resources = []
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(schema_dir).glob("*.json")):
        doc = json.loads(path.read_text())
        docs[path.name] = doc
        resources.append((doc["$id"], Resource.from_contents(doc)))
    registry: Registry = Registry().with_resources(resources)
    out: dict[str, jsonschema.protocols.Validator] = {}
    for name, doc in docs.items():
        if name.startswith("_"):
            continue
        cls = jsonschema.validators.validator_for(doc)
        cls.check_schema(doc)
        out[name] = cls(doc, registry=registry)
    return out


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def _best_errors(errors: Iterator[jsonschema.ValidationError]) -> list[str]:
    msgs = []
    for err in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        leaf = jsonschema.exceptions.best_match([err]) if err.context else err
        msgs.append(f"{_path(leaf)}: {leaf.message}")
    return msgs


@cache
def _k8s_validate(doc_json: str, version: str) -> tuple[str, str] | None:
    """(kind of problem, message) or None. Cached: most objects repeat across renders."""
    import kubernetes_validate

    obj = json.loads(doc_json)
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as err:
        return ("missing", err.message)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "(root)"
        return ("invalid", f"{path}: {err.message}")
    return None


def validate_objects(
    objects: list[dict[str, Any]], where: str, schema_dir: Path, report: Report
) -> None:
    crds = _crd_validators(str(schema_dir))
    versions = k8s_versions()
    for obj in objects:
        ident = f"{where} {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        crd = crds.get(crd_schema_name(obj))
        if crd is not None:
            for msg in _best_errors(crd.iter_errors(obj)):
                report.add("schema", ident, f"{msg} (schema deploy/schemas/{crd_schema_name(obj)})")
            continue
        doc_json = json.dumps(obj, sort_keys=True)
        problems: dict[tuple[str, str], list[str]] = {}
        for version in versions:
            problem = _k8s_validate(doc_json, version)
            if problem is not None:
                problems.setdefault(problem, []).append(version)
        for (kind, msg), failed in problems.items():
            in_versions = ", ".join(failed)
            if kind == "missing":
                report.add(
                    "schema",
                    ident,
                    f"no schema for {obj.get('apiVersion')} {obj.get('kind')} in Kubernetes "
                    f"{in_versions} nor in deploy/schemas/ (removed API, typo in apiVersion/kind, "
                    "or a custom resource that needs a schema file)",
                )
            else:
                report.add("schema", ident, f"invalid for Kubernetes {in_versions} (strict): {msg}")
