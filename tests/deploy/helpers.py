"""Helpers for editing copies of the manifests and asserting on deploy-check findings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from deploy.check import Report


def edit_yaml(path: Path, fn: Callable[[list[dict[str, Any]]], None]) -> None:
    """Load every document of ``path``, let ``fn`` change them in place, write them back."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    fn(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def doc(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    for d in docs:
        if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name):
            return d
    raise AssertionError(f"no {kind}/{name} in documents")


def container(workload: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return first


def assert_fails(report: Report, rule: str, *fragments: str) -> None:
    """The report has a finding of ``rule`` whose text contains every fragment."""
    hits = [f for f in report.findings if f.rule == rule]
    assert hits, f"expected a [{rule}] finding, got:\n{report.render_text()}"
    text = "\n".join(str(f) for f in hits)
    for frag in fragments:
        assert frag in text, f"[{rule}] findings lack {frag!r}:\n{text}"
