"""Apache Kafka's jars for the local broker: resolved once by ``mvn``, verified, cached.

The committed ``pom.xml`` names coordinates only, so the machine's Maven configuration (its
mirrors, proxies and local repository) decides where the jars come from; nothing here names a
registry. Every jar is checked against the committed ``kafka-<version>.sha256`` before it is put
on a classpath, so a tampered or substituted artifact stops start-up instead of running. The
verified classpath is assembled under the build directory; a run that finds it complete and
intact calls no ``mvn`` at all, which is what makes the second run offline.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from orchestrator.config import ConfigError

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "KafkaDistribution",
    "build_dir",
    "provision_kafka",
    "write_lock",
]

VERSION_ENV = "LOCAL_KAFKA_VERSION"
BUILD_DIR_ENV = "ORCHESTRATOR_BUILD_DIR"


def _pom_text() -> str:
    return resources.files(__package__).joinpath("pom.xml").read_text()


def _pinned_version() -> str:
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", _pom_text())
    if found is None:  # pragma: no cover - the committed pom always has it
        raise ConfigError("local broker: pom.xml names no kafka.version")
    return found.group(1).strip()


DEFAULT_KAFKA_VERSION = _pinned_version()


@dataclass(frozen=True, slots=True)
class KafkaDistribution:
    """A verified set of broker jars for one Kafka version."""

    version: str
    lib_dir: Path

    @property
    def classpath(self) -> str:
        return os.pathsep.join(str(p) for p in sorted(self.lib_dir.glob("*.jar")))


def build_dir() -> Path:
    """Where assembled artifacts live: ``$ORCHESTRATOR_BUILD_DIR``, the checkout's ``build/``, or
    the user's cache directory when the package is installed outside a checkout."""
    override = os.environ.get(BUILD_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "build"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "voice-orchestrator"


def _lock_name(version: str) -> str:
    return f"kafka-{version}.sha256"


def _read_lock(version: str) -> dict[str, str]:
    lock = resources.files(__package__).joinpath(_lock_name(version))
    if not lock.is_file():
        raise ConfigError(
            f"{VERSION_ENV}: no committed checksums for Kafka {version} "
            f"(orchestrator/localbroker/{_lock_name(version)}); supported here: "
            f"{', '.join(sorted(_locked_versions()))}"
        )
    sums: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            sums[name] = digest
    return sums


def _locked_versions() -> list[str]:
    return [
        p.name[len("kafka-") : -len(".sha256")]
        for p in resources.files(__package__).iterdir()
        if p.name.startswith("kafka-") and p.name.endswith(".sha256")
    ]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mismatches(lib_dir: Path, sums: dict[str, str]) -> list[str]:
    """Every way ``lib_dir`` differs from the lock: missing, extra or altered jars."""
    present = {p.name for p in lib_dir.glob("*.jar")} if lib_dir.is_dir() else set()
    problems = [f"missing {name}" for name in sorted(set(sums) - present)]
    problems += [f"unexpected {name}" for name in sorted(present - set(sums))]
    problems += [
        f"checksum mismatch for {name}"
        for name in sorted(present & set(sums))
        if _sha256(lib_dir / name) != sums[name]
    ]
    return problems


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One provisioning at a time per version (parallel test workers start brokers together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mvn() -> str:
    found = shutil.which("mvn")
    if found is None:
        raise ConfigError(
            "mvn: Maven is needed once to fetch Apache Kafka's jars for the local broker "
            "(Debian: apt-get install maven); after that the cached classpath is used offline"
        )
    return found


def _resolve_with_maven(version: str, into: Path) -> None:
    """Run ``mvn dependency:copy-dependencies`` on the committed pom into ``into``."""
    work = into.parent / f".mvn-{version}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "pom.xml").write_text(_pom_text())
    print(
        f"local broker: resolving Apache Kafka {version} with mvn (first run only)...",
        file=sys.stderr,
        flush=True,
    )
    cmd = [
        _mvn(),
        "-B",
        "-q",
        "-f",
        str(work / "pom.xml"),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={into}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0:
        tail = " | ".join(
            line.strip() for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line
        )[-600:]
        raise ConfigError(f"mvn: could not resolve org.apache.kafka:kafka_2.13:{version}: {tail}")


def provision_kafka(version: str | None = None) -> KafkaDistribution:
    """The verified jars of Kafka ``version`` (default: the pom's), fetching them only if needed."""
    version = version or os.environ.get(VERSION_ENV) or DEFAULT_KAFKA_VERSION
    sums = _read_lock(version)
    root = build_dir() / "kafka"
    lib_dir = root / version / "libs"
    with _exclusive(root / f".{version}.lock"):
        if not _mismatches(lib_dir, sums):
            return KafkaDistribution(version, lib_dir)
        fresh = Path(tempfile.mkdtemp(prefix=f"libs-{version}-", dir=root))
        try:
            _resolve_with_maven(version, fresh)
            problems = _mismatches(fresh, sums)
            if problems:
                raise ConfigError(
                    f"local broker: Kafka {version} jars do not match "
                    f"{_lock_name(version)}: {'; '.join(problems[:5])}"
                )
            shutil.rmtree(lib_dir, ignore_errors=True)
            lib_dir.parent.mkdir(parents=True, exist_ok=True)
            fresh.rename(lib_dir)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    return KafkaDistribution(version, lib_dir)


def write_lock(version: str, target: Path) -> Path:
    """Resolve ``version`` afresh and write its checksum file (maintainers moving versions)."""
    with tempfile.TemporaryDirectory() as tmp:
        libs = Path(tmp) / "libs"
        _resolve_with_maven(version, libs)
        lines = [
            f"{_sha256(p)}  {p.name}" for p in sorted(libs.glob("*.jar"), key=lambda p: p.name)
        ]
    out = target / _lock_name(version)
    header = (
        f"# sha256 of every jar on the local broker's classpath for Kafka {version}\n"
        "# (written by `python -m orchestrator.localbroker.provision`; checked before each start)\n"
    )
    out.write_text(header + "\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    # Maintainers: `python -m orchestrator.localbroker.provision 4.4.0` writes kafka-4.4.0.sha256.
    print(write_lock(sys.argv[1], Path(__file__).parent))
