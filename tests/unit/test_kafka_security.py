"""Kafka security settings: checked together, one line naming the setting, secrets never shown;
the Strimzi secret layout fills them; aiokafka gets the arguments it needs."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import ConfigError, load_settings
from orchestrator.kafka.security import client_kwargs
from orchestrator.localbroker.security import BrokerSecurity, SaslUser, parse_user
from orchestrator.localbroker.tls import client_credentials, load_or_create_ca

SECRET = "s3cret-pa55word"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KAFKA_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    ca = load_or_create_ca(root / "ca")
    client = client_credentials(ca, root / "client", "alice")
    other = client_credentials(load_or_create_ca(root / "other-ca"), root / "other", "bob")
    return {
        "ca": ca.ca_file,
        "cert": client / "user.crt",
        "key": client / "user.key",
        "other_key": other / "user.key",
    }


def _error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert "\n" not in msg and SECRET not in msg
    return msg


SASL = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "worker",
    "KAFKA_SASL_PASSWORD": SECRET,
}


@pytest.mark.parametrize(
    ("env", "starts"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL: Input should be"),
        ({**SASL, "KAFKA_SASL_MECHANISM": ""}, "KAFKA_SASL_MECHANISM: required with"),
        ({**SASL, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM: Input should be"),
        ({**SASL, "KAFKA_SASL_USERNAME": ""}, "KAFKA_SASL_USERNAME: required with"),
        ({**SASL, "KAFKA_SASL_PASSWORD": ""}, "KAFKA_SASL_PASSWORD: required with"),
        (
            {"KAFKA_SASL_PASSWORD": SECRET},
            "KAFKA_SASL_PASSWORD: set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL",
        ),
        (
            {**SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SSL_CA_FILE": "/x"},
            "KAFKA_SSL_CA_FILE: set, but KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use TLS",
        ),
        ({**SASL, "KAFKA_SSL_CA_FILE": "/nonexistent/ca.crt"}, "KAFKA_SSL_CA_FILE: no such file"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_CREDENTIALS_DIR": "/nonexistent"},
            "KAFKA_CREDENTIALS_DIR: not a directory",
        ),
    ],
)
def test_inconsistent_settings_are_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], starts: str
) -> None:
    assert _error(monkeypatch, **env).startswith(starts)


def test_files_are_checked_without_showing_their_content(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], tmp_path: Path
) -> None:
    key_text = pki["key"].read_text()
    msg = _error(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(pki["key"]))
    assert msg == f"KAFKA_SSL_CA_FILE: no PEM certificate in {pki['key']}"
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(pki["ca"]))
    msg = _error(monkeypatch, KAFKA_SSL_CERT_FILE=str(pki["cert"]))
    assert msg.startswith("KAFKA_SSL_KEY_FILE: required with KAFKA_SSL_CERT_FILE")
    msg = _error(monkeypatch, KAFKA_SSL_KEY_FILE=str(pki["other_key"]))
    assert msg.startswith("KAFKA_SSL_KEY_FILE:") and "is not the key of the certificate" in msg
    msg = _error(monkeypatch, KAFKA_SSL_KEY_FILE=str(pki["ca"]))
    assert msg.startswith("KAFKA_SSL_KEY_FILE: no PEM private key in")
    assert key_text.splitlines()[1] not in msg
    monkeypatch.setenv("KAFKA_SSL_KEY_FILE", str(pki["key"]))
    s = load_settings()
    kw = client_kwargs(s)
    assert kw["security_protocol"] == "SSL" and isinstance(kw["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in kw


def test_the_cli_prints_one_config_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {**SASL, "KAFKA_SASL_MECHANISM": ""}.items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(cli, ["topics", "ensure", "--check-only"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "config error: KAFKA_SASL_MECHANISM: required with KAFKA_SECURITY_PROTOCOL=SASL_SSL "
        "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
    ]


def test_sasl_settings_make_aiokafka_arguments_and_hide_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in {**SASL, "KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.kafka_security_protocol == "SASL_SSL", "case-insensitive, as Kafka's own clients"
    kw = client_kwargs(s)
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("worker", SECRET)
    ctx = kw["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())
    assert client_kwargs(load_settings(kafka_security_protocol="PLAINTEXT", **_unset())) == {
        "security_protocol": "PLAINTEXT"
    }


def _unset() -> dict[str, None]:
    return {
        "kafka_sasl_mechanism": None,
        "kafka_sasl_username": None,
        "kafka_sasl_password": None,
    }


def test_credentials_dir_fills_what_the_protocol_uses(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], tmp_path: Path
) -> None:
    d = tmp_path / "kafka"
    d.mkdir()
    (d / "ca.crt").write_bytes(pki["ca"].read_bytes())
    (d / "user.crt").write_bytes(pki["cert"].read_bytes())
    (d / "user.key").write_bytes(pki["key"].read_bytes())
    (d / "password").write_text(SECRET + "\n")
    (d / "sasl.jaas.config").write_text(
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="jaas-user" '
        'password="not-read-from-here";'
    )
    monkeypatch.setenv("KAFKA_CREDENTIALS_DIR", str(d))
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    s = load_settings()
    assert s.kafka_sasl_username == "jaas-user"
    assert s.kafka_sasl_password is not None
    assert s.kafka_sasl_password.get_secret_value() == SECRET, "trailing newline dropped"
    assert (s.kafka_ssl_ca_file, s.kafka_ssl_cert_file) == (d / "ca.crt", d / "user.crt")

    monkeypatch.setenv("KAFKA_SASL_USERNAME", "explicit")
    (d / "username").write_text("from-file")
    assert load_settings().kafka_sasl_username == "explicit", "explicit settings win"
    monkeypatch.delenv("KAFKA_SASL_USERNAME")
    assert load_settings().kafka_sasl_username == "from-file", "`username` before the JAAS line"

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.delenv("KAFKA_SASL_MECHANISM")
    s = load_settings()
    assert s.kafka_sasl_password is None, "SSL uses no password: the file is left alone"
    assert s.kafka_ssl_key_file == d / "user.key"

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    assert _error(monkeypatch).startswith("KAFKA_CREDENTIALS_DIR: set, but")


def test_local_broker_user_arguments_never_echo_the_password() -> None:
    assert parse_user("alice:pw-1", "--sasl-scram") == SaslUser("alice", "pw-1")
    assert "pw-1" not in repr(parse_user("alice:pw-1", "--sasl-scram"))
    for bad in ("alice", ":pw", "alice:", "al ice:pw", "alice:p,w", 'alice:p"w'):
        with pytest.raises(ValueError) as info:
            parse_user(bad, "--sasl-plain")
        assert str(info.value).startswith("--sasl-plain:")
        assert "p,w" not in str(info.value) and 'p"w' not in str(info.value)
    sec = BrokerSecurity(tls=True, scram=(SaslUser("a", "pa"),), plain=(SaslUser("b", "pb"),))
    assert sec.secure_protocol == "SASL_SSL"
    assert sec.format_args() == [
        "--add-scram",
        "SCRAM-SHA-512=[name=a,password=pa]",
        "--add-scram",
        "SCRAM-SHA-256=[name=a,password=pa]",
    ]
    assert BrokerSecurity(scram=(SaslUser("a", "pa"),)).secure_protocol == "SASL_PLAINTEXT"
    assert BrokerSecurity(tls=True).secure_protocol == "SSL"
    assert BrokerSecurity().secure_protocol is None


def test_an_acl_refusal_is_named_as_the_users_and_other_errors_are_not() -> None:
    from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError

    from orchestrator.kafka.preflight import denied_by_acls

    line = denied_by_acls(GroupAuthorizationFailedError("acme.voice-dispatcher"))
    assert line is not None and line.startswith("KAFKA_SASL_USERNAME: the cluster denies")
    assert "acme.voice-dispatcher" in line and "\n" not in line
    assert denied_by_acls(KafkaConnectionError("x")) is None
    assert denied_by_acls(RuntimeError("x")) is None
