"""The Helm chart is generated from the kustomize manifests, and checked like an overlay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.check import DEPLOY_DIR, Report
from deploy.check.helm import Helm, render_chart

from .helpers import assert_fails, container, doc, edit_yaml

Check = Callable[[Path], Report]
Docs = list[dict[str, Any]]


def _chart(deploy_dir: Path) -> Path:
    return deploy_dir / "helm" / "voice-orchestrator"


def test_chart_renders_what_the_base_defines(helm: Helm) -> None:
    objects, error = render_chart(
        helm, _chart(DEPLOY_DIR), DEPLOY_DIR / "helm" / "check-values.yaml"
    )
    assert not error
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("StatefulSet", "orchestrator-worker") in kinds
    assert ("PrometheusRule", "voice-orchestrator") in kinds
    worker = doc(objects, "StatefulSet", "orchestrator-worker")
    assert container(worker)["image"] == "registry.acme.test/voice-orchestrator:0.1.0"
    assert worker["spec"]["template"]["metadata"]["annotations"]["checksum/settings"]
    settings = doc(objects, "ConfigMap", "orchestrator-settings")["data"]
    assert settings["PUBLIC_BASE_URL"] == "https://webhooks.acme.test"


def test_a_base_change_without_regenerating_is_drift(deploy_copy: Path, check_all: Check) -> None:
    def more_memory(docs: Docs) -> None:
        container(doc(docs, "StatefulSet"))["resources"]["limits"]["memory"] = "2Gi"

    edit_yaml(deploy_copy / "k8s" / "base" / "worker.yaml", more_memory)
    assert_fails(
        check_all(deploy_copy),
        "helm-drift",
        "templates/statefulset-orchestrator-worker.yaml differs",
        "python -m deploy.gen_helm",
    )


def test_a_hand_edit_of_the_chart_is_drift(deploy_copy: Path, check_all: Check) -> None:
    path = _chart(deploy_copy) / "templates" / "service-orchestrator-worker.yaml"
    path.write_text(path.read_text().replace("port: 9100", "port: 9200"))
    assert_fails(check_all(deploy_copy), "helm-drift", "service-orchestrator-worker.yaml differs")


def test_chart_values_with_placeholders_are_refused(deploy_copy: Path, check_all: Check) -> None:
    values = deploy_copy / "helm" / "check-values.yaml"
    values.write_text(values.read_text().replace("registry.acme.test", "registry.example.com"))
    assert_fails(
        check_all(deploy_copy),
        "placeholders",
        "helm StatefulSet/orchestrator-worker",
        "uses the example host 'registry.example.com'",
    )


def test_broken_template_fails_lint(deploy_copy: Path, check_all: Check) -> None:
    path = _chart(deploy_copy) / "templates" / "_helpers.tpl"
    path.write_text(path.read_text() + "{{ if }}\n")
    report = check_all(deploy_copy)
    assert_fails(report, "helm", "helm lint failed")
    assert_fails(report, "helm-drift", "templates/_helpers.tpl differs")
