"""The metric names a PromQL expression (or a Grafana variable query) selects.

Not a full parser (promtool checks the syntax): strings, label matchers, ranges and the label
lists of ``by``/``without``/``on``/``ignoring``/``group_*`` are removed, and what is left that
looks like a name, is not called like a function and is not a keyword, is a metric name.
Grafana's ``$variables`` are replaced first (:func:`grafana_to_promql`), so a dashboard's queries
can be checked like rule expressions.
"""

from __future__ import annotations

import re

__all__ = ["grafana_to_promql", "metric_names", "variable_query_metrics"]

_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "start",
        "end",
    }
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")

#: Grafana's built-in interval variables, replaced by a typical value for checking.
_GRAFANA_DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
_GRAFANA_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with its ``$variables`` replaced: durations by a duration, others by
    ``.+`` (they only appear inside label matchers' regular expressions)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return _GRAFANA_DURATIONS.get(name, ".+")

    return _GRAFANA_VAR.sub(sub, expr)


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    names = set()
    for m in _IDENT.finditer(text):
        ident, call = m.group(1), m.group(2)
        if call or ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names


def variable_query_metrics(query: str) -> set[str]:
    """Metrics a Grafana variable query reads: ``label_values(m, label)``, ``query_result(...)``,
    ``metrics(regex)`` (none), ``label_names()`` (none)."""
    m = re.fullmatch(r"\s*label_values\s*\((.*)\)\s*", query, re.S)
    if m:
        args = m.group(1)
        depth, cut = 0, None
        for i, ch in enumerate(args):  # the selector is what comes before the top-level comma
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
            elif ch == "," and depth == 0:
                cut = i
        return metric_names(args[:cut]) if cut is not None else set()
    m = re.fullmatch(r"\s*query_result\s*\((.*)\)\s*", query, re.S)
    if m:
        return metric_names(grafana_to_promql(m.group(1)))
    return set()
