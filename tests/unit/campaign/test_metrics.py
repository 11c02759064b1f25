"""Per-campaign metrics: progress copied into gauges, stalls visible, stale series removed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from contracts.campaign import CampaignControl, CampaignProgress, ControlAction, parse_campaign_yaml
from orchestrator.campaign.controller import ControllerApp
from orchestrator.campaign.metrics import FINISHED_KEEP_S, STALE_S, CampaignMetrics
from orchestrator.runtime.app import Context
from tests.conftest import make_settings

T0 = datetime(2026, 3, 3, 13, 50, tzinfo=UTC)


def _progress(**kw: object) -> CampaignProgress:
    base: dict[str, object] = {
        "campaign": "c1",
        "status": "running",
        "at": T0,
        "contacts_total": 100,
        "contacts_read": 30,
        "dialed": 20,
        "in_flight": 5,
        "finished": 15,
        "dispositions": {"answered": 10, "busy": 5},
        "dials_per_min": 120.0,
        "max_concurrent": 10,
        "cps_limit": 3.0,
    }
    return CampaignProgress.model_validate({**base, **kw})


def _value(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, {"campaign": "c1", **labels})


def test_progress_becomes_gauges_and_stalls_show() -> None:
    reg = CollectorRegistry()
    m = CampaignMetrics(reg)
    m.observe(_progress(), real=1000.0)
    assert _value(reg, "orchestrator_campaign_contacts", stage="total") == 100
    assert _value(reg, "orchestrator_campaign_contacts", stage="finished") == 15
    assert _value(reg, "orchestrator_campaign_dials_per_second") == 2.0
    assert _value(reg, "orchestrator_campaign_dispositions", disposition="busy") == 5
    assert _value(reg, "orchestrator_campaign_eta_seconds") == 85 / 120 * 60
    assert _value(reg, "orchestrator_campaign_status", status="running") == 1
    assert _value(reg, "orchestrator_campaign_last_progress_timestamp_seconds") == 1000.0
    # Nothing dialed or finished since: the progress time stays (what the stall alert reads).
    m.observe(_progress(status="paused"), real=1500.0)
    assert _value(reg, "orchestrator_campaign_last_progress_timestamp_seconds") == 1000.0
    assert _value(reg, "orchestrator_campaign_status", status="running") is None
    assert _value(reg, "orchestrator_campaign_status", status="paused") == 1
    m.observe(_progress(finished=16), real=1600.0)
    assert _value(reg, "orchestrator_campaign_last_progress_timestamp_seconds") == 1600.0


def test_series_of_a_moved_or_long_finished_campaign_go_away() -> None:
    reg = CollectorRegistry()
    m = CampaignMetrics(reg)
    m.observe(_progress(), real=0.0)
    m.observe(_progress(campaign="c2", status="completed"), real=0.0)
    m.observe(_progress(campaign="c3"), real=STALE_S + 1)
    assert _value(reg, "orchestrator_campaign_dialed") is None  # c1 moved away
    assert reg.get_sample_value("orchestrator_campaign_dialed", {"campaign": "c2"}) == 20
    m.observe(_progress(campaign="c3"), real=FINISHED_KEEP_S + 1)
    assert reg.get_sample_value("orchestrator_campaign_dialed", {"campaign": "c2"}) is None


def test_the_controller_reports_its_campaigns(tmp_path: Path) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text("number\n+447700900001\n+447700900002\n")
    spec = parse_campaign_yaml(
        f"name: c1\ncontacts: {{csv: {contacts}}}\nfrom: {{numbers: ['442079460000']}}\n"
        "flow: {ncco: [{action: talk, text: hi}]}\ncalling_hours: null\n"
    )
    reg = CollectorRegistry()
    app = ControllerApp(make_settings("127.0.0.1:9"), clock=lambda: T0.timestamp(), registry=reg)
    start = CampaignControl(
        id="ctl-1",
        occurred_at=T0,
        campaign="c1",
        action=ControlAction.START,
        spec=spec,
        contacts_total=2,
    )
    step = app.apply("c1", None, start, Context(partition=0, offset=0, timestamp_ms=0, now=5.0))
    assert step.state is not None
    app.apply("c1", step.state, start, Context(partition=0, offset=1, timestamp_ms=0, now=6.0))
    assert _value(reg, "orchestrator_campaign_contacts", stage="total") == 2
    assert _value(reg, "orchestrator_campaign_cps_limit") == 3.0


def test_an_agent_campaigns_figures_become_gauges_and_go_with_it() -> None:
    reg = CollectorRegistry()
    m = CampaignMetrics(reg)
    agents = {
        "mode": "predictive",
        "agents_free": 3,
        "agents_busy": 9,
        "agents_logged_in": 12,
        "callers_waiting": 1,
        "live_answers": 80,
        "connected": 77,
        "abandoned": 2,
        "abandon_rate": 0.025,
        "mean_wait_s": 0.8,
        "occupancy": 0.61,
        "calls_per_agent_hour": 24.5,
        "dial_level": 2.4,
        "phase": "adaptive",
    }
    m.observe(_progress(agents=agents), real=1000.0, abandon_cap=0.03)
    assert _value(reg, "orchestrator_campaign_agents", state="free") == 3
    assert _value(reg, "orchestrator_campaign_agents", state="busy") == 9
    assert _value(reg, "orchestrator_campaign_agents", state="logged_in") == 12
    assert _value(reg, "orchestrator_campaign_callers_waiting") == 1
    assert _value(reg, "orchestrator_campaign_live_answers") == 80
    assert _value(reg, "orchestrator_campaign_agent_connected") == 77
    assert _value(reg, "orchestrator_campaign_abandoned") == 2
    assert _value(reg, "orchestrator_campaign_abandon_rate") == 0.025
    assert _value(reg, "orchestrator_campaign_abandon_cap") == 0.03
    assert _value(reg, "orchestrator_campaign_agent_wait_seconds_mean") == 0.8
    assert _value(reg, "orchestrator_campaign_agent_occupancy") == 0.61
    assert _value(reg, "orchestrator_campaign_calls_per_agent_hour") == 24.5
    assert _value(reg, "orchestrator_campaign_dial_level") == 2.4
    m.forget("c1")
    assert _value(reg, "orchestrator_campaign_agents", state="free") is None
    assert _value(reg, "orchestrator_campaign_abandon_rate") is None
    # An agentless campaign has none of them.
    m.observe(_progress(), real=2000.0)
    assert _value(reg, "orchestrator_campaign_agent_occupancy") is None
