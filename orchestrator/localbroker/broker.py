"""A single-node Apache Kafka 4.x broker (KRaft, combined broker and controller) on loopback.

The demo, the tests, the soak and the benches all run on the broker users run in production, so
what they prove (transactions, compaction, rebalances bounded by session timeouts, message size
limits) is proved on the real thing. The broker is a child JVM: its storage is formatted fresh
for each run unless a data directory is kept, it is ready only once a metadata request lists it,
and it dies with the process that started it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import ConfigError
from orchestrator.localbroker.java import Java, find_java
from orchestrator.localbroker.ports import free_port, port_in_use
from orchestrator.localbroker.provision import KafkaDistribution, provision_kafka
from orchestrator.localbroker.security import BrokerSecurity

__all__ = ["BrokerStartError", "LocalBroker"]

HEAP_ENV = "LOCAL_KAFKA_HEAP"

# Broker settings for one node on a developer machine or CI runner (2 cores, 24 GB). Everything
# the product relies on in production keeps Kafka's default (message.max.bytes, session timeout
# bounds, compaction); only replication and internal-topic sizes shrink to one node.
_SERVER_DEFAULTS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "10",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # The cleaner wakes every second instead of every 15, so compaction is observable in tests.
    "log.cleaner.backoff.ms": "1000",
    # A restart after kill -9 waits out the old registration's session before the broker is
    # unfenced: 6 s instead of 9 keeps broker-loss tests from idling, while a runner starved of
    # CPU for a few seconds does not fence its own broker (3 s did, under the full suite).
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
    "num.network.threads": "3",
    "num.io.threads": "4",
}

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class BrokerStartError(ConfigError):
    """The broker could not start; the message says why and where its log is."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux ``PR_SET_PDEATHSIG``: the JVM gets SIGKILL if the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _cluster_id() -> str:
    """A random cluster id, as Kafka's ``Uuid.randomUuid()`` makes it: never starting with "-",
    which ``StorageTool``'s argument parser would take for an option (1 run in 64 failed so)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _metadata_lists_a_broker(bootstrap: str, timeout: float) -> bool:
    """One metadata round trip, in a thread of its own (callers may be inside an event loop)."""
    from aiokafka.client import AIOKafkaClient

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except Exception:
            return False
        finally:
            await client.close()

    result: list[bool] = [False]

    def run() -> None:
        result[0] = asyncio.run(probe())

    t = threading.Thread(target=run, name="broker-ready-probe", daemon=True)
    t.start()
    t.join(timeout + 5)
    return result[0]


@dataclass
class LocalBroker:
    """A running single-node Kafka; :meth:`stop` it or use it as a context manager.

    ``data_dir`` keeps storage between runs (formatted only when empty); without it each start
    gets a fresh temporary directory, removed at :meth:`stop`. :meth:`kill` followed by
    :meth:`start` restarts on the same port and storage, like a broker that crashed.

    ``security`` adds TLS, SASL and mTLS listeners on ports of their own
    (``orchestrator/localbroker/security.py``): :attr:`secure_bootstrap`, :attr:`mtls_bootstrap`,
    with the generated CA at :attr:`ca_file`. :attr:`bootstrap` stays PLAINTEXT.
    """

    host: str = "127.0.0.1"
    port: int = 0
    data_dir: Path | None = None
    version: str | None = None
    heap: str = field(default_factory=lambda: os.environ.get(HEAP_ENV, "1g"))
    extra_config: dict[str, str] = field(default_factory=dict)
    controller_port: int = 0
    security: BrokerSecurity = field(default_factory=BrokerSecurity)
    secure_port: int = 0
    mtls_port: int = 0
    distribution: KafkaDistribution | None = field(default=None, repr=False)
    java: Java | None = field(default=None, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _owns_dir: bool = field(default=False, repr=False)
    _tls: dict[str, Path] = field(default_factory=dict, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def secure_bootstrap(self) -> str:
        """The ``SECURE`` listener (SASL_SSL, SASL_PLAINTEXT or SSL, see ``security``)."""
        if self.security.secure_protocol is None:
            raise ValueError("this broker has no secure listener (security.tls / sasl users)")
        return f"{self.host}:{self.secure_port}"

    @property
    def mtls_bootstrap(self) -> str:
        """The ``MTLS`` listener: SSL with a client certificate required."""
        if not self.security.mtls_users:
            raise ValueError("this broker has no mTLS listener (security.mtls_users)")
        return f"{self.host}:{self.mtls_port}"

    @property
    def ca_file(self) -> Path:
        """The generated CA certificate that signs the broker's (and mTLS clients') certificates."""
        if "ca_file" not in self._tls:
            raise ValueError("this broker serves no TLS (security.tls / mtls_users)")
        return self._tls["ca_file"]

    def client_credentials(self, user: str) -> Path:
        """A directory with ``ca.crt``, ``user.crt``, ``user.key`` for an mTLS user (the Strimzi
        KafkaUser secret layout, usable as ``KAFKA_CREDENTIALS_DIR``)."""
        return self._tls[f"client:{user}"]

    @property
    def log_path(self) -> Path | None:
        return self.data_dir / "server.log" if self.data_dir else None

    def describe(self) -> str:
        dist = self.distribution or provision_kafka(self.version)
        java = self.java or find_java()
        return f"Apache Kafka {dist.version} (KRaft, single node) on {java.describe()}"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> LocalBroker:
        self.distribution = self.distribution or provision_kafka(self.version)
        self.java = self.java or find_java()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="local-kafka-"))
            self._owns_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        if self.security.needs_ca:
            self._tls = self.security.prepare_tls(self.data_dir / "tls", self.host)
        self._write_config()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._format()
        else:
            self._check_formatted_users()
        self._launch()
        try:
            self._wait_ready(timeout)
        except BrokerStartError:
            self.kill()
            raise
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def kill(self) -> None:
        """Stop abruptly, keeping storage (tests of broker loss restart it with :meth:`start`)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the broker stops answering but keeps its connections open (a partition)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Kafka's controlled shutdown), SIGKILL after ``timeout``; temporary storage
        is removed."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused JVM cannot act on SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._owns_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir, self._owns_dir = None, False

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals --------------------------------------------------------------------------

    def _state_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "local-broker.json"

    def _choose_ports(self) -> None:
        """Keep the ports a kept data directory was formatted with: the controller's address is
        part of the quorum the storage remembers."""
        state = self._state_file()
        saved = json.loads(state.read_text()) if state.exists() else {}
        if saved:
            self.port = self.port or int(saved["port"])
            self.controller_port = self.controller_port or int(saved["controller_port"])
            self.secure_port = self.secure_port or int(saved.get("secure_port", 0))
            self.mtls_port = self.mtls_port or int(saved.get("mtls_port", 0))
        if self.port == 0:
            self.port = free_port(self.host)
        elif port_in_use(self.host, self.port) and not self.alive():
            raise BrokerStartError(f"--port: {self.host}:{self.port} is already in use")
        if self.controller_port == 0:
            self.controller_port = free_port(self.host)
        for attr, option, wanted in (
            ("secure_port", "--secure-port", self.security.secure_protocol is not None),
            ("mtls_port", "--mtls-port", bool(self.security.mtls_users)),
        ):
            if not wanted:
                continue
            if getattr(self, attr) == 0:
                setattr(self, attr, free_port(self.host))
            elif port_in_use(self.host, getattr(self, attr)) and not self.alive():
                raise BrokerStartError(
                    f"{option}: {self.host}:{getattr(self, attr)} is already in use"
                )
        saved.update(
            port=self.port,
            controller_port=self.controller_port,
            secure_port=self.secure_port,
            mtls_port=self.mtls_port,
        )
        state.write_text(json.dumps(saved))

    def _server_properties(self) -> dict[str, str]:
        assert self.data_dir is not None
        props = dict(_SERVER_DEFAULTS)
        secure = self.security.listeners(self.host, self.secure_port, self.mtls_port)
        advertised = [f"PLAINTEXT://{self.host}:{self.port}"]
        advertised += [f"{name}://{addr}" for name, (_, addr) in secure.items()]
        props.update(
            {
                "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
                "listeners": ",".join(
                    [*advertised, f"CONTROLLER://{self.host}:{self.controller_port}"]
                ),
                "advertised.listeners": ",".join(advertised),
                "listener.security.protocol.map": ",".join(
                    [
                        props["listener.security.protocol.map"],
                        *(f"{name}:{proto}" for name, (proto, _) in secure.items()),
                    ]
                ),
                "log.dirs": str(self.data_dir / "logs"),
            }
        )
        props.update(self.security.server_properties(self._tls))
        props.update(self.extra_config)
        return props

    def _write_config(self) -> None:
        assert self.data_dir is not None
        text = "".join(f"{k}={v}\n" for k, v in self._server_properties().items())
        path = self.data_dir / "server.properties"
        path.touch(mode=0o600)  # PLAIN users' passwords may be in it
        path.write_text(text)
        (self.data_dir / "log4j2.properties").write_text(
            _LOG4J2.format(log=self.data_dir / "server.log")
        )

    def _java_cmd(self, *jvm: str) -> list[str]:
        assert self.java is not None and self.distribution is not None and self.data_dir
        return [
            self.java.path,
            *jvm,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            self.distribution.classpath,
        ]

    def _format(self) -> None:
        assert self.data_dir is not None
        cmd = [
            *self._java_cmd("-Xmx256m", "-XX:TieredStopAtLevel=1"),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            _cluster_id(),
            "--config",
            str(self.data_dir / "server.properties"),
            # No eligible leader replicas (KIP-966, on by default in 4.4): with one replica, a
            # broker that missed its heartbeats (a starved CPU) gets its partitions back with
            # an empty ISR and a leader elected from the ELR, and acks=all needs its own
            # AlterPartition before writes succeed again. Without ELR the replica stays in the
            # ISR. (The NOT_ENOUGH_REPLICAS warnings transactional producers log at start-up
            # are something else: KIP-890's partition verification reports a coordinator
            # still loading, or a transaction still completing, that way to older clients
            # such as aiokafka, which retry.)
            "--feature",
            "eligible.leader.replicas.version=0",
            # SCRAM credentials exist from the first moment (KIP-900); passwords are on this
            # short-lived command line, acceptable for a local broker's test users.
            *self.security.format_args(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            out = f"{done.stdout[-300:]}{done.stderr[-300:]}"
            for pw in self.security.passwords():
                out = out.replace(pw, "***")
            raise BrokerStartError(f"local broker: formatting storage failed: {out}")
        state = self._state_file()
        saved = json.loads(state.read_text())
        saved["scram_users"] = sorted(u.name for u in self.security.scram)
        state.write_text(json.dumps(saved))

    def _check_formatted_users(self) -> None:
        """SCRAM users are created when storage is formatted: a kept data directory formatted
        without a requested user cannot serve it."""
        saved = json.loads(self._state_file().read_text())
        missing = {u.name for u in self.security.scram} - set(saved.get("scram_users", []))
        if missing:
            raise BrokerStartError(
                f"--sasl-scram: the kept --data-dir was formatted without user(s) "
                f"{', '.join(sorted(missing))}; use a new --data-dir"
            )

    def _launch(self) -> None:
        assert self.data_dir is not None
        cmd = [
            *self._java_cmd(
                f"-Xms{min_heap(self.heap)}",
                f"-Xmx{self.heap}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
            ),
            "kafka.Kafka",
            str(self.data_dir / "server.properties"),
        ]
        with (self.data_dir / "stdout.log").open("ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it in order
                preexec_fn=_die_with_parent,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BrokerStartError(
                    f"local broker exited during start-up; see {self.log_path} and "
                    f"{self.data_dir and self.data_dir / 'stdout.log'}"
                )
            if port_in_use(self.host, self.port) and _metadata_lists_a_broker(self.bootstrap, 5):
                return
            time.sleep(0.2)
        raise BrokerStartError(f"local broker not ready within {timeout:.0f}s; see {self.log_path}")


def min_heap(heap: str) -> str:
    """The initial heap: a quarter of the maximum, at least 128m (a JVM flag string)."""
    units = {"k": 1, "m": 1024, "g": 1024 * 1024}
    unit = heap[-1].lower()
    kib = int(heap[:-1]) * units[unit] if unit in units else int(heap) // 1024
    return f"{max(128 * 1024, kib // 4) // 1024}m"
