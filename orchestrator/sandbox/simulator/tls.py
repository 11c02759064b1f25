"""A throwaway certificate authority and a ``localhost`` server certificate, generated at start.

Real clients (the official SDKs among them) only speak https to the Voice API. A separate CA (not a
self-signed leaf) keeps strict verifiers happy: clients trust ``ca.crt`` and see a proper server
certificate for ``localhost``, ``127.0.0.1`` and ``::1``. Keys never leave the directory. The CA
is the local stack's one (``orchestrator.localbroker.tls``), which the local broker's TLS
listeners use as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.localbroker.tls import load_or_create_ca, server_pem_files

__all__ = ["TlsFiles", "generate_tls"]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def generate_tls(directory: Path, hosts: tuple[str, ...] = ("localhost",)) -> TlsFiles:
    """Write ``ca.crt``, ``cert.pem`` (server + CA chain) and ``key.pem`` into ``directory``."""
    ca = load_or_create_ca(directory, "Voice API simulator local CA")
    cert_file, key_file = server_pem_files(ca, directory, hosts)
    return TlsFiles(ca.ca_file, cert_file, key_file)
