"""Settings: env and file sources, secrets masked, one-line errors naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from orchestrator.cli import cli
from orchestrator.config import ConfigError, load_settings


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_defaults_follow_vonage_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VONAGE_API_HOST", raising=False)
    s = load_settings()
    assert s.api_base == "https://api.nexmo.com"
    assert s.vonage_cps == 3 and s.vonage_rps == 15


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port", "KAFKA_BOOTSTRAP_SERVERS"),
        ("VONAGE_API_HOST", "not a url", "VONAGE_API_HOST"),
        ("VONAGE_CPS", "-1", "VONAGE_CPS"),
        ("PUBLIC_BASE_URL", "::", "PUBLIC_BASE_URL"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
    ],
)
def test_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    msg = str(info.value)
    assert msg.startswith(named) and "\n" not in msg


def test_private_key_from_text_or_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pem = _pem()
    monkeypatch.setenv("VONAGE_PRIVATE_KEY", pem)
    assert load_settings().private_key_pem().startswith(b"-----BEGIN " + b"PRIVATE KEY-----")
    path = tmp_path / "key.pem"
    path.write_text(pem)
    monkeypatch.setenv("VONAGE_PRIVATE_KEY", str(path))
    s = load_settings()
    assert s.private_key_pem() == pem.encode()
    assert "BEGIN" not in repr(s) and "BEGIN" not in str(s.model_dump())
    monkeypatch.setenv("VONAGE_PRIVATE_KEY", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"^VONAGE_PRIVATE_KEY"):
        load_settings().private_key_pem()


def test_signature_secrets_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VONAGE_SIGNATURE_SECRET", "new-secret, old-secret")
    assert load_settings().signature_secrets() == ["new-secret", "old-secret"]


def test_config_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "orchestrator.yaml"
    cfg.write_text("vonage_cps: 5\ntopic_prefix: prod.\n")
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(cfg))
    monkeypatch.setenv("TOPIC_PREFIX", "env.")
    s = load_settings()
    assert s.vonage_cps == 5 and s.topic_prefix == "env."
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"^ORCHESTRATOR_CONFIG"):
        load_settings()


def test_secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vonage_api_secret").write_text("s3cr3t")
    from orchestrator.config import Settings

    s = Settings(_secrets_dir=str(tmp_path))  # type: ignore[call-arg]
    assert s.vonage_api_secret is not None
    assert s.vonage_api_secret.get_secret_value() == "s3cr3t"


def test_cli_reports_config_error_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "bad")
    result = CliRunner().invoke(cli, ["topics", "ensure", "--check-only"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "config error: KAFKA_BOOTSTRAP_SERVERS: Value error, expected host:port[,host:port...], got 'bad'"
    ]


def test_private_key_path_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """VONAGE_PRIVATE_KEY_PATH, the name of Vonage's tutorials, sets the same key."""
    pem = _pem()
    path = tmp_path / "private.key"
    path.write_text(pem)
    monkeypatch.delenv("VONAGE_PRIVATE_KEY", raising=False)
    monkeypatch.setenv("VONAGE_PRIVATE_KEY_PATH", str(path))
    assert load_settings().private_key_pem() == pem.encode()


def test_unknown_variables_name_the_closest_known_one() -> None:
    from orchestrator.config import unknown_variables

    env = {
        "KAFKA_BOOTSTRAP_SERVER": "broker:9092",
        "VONAGE_APLICATION_ID": "x",
        "ORCHESTRATOR_CONFIGG": "x",
        "KAFKA_BOOTSTRAP_SERVERS": "ok:9092",
        "VONAGE_PRIVATE_KEY_PATH": "/k.pem",
        "ORCHESTRATOR_FLOWS": "/flows",
        "PATH": "/bin",
    }
    warnings = unknown_variables(env)
    assert len(warnings) == 3, warnings
    joined = "\n".join(warnings)
    assert "KAFKA_BOOTSTRAP_SERVER is not a known setting" in joined
    assert "did you mean KAFKA_BOOTSTRAP_SERVERS?" in joined
    assert "did you mean VONAGE_APPLICATION_ID?" in joined
    assert "did you mean ORCHESTRATOR_CONFIG?" in joined
    assert "broker:9092" not in joined  # names only, never values


def test_known_variables_follow_the_settings_fields() -> None:
    """A field added to Settings is known without touching a list (e.g. KAFKA_SASL_* later)."""
    from orchestrator.config import Settings, known_variables

    assert {"KAFKA_SESSION_TIMEOUT_MS", "CONTACTS_DIR", "VONAGE_PRIVATE_KEY_PATH"} <= (
        known_variables()
    )
    assert all(name.upper() in known_variables() for name in Settings.model_fields)


def test_require_names_every_missing_setting() -> None:
    from orchestrator.config import Settings

    s = Settings(vonage_api_key="k", vonage_api_secret="s")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        s.require("vonage_application_id", "vonage_private_key", role="the dispatcher")
    assert str(info.value) == (
        "VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY: required by the dispatcher but not set"
    )


def test_dispatcher_client_needs_the_application_key_even_with_api_key() -> None:
    from orchestrator.config import Settings
    from orchestrator.dispatcher.service import build_client

    s = Settings(  # type: ignore[arg-type]
        vonage_application_id="app", vonage_api_key="k", vonage_api_secret="s"
    )
    with pytest.raises(ConfigError, match=r"^VONAGE_PRIVATE_KEY: required by the dispatcher"):
        build_client(s)
    # A PEM header with no key after it (built, so no key-shaped literal sits in the repo).
    not_a_key = "-----BEGIN " + "PRIVATE KEY-----" + "x"
    bad = s.model_copy(update={"vonage_private_key": SecretStr(not_a_key)})
    with pytest.raises(ConfigError, match=r"^VONAGE_PRIVATE_KEY: not a usable PEM") as info:
        build_client(bad)
    assert "BEGIN" not in str(info.value)
