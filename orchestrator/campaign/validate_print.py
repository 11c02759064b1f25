"""How ``campaign validate`` (and ``start --dry-run``) shows its :class:`Report` on a terminal.

Errors first, one line each (``file:line: field: message``), because they are what the operator
has to act on; then what the campaign will do: counts, pacing, retries, sample NCCOs. Everything
fits 80 columns (the width of a console that is not a terminal).
"""

from __future__ import annotations

import orjson
from rich.console import Console
from rich.table import Table

from orchestrator.campaign.console import make_console
from orchestrator.campaign.validate import MEAN_CALL_S, Report

__all__ = ["print_report", "seconds_text"]


def seconds_text(s: float | None) -> str:
    if s is None:
        return "-"
    if s == float("inf"):
        return "never (no pacing)"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _retry_table(report: Report) -> Table:
    t = Table(title="retries per disposition", title_justify="left", box=None, padding=(0, 2))
    t.add_column("disposition")
    t.add_column("delay", justify="right")
    t.add_column("attempts in total", justify="right")
    for disposition, delay, attempts in report.retry:
        t.add_row(disposition, seconds_text(delay) if attempts > 1 else "-", str(attempts))
    return t


def print_report(report: Report, console: Console | None = None) -> None:
    out = console or make_console()
    err = make_console(stderr=True)
    for line in report.lines():
        err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    for note in report.warnings:
        err.print(f"warning: {note}", markup=False, highlight=False, soft_wrap=True)
    verdict = "OK" if report.ok else f"{len(report.problems)} error(s)"
    out.print(f"campaign {report.campaign}: {verdict}", markup=False)
    if report.rows is not None:
        out.print(
            f"contacts: {report.rows} rows, {report.invalid} invalid, {report.dnc} on the DNC "
            f"list, {report.dialable} to dial",
            markup=False,
        )
    out.print(
        f"pacing: {report.cps:g} CPS, at most {report.max_concurrent} calls at once",
        markup=False,
    )
    if report.estimate_s is not None:
        out.print(
            f"estimated: {seconds_text(report.estimate_s)} for the first attempts (calls of "
            f"{MEAN_CALL_S:.0f} s assumed; retries and calling hours come on top)",
            markup=False,
        )
    out.print(_retry_table(report))
    for sample in report.samples:
        out.print(f"sample: row {sample['row']} ({sample['number']})", markup=False)
        for action in sample.get("ncco", []):  # one action a line: long texts wrap, not scroll
            out.print("  " + orjson.dumps(action).decode(), markup=False, highlight=False)
        for url in sample.get("answer_url", []):
            out.print(f"  answer_url: {url}", markup=False, highlight=False)
