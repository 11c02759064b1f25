"""The committed Strimzi topics must match ``contracts/topics.py`` exactly.

Semantic differences (a partition count, a retention, a missing topic) are reported one by one,
so the message says what drifted; any other difference (a hand edit) asks for regeneration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deploy import gen_topics

from .findings import Report
from .yamlio import load_all as _load_all


def _by_topic(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for d in docs:
        if d.get("kind") == "KafkaTopic":
            spec = d.get("spec") or {}
            out[str(spec.get("topicName") or d.get("metadata", {}).get("name"))] = d
    return out


def check_topics(topics_file: Path, report: Report) -> None:
    where = str(topics_file.relative_to(topics_file.parents[3]))
    fix = "regenerate with `python -m deploy.gen_topics`"
    if not topics_file.is_file():
        report.add("topics-drift", where, f"missing; {fix}")
        return
    text = topics_file.read_text()
    try:
        committed = [d for d in _load_all(text) if d]
    except yaml.YAMLError as err:
        report.add("topics-drift", where, f"not valid YAML ({err}); {fix}")
        return
    have = _by_topic(committed)
    labels = next(iter(have.values()), {}).get("metadata", {}).get("labels", {})
    cluster = labels.get("strimzi.io/cluster", gen_topics.DEFAULT_CLUSTER)
    expected_text = gen_topics.render(cluster=cluster)
    want = _by_topic([d for d in _load_all(expected_text) if d])

    before = len(report.findings)
    for name in sorted(set(want) - set(have)):
        report.add(
            "topics-drift", where, f"topic {name} is in contracts/topics.py but not here; {fix}"
        )
    for name in sorted(set(have) - set(want)):
        report.add("topics-drift", where, f"topic {name} is not in contracts/topics.py; {fix}")
    for name in sorted(set(want) & set(have)):
        w, h = want[name]["spec"], have[name].get("spec") or {}
        for key in ("partitions", "replicas"):
            if w.get(key) != h.get(key):
                report.add(
                    "topics-drift",
                    where,
                    f"topic {name}: {key} {h.get(key)} here, {w.get(key)} in contracts/topics.py; {fix}",
                )
        wc, hc = w.get("config") or {}, h.get("config") or {}
        for key in sorted(set(wc) | set(hc)):
            if str(wc.get(key)) != str(hc.get(key)):
                report.add(
                    "topics-drift",
                    where,
                    f"topic {name}: config {key}={hc.get(key)!r} here, {wc.get(key)!r} expected "
                    f"from contracts/topics.py; {fix}",
                )
    if len(report.findings) == before and text != expected_text:
        report.add(
            "topics-drift", where, f"differs from the generator's output (hand edit?); {fix}"
        )
