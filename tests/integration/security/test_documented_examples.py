"""The examples of docs/deploy.md, "Kafka security", as written: they load, they make the client
arguments their platform needs, and they connect to the local broker's listener of the same kind.

The broker is ``orchestrator broker`` itself, run as a user runs it (``--tls``, SCRAM and PLAIN
users, an mTLS client), so the test also shows that it prints where its CA is and how to reach
each listener. Only what cannot be the same locally is replaced: host names, the mounted files
(laid out as the kubelet mounts a Strimzi secret), the password, and, for MSK and Confluent Cloud,
whose brokers carry publicly trusted certificates, the local CA in place of the system's.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.topics import TOPICS
from orchestrator.config import Settings
from orchestrator.kafka.clients import connection, make_admin
from orchestrator.kafka.preflight import check_connection
from tests.integration.security.helpers import ROOT, clean_env, strimzi_mount

pytestmark = [pytest.mark.integration]

DOC = ROOT / "docs" / "deploy.md"
EXAMPLE = re.compile(r"<!-- tested-example: (?P<name>[\w-]+) -->\n```sh\n(?P<body>.*?)```", re.S)
SCRAM_USER, PLAIN_USER, TLS_USER = "strimzi-user", "ABCDEFGHIJKLMNOP", "voice-orchestrator-worker"
PASSWORD = f"pw-{secrets.token_urlsafe(12)}"


def documented() -> dict[str, dict[str, str]]:
    out = {}
    for m in EXAMPLE.finditer(DOC.read_text()):
        lines = [ln for ln in m["body"].splitlines() if ln.strip() and not ln.startswith("#")]
        out[m["name"]] = dict(ln.split("=", 1) for ln in lines)
    return out


@dataclass
class CliBroker:
    """``orchestrator broker`` as a process, and what it printed about its secure listeners."""

    proc: subprocess.Popen[str]
    printed: dict[str, dict[str, str]]  # listener comment -> settings
    startup_s: float


@pytest.fixture(scope="module")
def cli_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliBroker]:
    data = tmp_path_factory.mktemp("broker")
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "broker",
            *("--port", "0", "--secure-port", "0", "--mtls-port", "0", "--partitions", "1"),
            *("--data-dir", str(data / "kafka"), "--tls"),
            *("--sasl-scram", f"{SCRAM_USER}:{PASSWORD}", "--sasl-scram", f"{TLS_USER}:{PASSWORD}"),
            *("--sasl-plain", f"{PLAIN_USER}:{PASSWORD}", "--mtls", TLS_USER),
        ],
        cwd=ROOT,
        env=clean_env(LOG_FORMAT="json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, dict[str, str]] = {}
        current: dict[str, str] = {}
        while len(printed) < 2:
            line = proc.stdout.readline()
            assert line, f"broker exited: {proc.stderr.read() if proc.stderr else ''}"
            if line.startswith("#"):
                current = printed.setdefault(line.strip(), {})
            elif "=" in line:
                key, value = line.strip().split("=", 1)
                current[key] = value
        # The mTLS block is printed last; its last line is the credentials directory.
        while "KAFKA_CREDENTIALS_DIR" not in current:
            key, value = proc.stdout.readline().strip().split("=", 1)
            current[key] = value
        yield CliBroker(proc, printed, time.monotonic() - started)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listener(b: CliBroker, kind: str) -> dict[str, str]:
    return next(v for k, v in b.printed.items() if kind in k)


def test_the_broker_prints_its_ca_and_how_to_reach_each_listener(cli_broker: CliBroker) -> None:
    sasl = _listener(cli_broker, "SASL_SSL listener")
    assert sasl["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert sasl["KAFKA_SASL_USERNAME"] == SCRAM_USER
    ca = Path(sasl["KAFKA_SSL_CA_FILE"])
    assert ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    mtls = _listener(cli_broker, "mTLS listener")
    assert sorted(p.name for p in Path(mtls["KAFKA_CREDENTIALS_DIR"]).iterdir()) == [
        "ca.crt",
        "user.crt",
        "user.key",
    ], "a Strimzi TLS KafkaUser's layout"
    for settings in cli_broker.printed.values():
        assert not any(PASSWORD in v for v in settings.values())
    # The printed settings work as they are (plus the password).
    s = Settings(**{k.lower(): v for k, v in sasl.items()}, kafka_sasl_password=PASSWORD)  # type: ignore[arg-type]
    asyncio.run(check_connection(s))
    print(f"secure broker CLI ready in {cli_broker.startup_s:.1f}s")


def test_every_platform_has_a_tested_example() -> None:
    assert set(documented()) == {"strimzi-scram", "strimzi-tls", "msk-scram", "confluent-cloud"}


def _example_settings(name: str, b: CliBroker, tmp: Path) -> tuple[Settings, Settings]:
    """The example as documented (files and password replaced), and the same pointed at the
    local listener of its kind."""
    env = dict(documented()[name])
    sasl_l, mtls_l = _listener(b, "SASL_SSL listener"), _listener(b, "mTLS listener")
    ca = Path(sasl_l["KAFKA_SSL_CA_FILE"]).read_bytes()
    local: dict[str, object] = {}
    if name == "strimzi-scram":
        jaas = f'ScramLoginModule required username="{SCRAM_USER}" password="{PASSWORD}";'
        mount = strimzi_mount(
            tmp / "kafka",
            {"ca.crt": ca, "password": PASSWORD.encode(), "sasl.jaas.config": jaas.encode()},
        )
        env["KAFKA_CREDENTIALS_DIR"] = str(mount)
        local["kafka_bootstrap_servers"] = sasl_l["KAFKA_BOOTSTRAP_SERVERS"]
    elif name == "strimzi-tls":
        issued = Path(mtls_l["KAFKA_CREDENTIALS_DIR"])
        mount = strimzi_mount(
            tmp / "kafka",
            {f: (issued / f).read_bytes() for f in ("ca.crt", "user.crt", "user.key")},
        )
        env["KAFKA_CREDENTIALS_DIR"] = str(mount)
        local["kafka_bootstrap_servers"] = mtls_l["KAFKA_BOOTSTRAP_SERVERS"]
    else:
        # The password comes from ORCHESTRATOR_SECRETS_DIR in the example: Settings reads that
        # directory when the class is defined, so here it is passed as that source would.
        assert env.pop("ORCHESTRATOR_SECRETS_DIR")
        env["KAFKA_SASL_PASSWORD"] = PASSWORD
        local["kafka_bootstrap_servers"] = sasl_l["KAFKA_BOOTSTRAP_SERVERS"]
        local["kafka_ssl_ca_file"] = sasl_l["KAFKA_SSL_CA_FILE"]  # public CA -> the local one
    if name == "msk-scram":
        local["kafka_sasl_username"] = TLS_USER  # a SCRAM user of the local broker, too
    documented_settings = Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    return documented_settings, documented_settings.model_copy(update=local)


EXPECTED = {
    "strimzi-scram": ("SASL_SSL", "SCRAM-SHA-512", True),
    "strimzi-tls": ("SSL", None, True),
    "msk-scram": ("SASL_SSL", "SCRAM-SHA-512", False),
    "confluent-cloud": ("SASL_SSL", "PLAIN", False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_documented_example_builds_its_clients_and_connects(
    name: str, cli_broker: CliBroker, tmp_path: Path
) -> None:
    as_documented, local = _example_settings(name, cli_broker, tmp_path)
    protocol, mechanism, own_ca = EXPECTED[name]
    kw = connection(as_documented)
    assert kw["security_protocol"] == protocol
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    if own_ca:
        assert as_documented.kafka_ssl_ca_file is not None, "the cluster CA from the mount"
        assert as_documented.kafka_ssl_ca_file.name == "ca.crt"
    else:
        assert as_documented.kafka_ssl_ca_file is None, "public CA: the system trust store"
    if mechanism is None:
        assert "sasl_mechanism" not in kw
        assert as_documented.kafka_ssl_cert_file and as_documented.kafka_ssl_key_file
    else:
        assert kw["sasl_mechanism"] == mechanism
        assert kw["sasl_plain_password"] == PASSWORD
        assert kw["sasl_plain_username"] == as_documented.kafka_sasl_username
    assert PASSWORD not in repr(as_documented)

    async def connect() -> set[str]:
        await check_connection(local)
        admin = make_admin(local)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    topics = asyncio.run(connect())
    assert {t.name for t in TOPICS} <= topics, "the broker CLI's topics, over this listener"
