"""One connection before a role starts, so a security mistake ends it with one line, at once.

aiokafka treats every failed connection alike: a wrong password or an untrusted certificate is
logged as "Unable connect to ..." and retried, and ``start()`` finally raises "Unable to bootstrap"
(or, in the ingress, retries forever), which names neither the cause nor the setting. So each role
and CLI command first opens one connection to the bootstrap servers exactly as its clients will
(same TLS context, same SASL exchange, then one metadata request) and turns a failure of the
authentication or TLS kind into a :class:`ConfigError` naming the setting to fix, e.g.
``KAFKA_SASL_PASSWORD: 127.0.0.1:9093 rejected user 'worker' (SCRAM-SHA-512): wrong password, or
no such KAFKA_SASL_USERNAME``. The CLI prints it as one line and exits with code 2.

Every case here fails within a second on a live broker (tests/integration/security). An
unreachable broker (refused, timed out, unknown host) is not this module's business: it returns,
and the role does what it always does (the ingress keeps retrying and answers 503, the others stop
with ``KAFKA_BOOTSTRAP_SERVERS: cannot reach ...``).
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from orchestrator.config import ConfigError, Settings
from orchestrator.kafka.security import client_kwargs, uses_sasl, uses_tls

__all__ = ["BrokerUnreachable", "check_connection", "denied_by_acls"]

# OpenSSL's verify codes for a certificate valid, but not for the name that was dialled.
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# TLS alerts a broker sends when it refuses (or misses) the client's certificate.
_CLIENT_CERT_ALERTS = (
    "ALERT_BAD_CERTIFICATE",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_UNKNOWN_CA",
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_ACCESS_DENIED",
    "ALERT_HANDSHAKE_FAILURE",
)
# A TLS record header read as a Kafka length prefix is at least 0x14030000 bytes.
_TLS_RECORD_AS_LENGTH = 0x14000000


def _bootstrap_hosts(servers: str) -> list[tuple[str, int]]:
    out = []
    for part in servers.split(","):
        host, _, port = part.strip().rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


def _closed_reason(err: BaseException) -> BaseException | None:
    """What actually closed a connection aiokafka reports as "closed"."""
    return err.__cause__ or err.__context__


class _Diagnosis:
    """Maps one failed connection attempt to a one-line :class:`ConfigError`, or to None."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.s = settings
        self.addr = f"{host}:{port}"
        self.host = host
        self.proto = settings.kafka_security_protocol

    def __call__(self, err: BaseException) -> ConfigError | None:
        if isinstance(err, SaslAuthenticationFailed):
            return ConfigError(
                f"KAFKA_SASL_PASSWORD: {self.addr} rejected user {self.s.kafka_sasl_username!r} "
                f"({self.s.kafka_sasl_mechanism}): wrong password, or no such KAFKA_SASL_USERNAME"
            )
        if isinstance(err, UnsupportedSaslMechanismError):
            return ConfigError(
                f"KAFKA_SASL_MECHANISM: {self.addr} does not accept "
                f"{self.s.kafka_sasl_mechanism} ({err})"
            )
        if isinstance(err, IllegalSaslStateError):
            return ConfigError(
                f"KAFKA_SECURITY_PROTOCOL: {self.addr} does not speak SASL; use "
                f"{'SSL' if uses_tls(self.proto) else 'PLAINTEXT'} for this listener, or the "
                "address of the SASL listener"
            )
        if isinstance(err, ssl.SSLCertVerificationError):
            return self._untrusted(err)
        if isinstance(err, KafkaConnectionError | ssl.SSLError | ConnectionResetError):
            return self._closed(err)
        return None

    def _untrusted(self, err: ssl.SSLCertVerificationError) -> ConfigError:
        reason = err.verify_message or "certificate verify failed"
        if err.verify_code in _NAME_MISMATCH:
            return ConfigError(
                f"KAFKA_BOOTSTRAP_SERVERS: the certificate of {self.addr} is not valid for the "
                f"name {self.host!r} ({reason}); use the name the certificate was issued for"
            )
        ca = self.s.kafka_ssl_ca_file
        trust = f"the CA in {ca}" if ca else "the system's trust store (KAFKA_SSL_CA_FILE unset)"
        return ConfigError(
            f"KAFKA_SSL_CA_FILE: the certificate of {self.addr} is not trusted by {trust} "
            f"({reason})"
        )

    def _closed(self, err: BaseException) -> ConfigError | None:
        cause = _closed_reason(err) if isinstance(err, KafkaConnectionError) else err
        if isinstance(cause, ssl.SSLError) and any(
            alert in str(cause.reason or cause) for alert in _CLIENT_CERT_ALERTS
        ):
            if self.s.kafka_ssl_cert_file is None:
                return ConfigError(
                    f"KAFKA_SSL_CERT_FILE: {self.addr} requires a client certificate (mTLS) and "
                    "none is set (KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE, or user.crt and "
                    "user.key in KAFKA_CREDENTIALS_DIR)"
                )
            return ConfigError(
                f"KAFKA_SSL_CERT_FILE: {self.addr} refused the client certificate in "
                f"{self.s.kafka_ssl_cert_file} (not signed by a CA the cluster trusts, or expired)"
            )
        if not uses_tls(self.proto):
            if (
                isinstance(cause, asyncio.IncompleteReadError)
                and (cause.expected or 0) >= _TLS_RECORD_AS_LENGTH
            ):
                return ConfigError(
                    f"KAFKA_SECURITY_PROTOCOL: {self.addr} answers with TLS; use "
                    f"{'SASL_SSL' if uses_sasl(self.proto) else 'SSL or SASL_SSL'}"
                )
            if not uses_sasl(self.proto):
                return ConfigError(
                    f"KAFKA_SECURITY_PROTOCOL: {self.addr} closed the PLAINTEXT connection at "
                    "once; the listener requires SASL or TLS (SASL_PLAINTEXT, SSL or SASL_SSL)"
                )
            return None
        if isinstance(err, ssl.SSLError | ConnectionResetError):
            return ConfigError(
                f"KAFKA_SECURITY_PROTOCOL: {self.addr} did not complete a TLS handshake; the "
                "listener is not a TLS one (PLAINTEXT or SASL_PLAINTEXT), or not Kafka"
            )
        if not uses_sasl(self.proto):
            return ConfigError(
                f"KAFKA_SECURITY_PROTOCOL: {self.addr} closed the connection after the TLS "
                "handshake; the listener requires SASL (SASL_SSL) or a client certificate"
            )
        return None


async def _probe(settings: Settings, host: str, port: int, timeout_s: float) -> bool:
    """True when a metadata request succeeded; False when unreachable; raises on a mistake."""
    diagnose = _Diagnosis(settings, host, port)
    try:
        conn = await create_conn(
            host,
            port,
            request_timeout_ms=int(timeout_s * 1000),
            **client_kwargs(settings),
        )
        try:
            await conn.send(MetadataRequest([]))
        finally:
            conn.close()
    except (OSError, TimeoutError, KafkaError) as err:
        problem = diagnose(err)
        if problem is not None:
            raise problem from None
        return False
    return True


class BrokerUnreachable(Exception):
    """No bootstrap server answered: for a command that cannot wait, one line and exit 1."""


async def check_connection(
    settings: Settings,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
    required: bool = False,
) -> None:
    """Raise :class:`ConfigError` if the settings cannot authenticate to the bootstrap servers.

    Tries each bootstrap server until one answers. When none is reachable within ``timeout``
    seconds it returns quietly (a role decides itself whether to wait), or, with ``required``
    (the CLI's one-shot commands, which would otherwise fail later with a client's traceback),
    raises :class:`BrokerUnreachable` naming the servers.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for host, port in _bootstrap_hosts(settings.kafka_bootstrap_servers):
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            async with asyncio.timeout(left):
                if await _probe(settings, host, port, min(left, 5.0)):
                    return
        except TimeoutError:
            break
    if required:
        raise BrokerUnreachable(
            f"cannot reach the Kafka broker at {settings.kafka_bootstrap_servers} "
            "(KAFKA_BOOTSTRAP_SERVERS): is it running?"
        )


_DENIED = {
    TopicAuthorizationFailedError: "a topic",
    GroupAuthorizationFailedError: "a consumer group",
    ClusterAuthorizationFailedError: "a cluster operation",
    TransactionalIdAuthorizationFailed: "a transactional id",
}


def denied_by_acls(err: BaseException) -> str | None:
    """One line for a refusal by the cluster's ACLs, which only shows once a client uses a
    topic or a group (after this module's check has passed); None for any other error."""
    for kind, what in _DENIED.items():
        if isinstance(err, kind):
            return (
                f"KAFKA_SASL_USERNAME: the cluster denies this user {what} ({err}); grant it "
                "the ACLs of its KafkaUser (deploy/k8s/kafka-users, docs/deploy.md)"
            )
    return None
