"""The campaign tables are laid out for 80 columns: measured on a wide console, not wrapped to fit.

The consoles are capped at 80 (orchestrator/campaign/console.py), where rich would wrap or crop a
wider layout; so the layouts are rendered 200 wide here, with the largest values they show.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from contracts.campaign import CampaignProgress
from orchestrator.campaign.cli import campaigns_table, progress_table
from orchestrator.campaign.console import WIDTH, make_console

AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
BIG = CampaignProgress(
    campaign="a-campaign-name-of-forty-eight-characters-maximum",
    status="cancelling",
    at=AT,
    started_at=AT,
    contacts_total=10_000_000,
    dialed=9_999_999,
    in_flight=100_000,
    retries_pending=1_000_000,
    retries_pending_by_disposition={"busy": 333_333, "unanswered": 333_333, "timeout": 333_334},
    next_retry_at=AT + timedelta(hours=5),
    waiting_for_hours=1_000_000,
    finished=9_000_000,
    dispositions={k: 1_000_000 for k in ("answered", "machine", "busy", "unanswered", "failed",
                                          "dnc", "invalid_number", "cancelled", "expired")},
    dials_per_min=6000.0,
    max_concurrent=100_000,
    cps_limit=100.0,
)  # fmt: skip


def _width(renderable: object) -> int:
    console = Console(width=200, record=True)
    console.print(renderable)
    return max(len(line.rstrip()) for line in console.export_text().splitlines())


def test_status_fits_80_columns_with_the_largest_values() -> None:
    assert _width(progress_table(BIG)) <= WIDTH
    text = Console(width=200, record=True)
    text.print(progress_table(BIG))
    out = text.export_text()
    assert "next retry  20:00:00 UTC (in 300 min)" in out
    assert "retries waiting  busy 333333, timeout 333334, unanswered 333333" in out


def test_list_fits_80_columns() -> None:
    assert _width(campaigns_table([BIG, BIG])) <= WIDTH


def test_consoles_are_capped_at_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal
    assert make_console().width == WIDTH
    monkeypatch.setenv("COLUMNS", "60")  # a narrow one keeps its width
    assert make_console().width == 60


def test_agent_campaign_status_fits_80_columns_and_shows_the_agents() -> None:
    from contracts.campaign import AgentProgress

    agents = AgentProgress(
        mode="predictive",
        agents_free=500,
        agents_busy=500,
        agents_logged_in=500,
        callers_waiting=100,
        live_answers=9_999_999,
        connected=9_999_999,
        abandoned=999_999,
        abandon_rate=0.0312,
        mean_wait_s=12.34,
        occupancy=0.87,
        calls_per_agent_hour=123.4,
        dial_level=3.5,
        phase="adaptive",
    )
    p = BIG.model_copy(update={"agents": agents})
    assert _width(progress_table(p)) <= WIDTH
    text = Console(width=200, record=True)
    text.print(progress_table(p))
    out = text.export_text()
    assert "abandoned" in out and "3.1 %" in out and "occupancy" in out and "87 %" in out
