"""Kafka security in the manifests: KafkaUsers generated from the code, the roles' credentials
mounts as Settings reads them, and KEDA connecting the way the roles do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.topics import TOPICS, TRAFFIC
from deploy import gen_users
from deploy.check import DEPLOY_DIR, Report
from deploy.check.helm import Helm, render_chart
from deploy.check.kubectl import Kubectl
from deploy.check.users import check_users
from deploy.helm_switch import Switch, UnsupportedChange, render_with_component

from .helpers import assert_fails, edit_yaml

USERS_FILE = DEPLOY_DIR / "k8s" / "kafka-users" / "kafkausers.yaml"
COMPONENT = DEPLOY_DIR / "k8s" / "kafka-scram"

Check = Callable[[Path], Report]


def _acls(user: str, prefix: str = "") -> dict[tuple[str, str, str], set[str]]:
    u = next(u for u in gen_users.users() if u.name == user)
    return {
        (a.resource, a.name or "", a.pattern): set(a.operations) for a in gen_users.acls(u, prefix)
    }


def test_committed_users_match_the_code() -> None:
    assert USERS_FILE.read_text() == gen_users.render(), (
        "deploy/k8s/kafka-users/kafkausers.yaml drifted: run `python -m deploy.gen_users`"
    )


def test_acls_are_what_traffic_says_and_no_more() -> None:
    worker = _acls("voice-orchestrator-worker", "acme.")
    assert worker[("topic", "acme.voice.events", "literal")] == {
        "Describe",
        "DescribeConfigs",
        "Read",
    }, "the worker reads events and never writes them"
    assert "Write" in worker[("topic", "acme.voice.outcomes", "literal")]
    assert worker[("group", "acme.voice-worker", "prefix")] == {"Read"}
    assert worker[("transactionalId", "acme.voice-worker", "prefix")] == {"Describe", "Write"}
    assert worker[("cluster", "", "literal")] == {"IdempotentWrite"}

    controller = _acls("voice-orchestrator-campaign-controller")
    groups = [k for k in controller if k[0] == "group"]
    assert groups == [("group", "campaign-controller", "prefix")], "one prefix covers the relay"

    ingress = _acls("voice-orchestrator-ingress")
    assert not [k for k in ingress if k[0] in ("group", "transactionalId")]
    cli = _acls("voice-orchestrator-cli")
    assert "Write" not in cli[("topic", "voice.events", "literal")]
    assert "Read" in cli[("topic", "campaign.results", "literal")]

    for user in gen_users.users():
        ops = _acls(user.name)
        topics = {name for (kind, name, _) in ops if kind == "topic"}
        assert topics == {t.name for t in TOPICS}, "every product topic, nothing else"
        for (kind, name, pattern), granted in ops.items():
            assert not granted & {"Create", "Delete", "Alter", "AlterConfigs", "All"}, user
            if kind == "topic":
                assert pattern == "literal"
                reads = any(user.role in t.subscribers for t in TRAFFIC if t.topic == name)
                writes = any(user.role in t.publishers for t in TRAFFIC if t.topic == name)
                assert ("Read" in granted) == reads and ("Write" in granted) == writes


def test_gen_users_check_mode_and_options(tmp_path: Path) -> None:
    out = tmp_path / "users.yaml"
    assert gen_users.main(["-o", str(out), "--auth", "tls", "--cluster", "prod"]) == 0
    assert gen_users.main(["-o", str(out), "--auth", "tls", "--cluster", "prod", "--check"]) == 0
    assert gen_users.main(["-o", str(out), "--check"]) == 1
    first = next(d for d in yaml.safe_load_all(out.read_text()) if d)
    assert first["spec"]["authentication"] == {"type": "tls"}
    assert first["metadata"]["labels"]["strimzi.io/cluster"] == "prod"


def test_users_drift_names_the_user_and_the_acl(tmp_path: Path) -> None:
    path = tmp_path / "deploy" / "k8s" / "kafka-users" / "kafkausers.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(gen_users.render(auth="tls"))

    def drop_worker_group(docs: list[dict[str, object]]) -> None:
        for d in docs:
            if d["metadata"]["name"] == "voice-orchestrator-worker":  # type: ignore[index]
                acls = d["spec"]["authorization"]["acls"]  # type: ignore[index]
                acls[:] = [a for a in acls if a["resource"]["type"] != "group"]
                acls.append({"resource": {"type": "cluster"}, "operations": ["Alter"], "host": "*"})

    edit_yaml(path, drop_worker_group)
    report = Report()
    check_users(path, report)
    assert_fails(
        report,
        "users-drift",
        "user voice-orchestrator-worker lacks ACL group prefix voice-worker: Read",
        "user voice-orchestrator-worker has ACL cluster: Alter, which the code does not need",
    )
    path.write_text(gen_users.render(auth="tls"))
    report = Report()
    check_users(path, report)
    assert not report.findings, "--auth tls, read back from the file, is not drift"


def _kubelet_secret_dir(root: Path, files: dict[str, bytes]) -> Path:
    data = root / "..2026_01_01_00_00_00.000000000"
    data.mkdir(parents=True)
    for name, content in files.items():
        (data / name).write_bytes(content)
    (root / "..data").symlink_to(data.name)
    for name in files:
        (root / name).symlink_to(f"..data/{name}")
    return root


def test_strimzi_secrets_mount_into_settings_without_renaming(tmp_path: Path) -> None:
    """What the User Operator and the cluster CA Secret hold, projected as the component mounts
    it, is read by Settings as the intended user, password and CA (in a fresh process)."""
    from orchestrator.localbroker.tls import load_or_create_ca

    ca = load_or_create_ca(tmp_path / "ca")
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    settings = dict(
        line.split("=", 1) for line in kustomization["configMapGenerator"][0]["literals"]
    )
    strimzi_secrets = {
        "voice-kafka-cluster-ca-cert": {"ca.crt": ca.ca_file.read_bytes(), "ca.p12": b"\x00"},
        "voice-orchestrator-worker": {
            "password": b"generated-password",
            "sasl.jaas.config": b'...ScramLoginModule required username="x" password="y";',
        },
    }
    patch = yaml.safe_load((COMPONENT / "credentials-worker.yaml").read_text())
    spec = patch["spec"]["template"]["spec"]
    c = spec["containers"][0]
    mount = c["volumeMounts"][0]["mountPath"]
    assert settings["KAFKA_CREDENTIALS_DIR"] == mount
    files = {}
    for src in spec["volumes"][0]["projected"]["sources"]:
        for item in src["secret"]["items"]:
            files[item["path"]] = strimzi_secrets[src["secret"]["name"]][item["key"]]
    root = _kubelet_secret_dir(tmp_path / "kafka", files)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ORCHESTRATOR_"))}
    env.update(settings)
    env.update({e["name"]: e["value"] for e in c["env"]})
    env["KAFKA_CREDENTIALS_DIR"] = str(root)
    script = (
        "import json\n"
        "from orchestrator.config import load_settings\n"
        "s = load_settings()\n"
        "print(json.dumps([s.kafka_security_protocol, s.kafka_sasl_mechanism,\n"
        "  s.kafka_sasl_username, s.kafka_sasl_password.get_secret_value(),\n"
        "  str(s.kafka_ssl_ca_file), repr(s)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    proto, mech, user, password, ca_file, shown = json.loads(proc.stdout)
    assert (proto, mech) == ("SASL_SSL", "SCRAM-SHA-512")
    assert user == "voice-orchestrator-worker", "the explicit name wins over sasl.jaas.config"
    assert password == "generated-password"
    assert ca_file == str(root / "ca.crt")
    assert "generated-password" not in shown


def test_keda_and_credentials_must_match_the_roles(deploy_copy: Path, check: Check) -> None:
    comp = deploy_copy / "k8s" / "kafka-scram"
    kust = comp / "kustomization.yaml"
    text = kust.read_text()
    # KEDA left on PLAINTEXT for every trigger:
    text = text.replace(
        "      - op: add\n        path: /spec/triggers/0/metadata/tls\n        value: enable\n", ""
    )
    kust.write_text(text)

    def foreign_password(docs: list[dict[str, object]]) -> None:
        ta = next(d for d in docs if d["metadata"]["name"] == "orchestrator-worker-kafka")  # type: ignore[index]
        ta["spec"]["secretTargetRef"][0]["name"] = "voice-orchestrator-dispatcher"  # type: ignore[index]

    edit_yaml(comp / "triggerauthentications.yaml", foreign_password)

    def no_mount(docs: list[dict[str, object]]) -> None:
        c = docs[0]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        del c["volumeMounts"]

    edit_yaml(comp / "credentials-campaign.yaml", no_mount)
    report = check(deploy_copy)
    assert_fails(
        report,
        "kafka-auth",
        "ScaledObject/orchestrator-worker: kafka trigger tls 'disable'; set tls: enable",
        "`password` comes from Secret 'voice-orchestrator-dispatcher', which the role does not "
        "mount",
        "StatefulSet/orchestrator-campaign: KAFKA_CREDENTIALS_DIR /var/run/secrets/kafka is not "
        "mounted",
    )


def test_switch_makes_additions_conditional_and_refuses_removals() -> None:
    base = {"env": [{"name": "A", "value": "1"}], "port": 9092, "meta": {"topic": "t"}}
    secure = {
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "port": 9093,
        "meta": {"topic": "t", "tls": "enable"},
    }
    switch = Switch(".Values.x")
    text = switch.text(yaml.safe_dump(switch.diff(base, secure), sort_keys=False))
    assert "{{- if .Values.x }}\n- name: B\n  value: '2'\n{{- end }}" in text
    assert "port: {{ if .Values.x }}9093{{ else }}9092{{ end }}" in text
    assert "{{- if .Values.x }}\n  tls: enable\n{{- end }}" in text
    with pytest.raises(UnsupportedChange, match="removes"):
        Switch(".Values.x").diff(secure, base)


def test_chart_with_kafka_scram_is_the_component(helm: Helm, kubectl: Kubectl) -> None:
    """``kafka.scram: true`` renders what overlays get from deploy/k8s/kafka-scram: the same
    credentials volumes, user names, KEDA wiring and settings."""
    objects, error = render_chart(
        helm, DEPLOY_DIR / "helm" / "voice-orchestrator", DEPLOY_DIR / "helm" / "check-values.yaml"
    )
    assert not error, error
    text = render_with_component(kubectl, DEPLOY_DIR / "k8s", "base", "kafka-scram")
    kustomized = [d for d in yaml.safe_load_all(text) if d]

    def security_view(objs: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for o in objs:
            kind, name = o["kind"], o["metadata"]["name"]
            if kind == "TriggerAuthentication":
                out[name] = o["spec"]
            if kind == "ConfigMap" and name.startswith("orchestrator-settings"):
                out["settings"] = {
                    k: v
                    for k, v in o["data"].items()
                    if k.startswith("KAFKA_") and k != "KAFKA_SESSION_TIMEOUT_MS"
                }
            if kind == "ScaledObject":
                md = o["spec"]["triggers"][0]
                out[name] = (
                    md["metadata"].get("sasl"),
                    md["metadata"].get("tls"),
                    md.get("authenticationRef"),
                )
            if kind in ("Deployment", "StatefulSet"):
                spec = o["spec"]["template"]["spec"]
                c = spec["containers"][0]
                out[name] = (
                    [e for e in c["env"] if e["name"].startswith("KAFKA_")],
                    [m for m in c["volumeMounts"] if m["name"] == "kafka-credentials"],
                    [v for v in spec["volumes"] if v["name"] == "kafka-credentials"],
                )
        return out

    chart, component = security_view(objects), security_view(kustomized)
    assert chart == component
    assert len([k for k in chart if k.endswith("-kafka")]) == 2, "two TriggerAuthentications"
