"""Dashboards and alerts: they render in the production template, every metric they name is
exported by the code, and every expression parses (promtool); each check fails when broken."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.check import DEPLOY_DIR, Report
from deploy.check.exported import exported_metrics
from deploy.check.promql import grafana_to_promql, metric_names, variable_query_metrics

from .helpers import assert_fails, edit_yaml

Check = Callable[[Path], Report]
Docs = list[dict[str, Any]]


def _monitoring(deploy_dir: Path) -> Path:
    return deploy_dir / "k8s" / "monitoring"


def test_exported_names_come_from_the_roles_registries() -> None:
    names = exported_metrics()
    assert names["orchestrator_ingress_requests_total"] == ("ingress",)
    assert names["orchestrator_dispatcher_429_total"] == ("dispatcher",)
    assert names["orchestrator_runtime_lag"] == ("agents", "campaign-controller", "worker")
    assert names["orchestrator_agents_wait_seconds_bucket"] == ("agents",)
    assert names["orchestrator_campaign_last_progress_timestamp_seconds"] == (
        "campaign-controller",
    )
    assert "orchestrator_campaign_tick_lag_seconds_bucket" in names
    assert "orchestrator_ingress_requests_total_total" not in names
    assert "orchestrator_dispatcher_rate_current_total" not in names  # a gauge


def test_promql_names() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(a_bucket{x="1"}[5m]))) '
        "/ ignoring(y) group_left(z) sum without (w) (b_total) > bool 0 unless on (c) d offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "d"}
    assert metric_names(grafana_to_promql('rate(m{c=~"$campaign"}[$__rate_interval])')) == {"m"}
    assert variable_query_metrics("label_values(m{s='1'}, campaign)") == {"m"}
    assert variable_query_metrics("label_values(campaign)") == set()


def test_the_template_renders_dashboards_and_rules(check: Check) -> None:
    report = check(DEPLOY_DIR)
    assert report.ok, report.render_text()
    assert any("overlays/prod.example: 5 rule/dashboard group(s)" in n for n in report.notes)
    assert not report.skipped


def test_dashboard_query_naming_a_missing_metric_fails(deploy_copy: Path, check: Check) -> None:
    path = _monitoring(deploy_copy) / "dashboards" / "dispatcher.json"
    doc = json.loads(path.read_text())
    doc["panels"][2]["targets"][0]["expr"] = "sum(rate(orchestrator_dispatcher_429s_total[5m]))"
    path.write_text(json.dumps(doc))
    assert_fails(
        check(deploy_copy),
        "monitoring",
        "overlays/prod.example ConfigMap/voice-orchestrator-dashboards",
        "dispatcher.json: panel '429s by budget' target A names metric "
        "orchestrator_dispatcher_429s_total (did you mean orchestrator_dispatcher_429_total",
        "which no role exports",
    )


def test_variable_query_naming_a_missing_metric_fails(deploy_copy: Path, check: Check) -> None:
    path = _monitoring(deploy_copy) / "dashboards" / "campaigns.json"
    path.write_text(
        path.read_text().replace(
            "label_values(orchestrator_campaign_status,",
            "label_values(orchestrator_campaign_state,",
        )
    )
    assert_fails(
        check(deploy_copy),
        "monitoring",
        "campaigns.json: variable 'campaign' names metric orchestrator_campaign_state",
    )


def test_rule_naming_a_missing_metric_fails(deploy_copy: Path, check: Check) -> None:
    def rename(docs: Docs) -> None:
        rule = docs[0]["spec"]["groups"][0]["rules"][5]
        assert rule["alert"] == "OrchestratorCampaignStalled"
        rule["expr"] = rule["expr"].replace("last_progress_timestamp", "last_progress_time")

    edit_yaml(_monitoring(deploy_copy) / "prometheusrule.yaml", rename)
    assert_fails(
        check(deploy_copy),
        "monitoring",
        "PrometheusRule/voice-orchestrator",
        "alert OrchestratorCampaignStalled names metric orchestrator_campaign_last_progress_time_seconds",
    )


def test_rule_that_does_not_parse_fails(deploy_copy: Path, check: Check) -> None:
    def garble(docs: Docs) -> None:
        docs[0]["spec"]["groups"][0]["rules"][4]["expr"] = (
            'sum by (namespace) (rate(orchestrator_ingress_requests_total{status="503"}[5m]) > 0'
        )

    edit_yaml(_monitoring(deploy_copy) / "prometheusrule.yaml", garble)
    assert_fails(check(deploy_copy), "monitoring", "promtool check rules failed", "parse error")


def test_dashboard_query_that_does_not_parse_fails(deploy_copy: Path, check: Check) -> None:
    path = _monitoring(deploy_copy) / "dashboards" / "worker.json"
    doc = json.loads(path.read_text())
    doc["panels"][0]["targets"][0]["expr"] = (
        "sum(rate(orchestrator_runtime_events_total[$__rate_interval])"
    )
    path.write_text(json.dumps(doc))
    assert_fails(check(deploy_copy), "monitoring", "promtool check rules failed")
