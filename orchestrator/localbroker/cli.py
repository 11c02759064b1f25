"""``orchestrator broker``: the local Apache Kafka with the product's topics, until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import ConfigError
from orchestrator.localbroker.broker import BrokerStartError, LocalBroker
from orchestrator.localbroker.security import BrokerSecurity, parse_user


@dataclass(frozen=True)
class SecureOptions:
    """The command line's secure listeners (``--tls``, ``--sasl-scram`` ...)."""

    tls: bool = False
    scram: tuple[str, ...] = ()
    plain: tuple[str, ...] = ()
    mtls: tuple[str, ...] = ()
    secure_port: int = 9093
    mtls_port: int = 9094

    def security(self) -> BrokerSecurity:
        try:
            return BrokerSecurity(
                tls=self.tls,
                scram=tuple(parse_user(u, "--sasl-scram") for u in self.scram),
                plain=tuple(parse_user(u, "--sasl-plain") for u in self.plain),
                mtls_users=self.mtls,
            )
        except ValueError as err:
            raise ConfigError(str(err)) from None


def client_settings(broker: LocalBroker) -> str:
    """The settings that reach each secure listener, as ``NAME=value`` lines (no password)."""
    sec = broker.security
    lines: list[str] = []
    if sec.secure_protocol:
        users = [*sec.scram, *sec.plain]
        lines.append(
            f"# {sec.secure_protocol} listener"
            + (f" ({', '.join(sec.mechanisms())}); set KAFKA_SASL_PASSWORD" if users else "")
        )
        lines += [
            f"KAFKA_BOOTSTRAP_SERVERS={broker.secure_bootstrap}",
            f"KAFKA_SECURITY_PROTOCOL={sec.secure_protocol}",
        ]
        if users:
            mech = sec.mechanisms()[0]
            lines += [f"KAFKA_SASL_MECHANISM={mech}", f"KAFKA_SASL_USERNAME={users[0].name}"]
        if sec.tls:
            lines.append(f"KAFKA_SSL_CA_FILE={broker.ca_file}")
    for user in sec.mtls_users:
        lines += [
            f"# mTLS listener, client certificate of {user}",
            f"KAFKA_BOOTSTRAP_SERVERS={broker.mtls_bootstrap}",
            "KAFKA_SECURITY_PROTOCOL=SSL",
            f"KAFKA_CREDENTIALS_DIR={broker.client_credentials(user)}",
        ]
    return "\n".join(lines)


def run_broker_cli(
    host: str,
    port: int,
    partitions: int | None,
    data_dir: Path | None,
    version: str | None,
    secure: SecureOptions | None = None,
) -> None:
    import anyio

    from orchestrator.config import load_settings
    from orchestrator.kafka.admin import ensure_topics
    from orchestrator.logs import configure_logging, get_logger

    secure = secure or SecureOptions()
    security = secure.security()
    # The broker sets its topics up over its own PLAINTEXT listener, whatever the environment
    # says about the security of the cluster the roles will use.
    settings = load_settings(
        kafka_bootstrap_servers=f"{host}:{port or 9092}",
        topic_partitions=partitions,
        topic_replication_factor=1,
        kafka_security_protocol="PLAINTEXT",
        kafka_sasl_mechanism=None,
        kafka_sasl_username=None,
        kafka_sasl_password=None,
        kafka_ssl_ca_file=None,
        kafka_ssl_cert_file=None,
        kafka_ssl_key_file=None,
        kafka_credentials_dir=None,
    )
    configure_logging(settings)
    log = get_logger("broker")
    started = time.monotonic()
    broker = LocalBroker(
        host=host,
        port=port,
        data_dir=data_dir,
        version=version,
        security=security,
        secure_port=secure.secure_port if security.secure_protocol else 0,
        mtls_port=secure.mtls_port if security.mtls_users else 0,
    )
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    try:
        broker.start()
    except BrokerStartError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
        created = anyio.run(lambda: ensure_topics(settings, create=True))
        secure_fields: dict[str, str] = {}
        if security.secure_protocol:
            secure_fields["secure_bootstrap"] = broker.secure_bootstrap
            secure_fields["secure_protocol"] = security.secure_protocol
        if security.mtls_users:
            secure_fields["mtls_bootstrap"] = broker.mtls_bootstrap
        if security.needs_ca:
            secure_fields["ca_file"] = str(broker.ca_file)
        log.info(
            "broker ready",
            bootstrap=broker.bootstrap,
            broker=broker.describe(),
            topics_created=len(created),
            startup_s=round(time.monotonic() - started, 2),
            data_dir=str(broker.data_dir),
            log_file=str(broker.log_path),
            **secure_fields,
        )
        if security.secure_protocol or security.mtls_users:
            print(client_settings(broker), flush=True)
        while not stop and broker.alive():
            time.sleep(0.2)
        if not broker.alive():
            log.error("broker exited unexpectedly", log_file=str(broker.log_path))
            sys.exit(1)
    finally:
        stopping = time.monotonic()
        broker.stop()
        log.info("broker stopped", stop_s=round(time.monotonic() - stopping, 2))
