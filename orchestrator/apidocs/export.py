"""Write the documents: JSON Schemas, ``index.json``, ``asyncapi.yaml`` and ``openapi.json``.

Output is deterministic (sorted keys, no timestamps), so a diff of the directory is a diff of the
contracts, and ``docs/api/`` can be checked against a fresh export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from contracts.schema import schema_document, summary
from contracts.topics import TOPICS, TRAFFIC
from orchestrator.apidocs.asyncapi import build_asyncapi
from orchestrator.apidocs.catalog import (
    CAMPAIGN_FILE,
    DEFAULT_BASE_URI,
    models,
    released_names,
    schema_file,
    schema_id,
    topic_spec,
)

__all__ = [
    "ASYNCAPI_FILE",
    "INDEX_FILE",
    "OPENAPI_FILE",
    "asyncapi_text",
    "export_all",
    "export_released",
    "json_text",
    "openapi_text",
    "schema_documents",
]

ASYNCAPI_FILE = "asyncapi.yaml"
OPENAPI_FILE = "openapi.json"
INDEX_FILE = "index.json"


def json_text(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_documents(
    names: list[str] | None = None, base_uri: str = DEFAULT_BASE_URI
) -> dict[str, dict[str, Any]]:
    """Standalone JSON Schema documents by model name (all models, or ``names``)."""
    catalogue = models()
    chosen = sorted(catalogue) if names is None else sorted(names)
    return {n: schema_document(n, catalogue[n], schema_id(n, base_uri)) for n in chosen}


def _topics_index(names: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in TRAFFIC:
        spec = topic_spec(row)
        entry = out.setdefault(
            row.topic,
            {
                "key": spec.key if spec else "any",
                "partitions": spec.partitions if spec else None,
                "cleanup_policy": spec.config["cleanup.policy"] if spec else None,
                "product_topic": spec is not None,
                "schemas": [],
                "traffic": [],
            },
        )
        files = [schema_file(n) for n in row.messages if n in names]
        entry["schemas"] += [f for f in files if f not in entry["schemas"]]
        entry["traffic"].append(
            {
                "schemas": files,
                "publishers": list(row.publishers),
                "subscribers": list(row.subscribers),
                "note": row.note,
            }
        )
    order = [t.name for t in TOPICS] + sorted(set(out) - {t.name for t in TOPICS})
    return {t: out[t] for t in order if t in out}


def _index(docs: dict[str, dict[str, Any]], with_documents: bool) -> dict[str, Any]:
    catalogue = models()
    index: dict[str, Any] = {
        "schemas": {
            name: {
                "file": schema_file(name),
                "$id": doc["$id"],
                "module": catalogue[name].__module__,
                "description": summary(catalogue[name]),
            }
            for name, doc in docs.items()
        },
        "topics": _topics_index(set(docs)),
        "campaign_file": schema_file(CAMPAIGN_FILE),
    }
    if with_documents:
        index["asyncapi"] = ASYNCAPI_FILE
        index["openapi"] = OPENAPI_FILE
    return index


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the document reads like the prose it holds."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def asyncapi_text() -> str:
    return yaml.dump(
        build_asyncapi(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


def openapi_text() -> str:
    """The control API's OpenAPI document, exactly what a running ingress serves."""
    from orchestrator.ingress.openapi import build_openapi

    return json_text(build_openapi())


def _write(directory: Path, docs: dict[str, dict[str, Any]], with_documents: bool) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in docs.items():
        path = directory / schema_file(name)
        path.write_text(json_text(doc), encoding="utf-8")
        written.append(path)
    (directory / INDEX_FILE).write_text(json_text(_index(docs, with_documents)), encoding="utf-8")
    if with_documents:
        (directory / ASYNCAPI_FILE).write_text(asyncapi_text(), encoding="utf-8")
        (directory / OPENAPI_FILE).write_text(openapi_text(), encoding="utf-8")
    return written


def export_all(directory: Path, base_uri: str = DEFAULT_BASE_URI) -> list[Path]:
    """Every schema, ``index.json``, ``asyncapi.yaml`` and ``openapi.json``; returns the schemas."""
    return _write(Path(directory), schema_documents(base_uri=base_uri), with_documents=True)


def export_released(directory: Path) -> list[Path]:
    """The compatibility baseline: the records' and the campaign file's schemas, and an index."""
    return _write(Path(directory), schema_documents(released_names()), with_documents=False)
