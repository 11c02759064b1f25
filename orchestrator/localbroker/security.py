"""Secure listeners for the local broker: TLS, SASL (SCRAM and PLAIN), mTLS, and ACLs.

So the product's security settings can be exercised end to end without a cluster, the local broker
adds, beside its PLAINTEXT listener (kept for the controller, inter-broker traffic and the
broker's own topic set-up):

- ``SECURE``: ``SASL_SSL`` with ``--tls`` and SASL users, ``SASL_PLAINTEXT`` with users only,
  ``SSL`` with ``--tls`` only. SCRAM-SHA-256 and SCRAM-SHA-512 credentials are created when the
  storage is formatted (``StorageTool format --add-scram``, KIP-900), PLAIN users live in the
  listener's JAAS configuration. Several mechanisms share the listener, as on Strimzi or MSK.
- ``MTLS``: ``SSL`` requiring a client certificate signed by the generated CA; the certificate's
  CN becomes the principal (``User:<CN>``), as Strimzi maps TLS users.

With ``authorizer`` on, Kafka's ``StandardAuthorizer`` enforces ACLs on the secure listeners
(deny unless allowed); the PLAINTEXT listener's anonymous principal is a super user so the
broker itself and the set-up code keep working. Tests use it to prove that the generated
``KafkaUser`` ACLs are enough for each role, and no more is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.localbroker.tls import client_credentials, load_or_create_ca, server_keystore

__all__ = ["BrokerSecurity", "SaslUser", "parse_user"]

SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
SECURE_LISTENER = "SECURE"
MTLS_LISTENER = "MTLS"
# Characters that would break the StorageTool's ``[name=...,password=...]`` syntax or the JAAS
# string; local test credentials do not need them.
_FORBIDDEN = set(',]["=\\;') | {" "}


@dataclass(frozen=True)
class SaslUser:
    name: str
    password: str = field(repr=False)


def parse_user(value: str, option: str) -> SaslUser:
    """``USER:PASSWORD`` from the command line; errors name the option, never the password."""
    name, sep, password = value.partition(":")
    if not sep or not name or not password:
        raise ValueError(f"{option}: expected USER:PASSWORD")
    if set(name) & _FORBIDDEN or set(password) & _FORBIDDEN:
        raise ValueError(
            f'{option}: user names and passwords may not contain spaces or any of , ] [ " = \\ ;'
        )
    return SaslUser(name, password)


@dataclass(frozen=True)
class BrokerSecurity:
    """What the local broker serves besides PLAINTEXT; the default serves nothing more."""

    tls: bool = False
    scram: tuple[SaslUser, ...] = ()
    plain: tuple[SaslUser, ...] = ()
    mtls_users: tuple[str, ...] = ()  # one client certificate per name; listener only if any
    authorizer: bool = False

    @property
    def sasl(self) -> bool:
        return bool(self.scram or self.plain)

    @property
    def secure_protocol(self) -> str | None:
        """The ``SECURE`` listener's protocol, or None when there is none."""
        if self.sasl:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else None

    @property
    def needs_ca(self) -> bool:
        return self.tls or bool(self.mtls_users)

    def mechanisms(self) -> list[str]:
        return [*(SCRAM_MECHANISMS if self.scram else ()), *(["PLAIN"] if self.plain else [])]

    def listeners(self, host: str, secure_port: int, mtls_port: int) -> dict[str, tuple[str, str]]:
        """Listener name -> (protocol, address)."""
        out: dict[str, tuple[str, str]] = {}
        if self.secure_protocol:
            out[SECURE_LISTENER] = (self.secure_protocol, f"{host}:{secure_port}")
        if self.mtls_users:
            out[MTLS_LISTENER] = ("SSL", f"{host}:{mtls_port}")
        return out

    def prepare_tls(self, tls_dir: Path, host: str) -> dict[str, Path]:
        """Generate (or keep) the CA, the broker's keystore and the clients' credentials."""
        ca = load_or_create_ca(tls_dir)
        paths = {"ca_file": ca.ca_file}
        paths["keystore"] = server_keystore(ca, tls_dir / "broker.pem", (host,))
        for user in self.mtls_users:
            paths[f"client:{user}"] = client_credentials(ca, tls_dir / "clients" / user, user)
        return paths

    def server_properties(self, tls: dict[str, Path]) -> dict[str, str]:
        """The broker settings for the secure listeners (merged over the PLAINTEXT ones)."""
        props: dict[str, str] = {}
        if self.needs_ca:
            props.update(
                {
                    "ssl.keystore.type": "PEM",
                    "ssl.keystore.location": str(tls["keystore"]),
                    "ssl.truststore.type": "PEM",
                    "ssl.truststore.location": str(tls["ca_file"]),
                    # Principal of a client certificate: its CN (User:<CN>), as Strimzi maps it.
                    "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/,DEFAULT",
                }
            )
        if self.mtls_users:
            props[f"listener.name.{MTLS_LISTENER.lower()}.ssl.client.auth"] = "required"
        if self.sasl:
            secure = f"listener.name.{SECURE_LISTENER.lower()}"
            props["sasl.enabled.mechanisms"] = ",".join(self.mechanisms())
            props[f"{secure}.sasl.enabled.mechanisms"] = ",".join(self.mechanisms())
            for mech in SCRAM_MECHANISMS if self.scram else ():
                props[f"{secure}.{mech.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
            if self.plain:
                users = " ".join(f'user_{u.name}="{u.password}"' for u in self.plain)
                props[f"{secure}.plain.sasl.jaas.config"] = (
                    f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
                )
        if self.authorizer:
            props["authorizer.class.name"] = (
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            )
            props["super.users"] = "User:ANONYMOUS"
            props["allow.everyone.if.no.acl.found"] = "false"
        return props

    def format_args(self) -> list[str]:
        """``--add-scram`` arguments of ``StorageTool format``: both SCRAM mechanisms per user."""
        args: list[str] = []
        for user in self.scram:
            for mech in SCRAM_MECHANISMS:
                args += ["--add-scram", f"{mech}=[name={user.name},password={user.password}]"]
        return args

    def passwords(self) -> list[str]:
        """Every password, so error output can be scrubbed of them."""
        return [u.password for u in (*self.scram, *self.plain)]
