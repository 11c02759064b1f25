"""The one way a benchmark reports: a human-readable print plus a machine-readable line.

Every benchmark measures its subject next to a baseline taken in the same run (these machines are
shared and noisy, so absolute numbers from different runs do not compare; ratios do). ``report``
prints both and appends one JSON line to ``$BENCH_RESULTS`` (if set), which ``bench/report.py``
turns into the Markdown table the README includes.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BenchResult:
    name: str  # e.g. "worker"
    metric: str  # e.g. "events/s through one worker"
    value: float
    unit: str
    baseline: str  # what the baseline is, e.g. "raw aiokafka consume+produce"
    baseline_value: float
    higher_is_better: bool = True
    target: str = ""  # e.g. ">= 20,000 events/s, ratio >= 0.5"
    extra: dict[str, Any] = field(default_factory=dict)  # p50/p99 and other figures

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("nan")


def report(result: BenchResult) -> None:
    print(
        f"[{result.name}] {result.metric}: {result.value:,.1f} {result.unit} | "
        f"baseline ({result.baseline}): {result.baseline_value:,.1f} {result.unit} | "
        f"ratio {result.ratio:.2f}"
    )
    for key, val in result.extra.items():
        print(f"[{result.name}]   {key}: {val}")
    path = os.environ.get("BENCH_RESULTS")
    if path:
        row = asdict(result) | {"ratio": result.ratio}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
