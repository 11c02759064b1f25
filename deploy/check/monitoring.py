"""Dashboards and alerts of a render: every metric they name exists, every expression parses.

A dashboard is a ConfigMap labelled ``grafana_dashboard`` (each data key one Grafana JSON); the
alerts are PrometheusRule objects. Metric names are checked against what the roles' code really
registers (:mod:`.exported`), so a renamed metric fails here instead of leaving an empty panel or
an alert that can never fire. The expressions, the dashboards' queries included, go through
``promtool check rules`` in one temporary rule file per render.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .exported import EXTERNAL_METRICS, known_metrics
from .findings import Report
from .k8s import Obj, ident
from .promql import grafana_to_promql, metric_names, variable_query_metrics
from .promtool import Promtool, check_rules

DASHBOARD_LABEL = "grafana_dashboard"

__all__ = ["DASHBOARD_LABEL", "check_monitoring", "has_monitoring"]


def has_monitoring(objects: list[Obj]) -> bool:
    return any(_is_dashboard(o) or o.get("kind") == "PrometheusRule" for o in objects)


def _is_dashboard(obj: Obj) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return obj.get("kind") == "ConfigMap" and DASHBOARD_LABEL in labels


def _panels(panels: list[Any]) -> Iterator[dict[str, Any]]:
    for p in panels:
        if isinstance(p, dict):
            yield p
            yield from _panels(p.get("panels") or [])  # collapsed rows hold their panels


def _dashboard_queries(doc: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(where in the dashboard, query, is a variable query) for every query."""
    for p in _panels(doc.get("panels") or []):
        for t in p.get("targets") or []:
            if isinstance(t, dict) and t.get("expr"):
                yield f"panel {p.get('title')!r} target {t.get('refId')}", str(t["expr"]), False
    for var in (doc.get("templating") or {}).get("list") or []:
        if var.get("type") != "query":
            continue
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if q:
            yield f"variable {var.get('name')!r}", str(q), True


def _unknown(names: set[str], known: frozenset[str]) -> list[str]:
    out = []
    for name in sorted(names - known):
        close = difflib.get_close_matches(name, known, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        out.append(f"{name}{hint}")
    return out


def check_monitoring(
    where: str, objects: list[Obj], report: Report, promtool: Promtool | None
) -> None:
    known = known_metrics()
    groups: list[dict[str, Any]] = []
    for obj in objects:
        if obj.get("kind") == "PrometheusRule":
            for group in (obj.get("spec") or {}).get("groups") or []:
                groups.append(group)
                for rule in group.get("rules") or []:
                    label = (
                        f"alert {rule['alert']}"
                        if "alert" in rule
                        else f"record {rule.get('record')}"
                    )
                    for name in _unknown(metric_names(str(rule.get("expr", ""))), known):
                        report.add(
                            "monitoring",
                            f"{where} {ident(obj)}",
                            f"{label} names metric {name}, which no role exports",
                        )
        elif _is_dashboard(obj):
            for key, text in sorted((obj.get("data") or {}).items()):
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError as err:
                    report.add("monitoring", f"{where} {ident(obj)}", f"{key}: not JSON: {err}")
                    continue
                rules = []
                for i, (place, query, is_var) in enumerate(_dashboard_queries(doc)):
                    names = variable_query_metrics(query) if is_var else metric_names(query)
                    for name in _unknown(names, known):
                        report.add(
                            "monitoring",
                            f"{where} {ident(obj)}",
                            f"{key}: {place} names metric {name}, which no role exports",
                        )
                    if not is_var:
                        rules.append(
                            {"record": f"dashboard:query:{i}", "expr": grafana_to_promql(query)}
                        )
                if rules:
                    groups.append({"name": f"dashboard {key}", "rules": rules})
    if not groups:
        return
    report.notes.append(f"{where}: {len(groups)} rule/dashboard group(s); {external_note()}")
    if promtool is None:
        report.skipped.append(
            f"{where}: promtool unavailable, so the PromQL of its rules and dashboards was NOT "
            "parsed (metric names were checked)"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        ok, output = check_rules(promtool, path)
    if not ok:
        lines = [ln for ln in output.splitlines() if ln.strip() and "Checking" not in ln]
        report.add("monitoring", where, "promtool check rules failed: " + " | ".join(lines[-6:]))


def external_note() -> str:
    return "metrics from outside the product: " + ", ".join(
        f"{k} ({v})" for k, v in sorted(EXTERNAL_METRICS.items())
    )
