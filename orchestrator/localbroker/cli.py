"""``orchestrator broker``: the local Apache Kafka with the product's topics, until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from orchestrator.localbroker.broker import BrokerStartError, LocalBroker


def run_broker_cli(
    host: str, port: int, partitions: int | None, data_dir: Path | None, version: str | None
) -> None:
    import anyio

    from orchestrator.config import load_settings
    from orchestrator.kafka.admin import ensure_topics
    from orchestrator.logs import configure_logging, get_logger

    settings = load_settings(
        kafka_bootstrap_servers=f"{host}:{port or 9092}",
        topic_partitions=partitions,
        topic_replication_factor=1,
    )
    configure_logging(settings)
    log = get_logger("broker")
    started = time.monotonic()
    broker = LocalBroker(host=host, port=port, data_dir=data_dir, version=version)
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
        log.info(
            "broker ready",
            bootstrap=broker.bootstrap,
            broker=broker.describe(),
            topics_created=len(created),
            startup_s=round(time.monotonic() - started, 2),
            data_dir=str(broker.data_dir),
            log_file=str(broker.log_path),
        )
        while not stop and broker.alive():
            time.sleep(0.2)
        if not broker.alive():
            log.error("broker exited unexpectedly", log_file=str(broker.log_path))
            sys.exit(1)
    finally:
        stopping = time.monotonic()
        broker.stop()
        log.info("broker stopped", stop_s=round(time.monotonic() - stopping, 2))
