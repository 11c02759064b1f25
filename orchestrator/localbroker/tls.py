"""A certificate authority for the local broker, generated at run time (no key is ever committed).

The secure listeners need a server certificate that clients verify exactly as they verify a
production cluster's: against a CA file, with the host name checked. So this makes a CA, a server
certificate for the broker's host (plus ``localhost``, ``127.0.0.1`` and ``::1``), and client
certificates for mTLS, all in PEM, which Kafka 4.x reads directly (``ssl.keystore.type=PEM``): no
keytool, no Java keystores.

Client credentials are written in the layout of a Strimzi ``KafkaUser`` secret (``ca.crt``,
``user.crt``, ``user.key``), so ``KAFKA_CREDENTIALS_DIR`` can point straight at them, as it points
at the mounted secret in a pod. Keys are unencrypted PKCS#8, mode 0600, and live in the broker's
data directory only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "LocalCA",
    "client_credentials",
    "load_or_create_ca",
    "server_keystore",
    "server_pem_files",
]

_VALID = dt.timedelta(days=365)
_ORG = "voice-orchestrator local broker"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class LocalCA:
    """The CA's certificate and key, and where the certificate is (the path clients trust)."""

    directory: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    def issue(
        self, cn: str, *, server_hosts: tuple[str, ...] = ()
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A leaf certificate: for a server when ``server_hosts`` is given, else for a client."""
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server_hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(_alt_names(server_hosts)), critical=False
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        return builder.sign(self.key, hashes.SHA256()), key


def _alt_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for h in (*hosts, "localhost", "127.0.0.1", "::1"):
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(h))
        except ValueError:
            name = x509.DNSName(h)
        if name not in names:
            names.append(name)
    return names


def _new_ca(directory: Path, cn: str) -> LocalCA:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = LocalCA(directory, cert, key)
    ca.ca_file.write_bytes(_pem(cert))
    _write_key(directory / "ca.key", key)
    return ca


def load_or_create_ca(directory: Path, cn: str = "voice-orchestrator local CA") -> LocalCA:
    """The CA in ``directory``, created on first use: a kept data directory keeps its CA, so
    clients that trust it keep working across broker restarts."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return LocalCA(directory, cert, key)
    return _new_ca(directory, cn)


def server_keystore(ca: LocalCA, path: Path, hosts: tuple[str, ...]) -> Path:
    """One PEM file with the broker's key and its certificate chain (Kafka's PEM keystore)."""
    cert, key = ca.issue("local-kafka-broker", server_hosts=hosts)
    _write_key(path, key)
    with path.open("ab") as f:
        f.write(_pem(cert) + _pem(ca.cert))
    return path


def server_pem_files(
    ca: LocalCA, directory: Path, hosts: tuple[str, ...], cn: str = "localhost"
) -> tuple[Path, Path]:
    """``cert.pem`` (the server certificate, then the CA's) and ``key.pem``, as TLS servers such
    as uvicorn take them (the simulator's https uses this CA too)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = ca.issue(cn, server_hosts=hosts)
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(_pem(cert) + _pem(ca.cert))
    _write_key(key_file, key)
    return cert_file, key_file


def client_credentials(ca: LocalCA, directory: Path, user: str) -> Path:
    """``ca.crt``, ``user.crt`` and ``user.key`` for ``user`` (certificate CN), as in a Strimzi
    KafkaUser secret with the cluster CA mounted beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = ca.issue(user)
    (directory / "ca.crt").write_bytes(_pem(ca.cert))
    (directory / "user.crt").write_bytes(_pem(cert))
    _write_key(directory / "user.key", key)
    return directory
