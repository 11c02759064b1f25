"""Kafka security settings: checked together at start-up, then turned into aiokafka's arguments.

Four protocols (``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``), three SASL mechanisms
(``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``) and client certificates (mTLS) cover Strimzi's
TLS and SCRAM listeners, Amazon MSK (SCRAM-SHA-512 over TLS) and Confluent Cloud (PLAIN over TLS).

:func:`resolve` runs inside ``Settings`` validation, so a role, a CLI command and a test all refuse
an inconsistent combination before any connection, with one line that names the setting to fix:
a SASL protocol without its mechanism or password, a certificate without its key, a CA file that
does not exist or holds no certificate. Settings a protocol would silently ignore (a password
with ``PLAINTEXT``) are refused too: the operator meant something, and it is not happening.
Messages name files by path and never quote their content.

:func:`client_kwargs` is merged into every client by ``orchestrator/kafka/clients.py``. The SSL
context is built from the files each time a client is built, so a client created after a
certificate renewal uses the new files.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal
from typing import Protocol as _Structural

from pydantic import SecretStr

from orchestrator.kafka.credentials import read_dir

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "Mechanism",
    "Protocol",
    "client_kwargs",
    "resolve",
    "ssl_context",
    "uses_sasl",
    "uses_tls",
]

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOLS: tuple[Protocol, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: tuple[Mechanism, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class Settings(_Structural):
    """The Kafka security part of ``orchestrator.config.Settings``, as this module sees it (so
    the settings can call :func:`resolve` while validating, without an import circle)."""

    kafka_security_protocol: Protocol
    kafka_sasl_mechanism: Mechanism | None
    kafka_sasl_username: str | None
    kafka_sasl_password: SecretStr | None
    kafka_ssl_ca_file: Path | None
    kafka_ssl_cert_file: Path | None
    kafka_ssl_key_file: Path | None
    kafka_credentials_dir: Path | None


_SASL_FIELDS = ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
_TLS_FIELDS = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")


def uses_tls(protocol: str) -> bool:
    return protocol in ("SSL", "SASL_SSL")


def uses_sasl(protocol: str) -> bool:
    return protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _env(field: str) -> str:
    return field.upper()


def _fill_from_dir(s: Settings) -> None:
    directory = s.kafka_credentials_dir
    if directory is None:
        return
    proto = s.kafka_security_protocol
    if not directory.is_dir():
        raise ValueError(f"KAFKA_CREDENTIALS_DIR: not a directory: {directory}")
    if proto == "PLAINTEXT":
        raise ValueError(
            "KAFKA_CREDENTIALS_DIR: set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no "
            "credentials (set it to SASL_SSL, SSL or SASL_PLAINTEXT)"
        )
    found = read_dir(directory)
    if uses_tls(proto):
        s.kafka_ssl_ca_file = s.kafka_ssl_ca_file or found.ca_file
        s.kafka_ssl_cert_file = s.kafka_ssl_cert_file or found.cert_file
        s.kafka_ssl_key_file = s.kafka_ssl_key_file or found.key_file
    if uses_sasl(proto):
        s.kafka_sasl_username = s.kafka_sasl_username or found.username
        if s.kafka_sasl_password is None or not s.kafka_sasl_password.get_secret_value():
            s.kafka_sasl_password = found.password


def _check_sasl(s: Settings) -> None:
    proto = s.kafka_security_protocol
    if not uses_sasl(proto):
        for field in _SASL_FIELDS:
            if getattr(s, field) is not None:
                raise ValueError(
                    f"{_env(field)}: set, but KAFKA_SECURITY_PROTOCOL={proto} does not use SASL "
                    "(set it to SASL_SSL or SASL_PLAINTEXT)"
                )
        return
    if s.kafka_sasl_mechanism is None:
        raise ValueError(
            f"KAFKA_SASL_MECHANISM: required with KAFKA_SECURITY_PROTOCOL={proto} "
            f"({', '.join(MECHANISMS)})"
        )
    if not s.kafka_sasl_username:
        raise ValueError(
            f"KAFKA_SASL_USERNAME: required with KAFKA_SECURITY_PROTOCOL={proto} (or a "
            "`username` or `sasl.jaas.config` file in KAFKA_CREDENTIALS_DIR)"
        )
    if s.kafka_sasl_password is None or not s.kafka_sasl_password.get_secret_value():
        raise ValueError(
            f"KAFKA_SASL_PASSWORD: required with KAFKA_SECURITY_PROTOCOL={proto} (environment, "
            "a kafka_sasl_password file in ORCHESTRATOR_SECRETS_DIR, or a `password` file in "
            "KAFKA_CREDENTIALS_DIR)"
        )


def _readable(field: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{_env(field)}: no such file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{_env(field)}: a directory, not a file: {path}") from None
    except OSError as err:
        raise ValueError(f"{_env(field)}: cannot read {path} ({err.strerror})") from None


def _check_tls(s: Settings) -> None:
    proto = s.kafka_security_protocol
    if not uses_tls(proto):
        for field in _TLS_FIELDS:
            if getattr(s, field) is not None:
                raise ValueError(
                    f"{_env(field)}: set, but KAFKA_SECURITY_PROTOCOL={proto} does not use TLS "
                    "(set it to SSL or SASL_SSL)"
                )
        return
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if s.kafka_ssl_ca_file is not None:
        data = _readable("kafka_ssl_ca_file", s.kafka_ssl_ca_file)
        try:
            x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ValueError(
                f"KAFKA_SSL_CA_FILE: no PEM certificate in {s.kafka_ssl_ca_file}"
            ) from None
    cert, key = s.kafka_ssl_cert_file, s.kafka_ssl_key_file
    if (cert is None) != (key is None):
        missing, present = (
            ("KAFKA_SSL_KEY_FILE", "KAFKA_SSL_CERT_FILE")
            if key is None
            else ("KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE")
        )
        raise ValueError(f"{missing}: required with {present} (a client certificate and its key)")
    if cert is None or key is None:
        return
    try:
        x509.load_pem_x509_certificates(_readable("kafka_ssl_cert_file", cert))
    except ValueError:
        raise ValueError(f"KAFKA_SSL_CERT_FILE: no PEM certificate in {cert}") from None
    try:
        serialization.load_pem_private_key(_readable("kafka_ssl_key_file", key), password=None)
    except TypeError:
        raise ValueError(
            f"KAFKA_SSL_KEY_FILE: {key} is encrypted; an unencrypted PEM key is expected"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(f"KAFKA_SSL_KEY_FILE: no PEM private key in {key}") from None
    try:
        ssl.create_default_context().load_cert_chain(str(cert), str(key))
    except ssl.SSLError:
        raise ValueError(
            f"KAFKA_SSL_KEY_FILE: {key} is not the key of the certificate in KAFKA_SSL_CERT_FILE"
        ) from None


def resolve(s: Settings) -> None:
    """Fill settings from ``KAFKA_CREDENTIALS_DIR``, then check the combination.

    Raises ``ValueError`` with one line that starts with the name of the setting to fix (called
    from a pydantic validator, so :func:`orchestrator.config.load_settings` reports it as a
    ``ConfigError``).
    """
    _fill_from_dir(s)
    _check_sasl(s)
    _check_tls(s)


def ssl_context(s: Settings) -> ssl.SSLContext:
    """Server verification against ``KAFKA_SSL_CA_FILE`` (the system's trust store when unset,
    which is what MSK and Confluent Cloud need), host names checked, plus the client certificate
    when one is set."""
    from aiokafka.helpers import create_ssl_context

    ca, cert, key = s.kafka_ssl_ca_file, s.kafka_ssl_cert_file, s.kafka_ssl_key_file
    context: ssl.SSLContext = create_ssl_context(
        cafile=str(ca) if ca else None,
        certfile=str(cert) if cert else None,
        keyfile=str(key) if key else None,
    )
    return context


def client_kwargs(s: Settings) -> dict[str, Any]:
    """aiokafka's security arguments (``security_protocol``, ``ssl_context``, ``sasl_*``).

    The password is passed in clear because aiokafka needs it so; the dict goes straight into a
    client constructor and is never logged.
    """
    proto = s.kafka_security_protocol
    out: dict[str, Any] = {"security_protocol": proto}
    if uses_tls(proto):
        out["ssl_context"] = ssl_context(s)
    if uses_sasl(proto):
        assert s.kafka_sasl_password is not None  # resolve() made sure
        out["sasl_mechanism"] = s.kafka_sasl_mechanism
        out["sasl_plain_username"] = s.kafka_sasl_username
        out["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value()
    return out
