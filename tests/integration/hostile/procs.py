"""The roles under attack run as their own processes, so their memory is theirs to measure.

``watched`` resets the process's peak RSS (``/proc/<pid>/clear_refs``), then probes ``/healthz``
every 20 ms from a thread of its own (the test's event loop is busy attacking) for at least a
second, while sampling ``VmRSS``; afterwards it reports the peak (``VmHWM``, or the highest
sample) and the probe latencies. The bound is on the 95th percentile (< 100 ms), with the slowest
probe under a second: on a shared 2-core machine running the suite on three workers, any process
is now and then descheduled for a few hundred ms, which says nothing about the attack, while a
stall of the server's event loop (the issue measured 4.7 s and 28 s) fails both. ``flood`` sends an attack over a raw socket and stops as soon as the server answers or
closes, as a client of a server that refuses early would.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: What every attack must stay under (the issue's bounds).
RSS_LIMIT_MB = 300.0
HEALTHZ_LIMIT_MS = 100.0  # 95th percentile of the probes
HEALTHZ_STALL_MS = 1000.0  # any probe
MIN_WINDOW_S = 1.0


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@dataclass
class Proc:
    """A role started as ``orchestrator ...`` (the CLI entry point, in this interpreter)."""

    popen: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def start_role(
    args: list[str], env: Mapping[str, str], port: int, log: Path, ready_path: str
) -> Proc:
    """Start ``orchestrator ARGS`` and wait until ``ready_path`` answers on ``port``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("VONAGE_", "KAFKA_"))}
    full_env.update(env)
    out = log.open("wb")
    popen = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", *args],
        cwd=ROOT,
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    proc = Proc(popen, port, full_env, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{args[0]} exited {popen.returncode}: {proc.output()[-2000:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", ready_path)
            if conn.getresponse().status < 500:
                return proc
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"{args[0]} did not answer on {port}: {proc.output()[-2000:]}")


@dataclass
class Measured:
    peak_rss_mb: float = 0.0
    healthz_ms: list[float] = field(default_factory=list)
    healthz_failures: list[str] = field(default_factory=list)

    @property
    def healthz_max_ms(self) -> float:
        return max(self.healthz_ms, default=0.0)

    @property
    def healthz_p95_ms(self) -> float:
        ordered = sorted(self.healthz_ms)
        return ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0.0

    @property
    def healthz_probes(self) -> int:
        return len(self.healthz_ms)

    def check(self, what: str) -> None:
        print(
            f"\n[hostile] {what}: peak RSS {self.peak_rss_mb:.0f} MB, /healthz p95 "
            f"{self.healthz_p95_ms:.1f} ms, max {self.healthz_max_ms:.1f} ms over "
            f"{self.healthz_probes} probes"
        )
        assert not self.healthz_failures, f"{what}: /healthz failed: {self.healthz_failures[:3]}"
        assert self.healthz_probes > 0, f"{what}: /healthz never probed"
        assert self.peak_rss_mb < RSS_LIMIT_MB, f"{what}: peak RSS {self.peak_rss_mb:.0f} MB"
        assert self.healthz_p95_ms < HEALTHZ_LIMIT_MS, (
            f"{what}: /healthz p95 {self.healthz_p95_ms:.1f} ms"
        )
        assert self.healthz_max_ms < HEALTHZ_STALL_MS, (
            f"{what}: /healthz stalled {self.healthz_max_ms:.1f} ms"
        )


@contextlib.contextmanager
def watched(proc: Proc, health_path: str = "/healthz") -> Iterator[Measured]:
    pid = proc.pid
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS from here on
    m = Measured()
    stop = threading.Event()

    def probe() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=5)
        while not stop.is_set():
            m.peak_rss_mb = max(m.peak_rss_mb, _status_kb(pid, "VmRSS") / 1024)
            started = time.perf_counter()
            try:
                conn.request("GET", health_path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    m.healthz_failures.append(f"status {resp.status}")
            except (OSError, http.client.HTTPException) as err:
                m.healthz_failures.append(repr(err))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=5)
                continue
            m.healthz_ms.append((time.perf_counter() - started) * 1000)
            stop.wait(0.02)
        conn.close()

    thread = threading.Thread(target=probe, name="healthz-probe", daemon=True)
    begun = time.monotonic()
    thread.start()
    try:
        yield m
    finally:
        time.sleep(max(0.1, MIN_WINDOW_S - (time.monotonic() - begun)))  # probes after, too
        stop.set()
        thread.join(10)
        m.peak_rss_mb = max(m.peak_rss_mb, _status_kb(pid, "VmHWM") / 1024)


@dataclass
class Answer:
    status: int | None
    body: bytes
    sent: int


def flood(port: int, head: bytes, chunk: bytes, total: int, within: float = 60.0) -> Answer:
    """Send ``head`` then ``chunk`` until ``total`` bytes or until the server answers/closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    pending = memoryview(head)
    sent = 0
    got = b""
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            want_write = sent < total + len(head)
            readable, writable, _ = select.select([sock], [sock] if want_write else [], [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                got += data
                if b"\r\n\r\n" in got:
                    break  # the head of an answer; the body is read below
                continue
            if writable:
                if not pending:
                    pending = memoryview(chunk)
                try:
                    n = sock.send(pending)
                except OSError:
                    break  # the server closed: read what it said
                sent += n
                pending = pending[n:]
        sock.setblocking(True)
        sock.settimeout(2)
        with contextlib.suppress(OSError):
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                got += data
                if b"\r\n\r\n" in got and _complete(got):
                    break
    finally:
        sock.close()
    status = None
    if got.startswith(b"HTTP/1."):
        status = int(got.split(b" ", 2)[1])
    return Answer(status, got.partition(b"\r\n\r\n")[2], sent)


def _complete(raw: bytes) -> bool:
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False
