"""Topic manifests follow contracts/topics.py; secret files and settings wire up as Settings reads
them; the kubectl finder refuses a kustomize too old for the overlays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.topics import TOPICS
from deploy import gen_topics
from deploy.check import DEPLOY_DIR, Report
from deploy.check.kubectl import probe
from deploy.check.topics import check_topics

from .helpers import assert_fails, container, doc

TOPICS_FILE = DEPLOY_DIR / "k8s" / "topics" / "kafkatopics.yaml"


def test_committed_topics_match_contracts() -> None:
    assert TOPICS_FILE.read_text() == gen_topics.render(), (
        "deploy/k8s/topics/kafkatopics.yaml drifted from contracts/topics.py: "
        "run `python -m deploy.gen_topics`"
    )


def test_every_topic_has_its_partitions_retention_and_policy() -> None:
    docs = {d["spec"]["topicName"]: d for d in yaml.safe_load_all(TOPICS_FILE.read_text()) if d}
    assert set(docs) == {t.name for t in TOPICS}
    for spec in TOPICS:
        d = docs[spec.name]
        assert d["spec"]["partitions"] == spec.partitions
        assert d["spec"]["replicas"] == spec.replication_factor == 3
        cfg = d["spec"]["config"]
        assert cfg["cleanup.policy"] == ("compact" if spec.compacted else "delete")
        assert cfg["retention.ms"] == spec.config["retention.ms"]
        assert cfg["min.insync.replicas"] == "2"
        assert d["metadata"]["labels"]["strimzi.io/cluster"]


def test_gen_topics_check_mode(tmp_path: Path) -> None:
    out = tmp_path / "topics.yaml"
    assert gen_topics.main(["-o", str(out)]) == 0
    assert gen_topics.main(["-o", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace("partitions: 12", "partitions: 11", 1))
    assert gen_topics.main(["-o", str(out), "--check"]) == 1


def test_gen_topics_prefix_and_cluster() -> None:
    docs = [d for d in yaml.safe_load_all(gen_topics.render("acme.", "prod-kafka")) if d]
    first = docs[0]
    assert first["spec"]["topicName"] == "acme.voice.events"
    assert first["metadata"]["name"] == "acme-voice-events"
    assert first["metadata"]["labels"]["strimzi.io/cluster"] == "prod-kafka"


def test_hand_edit_without_semantic_change_asks_to_regenerate(tmp_path: Path) -> None:
    path = tmp_path / "deploy" / "k8s" / "topics" / "kafkatopics.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(gen_topics.render() + "# my note\n")
    report = Report()
    check_topics(path, report)
    assert_fails(report, "topics-drift", "differs from the generator's output")


def _atomic_writer_dir(root: Path, files: dict[str, bytes]) -> Path:
    """Lay files out the way the kubelet mounts a Secret: symlinks through ``..data``."""
    data = root / "..2026_01_01_00_00_00.000000000"
    data.mkdir(parents=True)
    for name, content in files.items():
        (data / name).write_bytes(content)
    (root / "..data").symlink_to(data.name)
    for name in files:
        (root / name).symlink_to(f"..data/{name}")
    return root


def test_secret_files_reach_settings(tmp_path: Path) -> None:
    """The dispatcher's and ingress' secret mounts, laid out as the kubelet does, load into
    Settings exactly as the manifests intend (secrets dir + VONAGE_PRIVATE_KEY path)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    values = {
        "vonage-private-key": pem,
        "vonage-api-secret": b"api-secret-value\n",
        "vonage-signature-secret": b"sig-one,sig-two\n",
        "control-api-token": b"control-token\n",
    }
    for manifest in ("dispatcher.yaml", "ingress.yaml"):
        docs = [
            d for d in yaml.safe_load_all((DEPLOY_DIR / "k8s" / "base" / manifest).read_text()) if d
        ]
        workload = next(d for d in docs if d["kind"] in ("Deployment", "StatefulSet"))
        c = container(workload)
        mount = next(m for m in c["volumeMounts"] if m["name"] == "secrets")["mountPath"]
        vol = next(
            v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"
        )
        secret_root = tmp_path / manifest / "secrets"
        files = {item["path"]: values[item["key"]] for item in vol["secret"]["items"]}
        _atomic_writer_dir(secret_root, files)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VONAGE_", "CONTROL_API"))}
        for e in c["env"]:
            if "value" in e:
                env[e["name"]] = e["value"].replace(mount, str(secret_root))
        script = (
            "import json\n"
            "from orchestrator.config import load_settings\n"
            "s = load_settings()\n"
            "out = {'sig': s.signature_secrets(),\n"
            "       'token': s.control_api_token and s.control_api_token.get_secret_value(),\n"
            "       'api_secret': s.vonage_api_secret and s.vonage_api_secret.get_secret_value()}\n"
            "if s.vonage_private_key is not None:\n"
            "    out['pem'] = s.private_key_pem().decode()\n"
            "print(json.dumps(out))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        if manifest == "dispatcher.yaml":
            assert got["pem"] == pem.decode()
            assert got["api_secret"] == "api-secret-value"
            assert got["sig"] == []  # least privilege: no webhook secret in the dispatcher
        else:
            assert got["sig"] == ["sig-one", "sig-two"]
            assert got["token"] == "control-token"
            assert "pem" not in got and got["api_secret"] is None


def test_settings_env_keys_are_settings() -> None:
    from orchestrator.config import Settings

    names = {n.upper() for n in Settings.model_fields}
    env_file = DEPLOY_DIR / "k8s" / "base" / "settings.env"
    keys = [
        ln.split("=", 1)[0]
        for ln in env_file.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert keys and set(keys) <= names


def test_probe_rejects_old_kustomize(tmp_path: Path) -> None:
    """Debian's kubectl 1.20 embeds kustomize v2.0.3, which cannot render the overlays."""
    fake = tmp_path / "kubectl"
    fake.write_text(
        '#!/bin/sh\necho \'{"clientVersion": {"gitVersion": "v1.20.2"}, '
        '"kustomizeVersion": "v2.0.3"}\'\n'
    )
    fake.chmod(0o755)
    assert probe(str(fake), "test") is None
    fake.write_text(fake.read_text().replace("v2.0.3", "v5.5.0"))
    found = probe(str(fake), "test")
    assert found is not None and found.kustomize_version == "v5.5.0"


def test_worker_manifest_is_a_statefulset_with_downward_instance_id() -> None:
    docs = [
        d
        for d in yaml.safe_load_all((DEPLOY_DIR / "k8s" / "base" / "worker.yaml").read_text())
        if d
    ]
    sts = doc(docs, "StatefulSet")
    env = {e["name"]: e for e in container(sts)["env"]}
    assert env["INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
