"""``make deploy-check`` passes on the real tree and fails, clearly, on each kind of breakage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.check import DEPLOY_DIR, Report
from deploy.check.kubectl import Kubectl

from .helpers import assert_fails, container, doc, edit_yaml

Check = Callable[[Path], Report]
Docs = list[dict[str, Any]]


def base(deploy_dir: Path, name: str) -> Path:
    return deploy_dir / "k8s" / "base" / name


def test_real_tree_passes(check_all: Check) -> None:
    report = check_all(DEPLOY_DIR)
    assert report.ok, report.render_text()
    assert not report.skipped
    # 2 overlays x (namespace, SA, ConfigMap, 4 workloads, ...) + 9 topics.
    assert report.objects_checked >= 50


def test_cli_exit_codes(deploy_copy: Path, kubectl: Kubectl) -> None:
    env = {**os.environ, "KUBECTL": kubectl.path}
    cmd = [sys.executable, "-m", "deploy.check", "--no-install", "--deploy-dir"]
    root = DEPLOY_DIR.parent
    ok = subprocess.run([*cmd, str(DEPLOY_DIR)], cwd=root, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "objects checked, ok" in ok.stdout

    def drop_probe(docs: Docs) -> None:
        del container(doc(docs, "StatefulSet"))["readinessProbe"]

    edit_yaml(base(deploy_copy, "worker.yaml"), drop_probe)
    bad = subprocess.run(
        [*cmd, str(deploy_copy)], cwd=root, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "FAIL [probes]" in bad.stdout


def test_removed_readiness_probe(deploy_copy: Path, check: Check) -> None:
    def drop(docs: Docs) -> None:
        del container(doc(docs, "StatefulSet"))["readinessProbe"]

    edit_yaml(base(deploy_copy, "worker.yaml"), drop)
    assert_fails(
        check(deploy_copy),
        "probes",
        "overlays/prod.example StatefulSet/orchestrator-worker",
        "no readinessProbe",
        "before it has joined its group",
    )


def test_probe_on_wrong_port(deploy_copy: Path, check: Check) -> None:
    def move(docs: Docs) -> None:
        container(doc(docs, "StatefulSet"))["livenessProbe"]["httpGet"]["port"] = 9999

    edit_yaml(base(deploy_copy, "dispatcher.yaml"), move)
    assert_fails(check(deploy_copy), "probes", "livenessProbe port 9999", "serves health on 9101")


def test_literal_secret_in_env(deploy_copy: Path, check: Check) -> None:
    def leak(docs: Docs) -> None:
        env = container(doc(docs, "StatefulSet"))["env"]
        env.append({"name": "VONAGE_API_SECRET", "value": "s3cr3t-value"})

    edit_yaml(base(deploy_copy, "dispatcher.yaml"), leak)
    assert_fails(check(deploy_copy), "secrets", "env VONAGE_API_SECRET has a literal value")


def test_literal_secret_object(deploy_copy: Path, check: Check) -> None:
    (base(deploy_copy, "secret.yaml")).write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: voice-orchestrator-secrets\n"
        "stringData:\n  control-api-token: let-me-in\n"
    )
    kust = base(deploy_copy, "kustomization.yaml")
    kust.write_text(
        kust.read_text().replace(
            "  - serviceaccount.yaml\n", "  - serviceaccount.yaml\n  - secret.yaml\n"
        )
    )
    report = check(deploy_copy)
    assert_fails(report, "secrets", "Secret/voice-orchestrator-secrets", "literal data")
    # The file scan catches it even where no overlay renders it.
    assert any("deploy/k8s/base/secret.yaml" in f.where for f in report.findings)


def test_secret_in_configmap(deploy_copy: Path, check: Check) -> None:
    env_file = base(deploy_copy, "settings.env")
    env_file.write_text(env_file.read_text() + "CONTROL_API_TOKEN=plain-text-token\n")
    assert_fails(check(deploy_copy), "secrets", "ConfigMap key CONTROL_API_TOKEN holds a secret")


def test_private_key_anywhere_in_tree(deploy_copy: Path, check: Check) -> None:
    (deploy_copy / "k8s" / "overlays" / "dev" / "key.txt").write_text(
        "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIB...\n-----END RSA " + "PRIVATE KEY-----\n"
    )
    assert_fails(check(deploy_copy), "secrets", "key.txt", "PEM private key")


def test_keda_max_above_partitions(deploy_copy: Path, check: Check) -> None:
    def grow(docs: Docs) -> None:
        doc(docs, "ScaledObject")["spec"]["maxReplicaCount"] = 24

    edit_yaml(base(deploy_copy, "worker.yaml"), grow)
    assert_fails(
        check(deploy_copy),
        "keda-partitions",
        "ScaledObject/orchestrator-worker",
        "maxReplicaCount 24 exceeds the 12 partitions of voice.events",
    )


def test_keda_wrong_group_and_topic(deploy_copy: Path, check: Check) -> None:
    def retarget(docs: Docs) -> None:
        md = doc(docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]
        md["consumerGroup"] = "worker"
        md["topic"] = "voice.commands"

    edit_yaml(base(deploy_copy, "worker.yaml"), retarget)
    assert_fails(check(deploy_copy), "keda", "consumerGroup 'worker'", "expected 'voice.events'")


def test_keda_metadata_must_be_strings(deploy_copy: Path, check: Check) -> None:
    def numeric(docs: Docs) -> None:
        doc(docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 500

    edit_yaml(base(deploy_copy, "worker.yaml"), numeric)
    assert_fails(check(deploy_copy), "schema", "lagThreshold", "keda.sh_v1alpha1_ScaledObject.json")


def test_static_replicas_above_partitions(deploy_copy: Path, check: Check) -> None:
    kust = deploy_copy / "k8s" / "overlays" / "prod.example" / "kustomization.yaml"
    kust.write_text(kust.read_text().replace("        value: 2\n", "        value: 5\n"))
    assert_fails(
        check(deploy_copy), "replicas", "replicas 5 exceeds the 3 partitions of campaign.control"
    )


def test_replicas_next_to_autoscaler(deploy_copy: Path, check: Check) -> None:
    def pin(docs: Docs) -> None:
        doc(docs, "Deployment")["spec"]["replicas"] = 3

    edit_yaml(base(deploy_copy, "ingress.yaml"), pin)
    assert_fails(check(deploy_copy), "autoscaling", "spec.replicas is set although")


def test_grace_period_shorter_than_drain(deploy_copy: Path, check: Check) -> None:
    def shorten(docs: Docs) -> None:
        doc(docs, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 20

    edit_yaml(base(deploy_copy, "ingress.yaml"), shorten)
    assert_fails(
        check(deploy_copy), "graceful-shutdown", "terminationGracePeriodSeconds 20 < preStop 5 s"
    )


def test_ingress_without_prestop(deploy_copy: Path, check: Check) -> None:
    def drop(docs: Docs) -> None:
        del container(doc(docs, "Deployment"))["lifecycle"]

    edit_yaml(base(deploy_copy, "ingress.yaml"), drop)
    assert_fails(check(deploy_copy), "graceful-shutdown", "no preStop delay")


def test_consumer_without_static_membership(deploy_copy: Path, check: Check) -> None:
    def drop(docs: Docs) -> None:
        c = container(doc(docs, "StatefulSet"))
        c["env"] = [e for e in c["env"] if e["name"] != "INSTANCE_ID"]

    edit_yaml(base(deploy_copy, "worker.yaml"), drop)
    assert_fails(
        check(deploy_copy), "static-membership", "INSTANCE_ID must come from the downward API"
    )


def test_root_and_privileged_pod(deploy_copy: Path, check: Check) -> None:
    def rootify(docs: Docs) -> None:
        d = doc(docs, "StatefulSet")
        d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0
        del container(d)["securityContext"]["capabilities"]

    edit_yaml(base(deploy_copy, "worker.yaml"), rootify)
    assert_fails(
        check(deploy_copy),
        "security",
        "runAsUser 0 differs from the image's USER 10001 (0 is root)",
        "capabilities.drop must contain ALL",
    )


def test_token_automount(deploy_copy: Path, check: Check) -> None:
    def automount(docs: Docs) -> None:
        doc(docs, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] = True

    edit_yaml(base(deploy_copy, "ingress.yaml"), automount)
    assert_fails(
        check(deploy_copy), "service-account", "automountServiceAccountToken must be false"
    )


def test_missing_resources(deploy_copy: Path, check: Check) -> None:
    def drop(docs: Docs) -> None:
        del container(doc(docs, "StatefulSet"))["resources"]["limits"]

    edit_yaml(base(deploy_copy, "campaign-controller.yaml"), drop)
    assert_fails(check(deploy_copy), "resources", "lacks limits.memory")


def test_unknown_setting_is_flagged(deploy_copy: Path, check: Check) -> None:
    env_file = base(deploy_copy, "settings.env")
    env_file.write_text(env_file.read_text() + "KAFKA_BOOTSTRAP_SERVER=typo:9092\n")
    assert_fails(check(deploy_copy), "config", "key KAFKA_BOOTSTRAP_SERVER is not a setting")


def test_strict_schema_rejects_unknown_field(deploy_copy: Path, check: Check) -> None:
    def typo(docs: Docs) -> None:
        container(doc(docs, "Deployment"))["readinessProbes"] = {}

    edit_yaml(base(deploy_copy, "ingress.yaml"), typo)
    assert_fails(check(deploy_copy), "schema", "(strict)", "readinessProbes")


def test_internet_egress_for_worker(deploy_copy: Path, check: Check) -> None:
    def open_up(docs: Docs) -> None:
        pol = doc(docs, "NetworkPolicy", "orchestrator-dispatcher-to-vonage")
        pol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] = "worker"

    edit_yaml(base(deploy_copy, "networkpolicies.yaml"), open_up)
    assert_fails(check(deploy_copy), "network", "internet egress for the worker pods")


def test_webhooks_without_tls(deploy_copy: Path, check: Check) -> None:
    def plain(docs: Docs) -> None:
        del doc(docs, "Ingress")["spec"]["tls"]

    edit_yaml(base(deploy_copy, "ingress.yaml"), plain)
    # The overlays set their host in the TLS entry too; without one that patch has no target.
    for kust in (deploy_copy / "k8s" / "overlays").glob("*/kustomization.yaml"):
        text = re.sub(
            r"\n *- op: replace\n *path: /spec/tls/0/hosts/0\n *value: [^\n]*", "", kust.read_text()
        )
        kust.write_text(text)
    assert_fails(check(deploy_copy), "ingress-tls", "has no TLS entry")


def test_renamed_port_breaks_service_and_probes(deploy_copy: Path, check: Check) -> None:
    def rename(docs: Docs) -> None:
        container(doc(docs, "StatefulSet"))["ports"][0]["name"] = "health"

    edit_yaml(base(deploy_copy, "worker.yaml"), rename)
    report = check(deploy_copy)
    assert_fails(report, "services", "Service/orchestrator-worker", "targetPort 'metrics'")
    assert_fails(report, "probes", "livenessProbe port 'metrics' resolves to None")


def test_ingress_backend_port_must_exist(deploy_copy: Path, check: Check) -> None:
    def repoint(docs: Docs) -> None:
        path = doc(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]
        path["backend"]["service"]["port"] = {"number": 8443}

    edit_yaml(base(deploy_copy, "ingress.yaml"), repoint)
    assert_fails(check(deploy_copy), "ingress-tls", "backend port {'number': 8443}")


def test_render_failure_is_reported(deploy_copy: Path, check: Check) -> None:
    kust = base(deploy_copy, "kustomization.yaml")
    kust.write_text(kust.read_text().replace("  - worker.yaml\n", "  - wroker.yaml\n"))
    assert_fails(check(deploy_copy), "render", "`kubectl kustomize` failed")


def test_topics_drift(deploy_copy: Path, check: Check) -> None:
    topics = deploy_copy / "k8s" / "topics" / "kafkatopics.yaml"

    def shrink(docs: Docs) -> None:
        doc(docs, "KafkaTopic", "voice-events")["spec"]["partitions"] = 6
        doc(docs, "KafkaTopic", "voice-state")["spec"]["config"]["cleanup.policy"] = "delete"

    edit_yaml(topics, shrink)
    assert_fails(
        check(deploy_copy),
        "topics-drift",
        "voice.events: partitions 6 here, 12 in contracts/topics.py",
        "voice.state: config cleanup.policy='delete' here, 'compact' expected",
        "python -m deploy.gen_topics",
    )
