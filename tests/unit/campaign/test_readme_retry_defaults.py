"""The README's table of retry defaults is the one the campaign applies (issue 14: documented)."""

from __future__ import annotations

import re
from pathlib import Path

from contracts.campaign import RetryPolicy

README = Path(__file__).parents[3] / "README.md"
_ROW = re.compile(r"^\| `(\w+)`[^|]*\| ([^|]+) \| (\d+)")
_UNITS = {"s": 1, "min": 60, "h": 3600}


def test_readme_retry_table_matches_the_defaults() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("**Retries.**") :].split("\n\n")[1]
    shown = {}
    for line in table.splitlines():
        if m := _ROW.match(line):
            delay = m.group(2).strip()
            seconds = 0.0 if delay == "-" else float(delay.split()[0]) * _UNITS[delay.split()[1]]
            shown[m.group(1)] = (seconds, int(m.group(3)))
    policy = RetryPolicy()
    assert shown == {
        name: (rule.delay, rule.max_attempts)
        for name in RetryPolicy.model_fields
        if (rule := policy.rule(name)) is not None
    }
