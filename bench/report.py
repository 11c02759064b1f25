"""Turn the JSON lines written by the benchmarks into one Markdown table, and put it in the README.

``make bench`` runs every benchmark with ``BENCH_RESULTS`` pointing at one file, then this script.
The table carries the machine description and the date, because a figure without them means little.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- BENCHMARKS -->", "<!-- /BENCHMARKS -->"


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def render(rows: list[dict[str, object]], command: str) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}, with `{command}`.",
        "",
        "| benchmark | figure | value | same-run baseline | baseline value | ratio | target | details |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        extra = r.get("extra") or {}
        assert isinstance(extra, dict)
        details = "; ".join(f"{k} {v}" for k, v in extra.items())
        lines.append(
            f"| {r['name']} | {r['metric']} | {_fmt(float(r['value']))} {r['unit']} | "  # type: ignore[arg-type]
            f"{r['baseline']} | {_fmt(float(r['baseline_value']))} {r['unit']} | "  # type: ignore[arg-type]
            f"{float(r['ratio']):.2f} | {r.get('target', '')} | {details} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def main() -> None:
    results = Path(sys.argv[1])
    command = sys.argv[2] if len(sys.argv) > 2 else "make bench"
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    table = render(rows, command)
    (ROOT / "bench" / "RESULTS.md").write_text("# Benchmark results\n\n" + table + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda _: f"{START}\n{table}\n{END}", text))
    print(table)


if __name__ == "__main__":
    main()
