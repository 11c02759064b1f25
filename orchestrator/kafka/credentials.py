"""``KAFKA_CREDENTIALS_DIR``: Kafka credentials read from well-known file names.

Strimzi's User Operator writes each ``KafkaUser``'s credentials into a Secret with fixed keys
(``user.crt``/``user.key`` for TLS users; ``password`` and ``sasl.jaas.config`` for SCRAM users),
and the cluster CA certificate lives in ``<cluster>-cluster-ca-cert`` under ``ca.crt``. Mounting
those Secrets (one projected volume) and pointing ``KAFKA_CREDENTIALS_DIR`` at the mount is all a
pod needs: no renaming, no init container, no copy of a password into an environment variable.

A file fills its setting only when the setting is not set another way (environment, YAML file,
``ORCHESTRATOR_SECRETS_DIR``), and only when the security protocol uses it, so one directory can
hold a TLS user's and a SCRAM user's files. ``username`` (not written by Strimzi) lets other
platforms give each role its own user through the same layout; otherwise the user name is taken
from ``sasl.jaas.config`` (only the name: the password always comes from ``password``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

__all__ = ["CA_FILE", "CERT_FILE", "JAAS_FILE", "KEY_FILE", "PASSWORD_FILE", "Found", "read_dir"]

CA_FILE = "ca.crt"
CERT_FILE = "user.crt"
KEY_FILE = "user.key"
PASSWORD_FILE = "password"
USERNAME_FILE = "username"
JAAS_FILE = "sasl.jaas.config"

_JAAS_USER = re.compile(r"""\busername\s*=\s*"([^"]*)\"""")


@dataclass(frozen=True, slots=True)
class Found:
    """What the directory holds; ``None`` where its file is absent."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None


def _file(directory: Path, name: str) -> Path | None:
    path = directory / name
    return path if path.is_file() else None


def _text(path: Path | None) -> str | None:
    if path is None:
        return None
    # Secrets created from files often end with a newline that is not part of the value.
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def read_dir(directory: Path) -> Found:
    """The well-known files of ``directory`` (which must exist; the caller checks)."""
    username = _text(_file(directory, USERNAME_FILE))
    if not username:
        jaas = _text(_file(directory, JAAS_FILE)) or ""
        match = _JAAS_USER.search(jaas)
        username = match.group(1) if match else None
    password = _text(_file(directory, PASSWORD_FILE))
    return Found(
        ca_file=_file(directory, CA_FILE),
        cert_file=_file(directory, CERT_FILE),
        key_file=_file(directory, KEY_FILE),
        username=username or None,
        password=SecretStr(password) if password else None,
    )
