"""Find, or install, ``promtool``: Prometheus' own parser for rule files and PromQL.

Order: ``$PROMTOOL`` or ``promtool`` on PATH; a copy cached by an earlier run; the binary out of
Debian's ``prometheus`` package, fetched with ``apt-get download`` and unpacked with ``dpkg-deb``
into the cache (the package is not installed: no daemon, no service, no dependencies: promtool
needs only libc); last, ``go install`` of ``cmd/promtool`` through the Go module proxy into the
cache (slow: it compiles Prometheus, minutes on two cores). Where packages come from is the
machine's apt and Go configuration, never this file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .kubectl import CACHE_DIR, cache_binary

CACHED_PROMTOOL = CACHE_DIR / "promtool"
DEBIAN_PACKAGE = "prometheus"
GO_MODULE = "github.com/prometheus/prometheus/cmd/promtool@v0.316.0"

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Promtool:
    path: str
    version: str
    origin: str


def probe(path: str, origin: str) -> Promtool | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return Promtool(path, first[0] if first else "?", origin)


def _from_path() -> Promtool | None:
    explicit = os.environ.get("PROMTOOL")
    if explicit:
        return probe(explicit, "$PROMTOOL")
    found = shutil.which("promtool")
    return probe(found, "PATH") if found else None


def _store(binary: Path, origin: str) -> Promtool | None:
    cache_binary(binary.read_bytes(), CACHED_PROMTOOL)
    return probe(str(CACHED_PROMTOOL), origin)


def _download_deb(tmp: Path, log: Log) -> Path | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in range(2):
        out = subprocess.run(
            ["apt-get", "download", "-q", DEBIAN_PACKAGE],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
        debs = list(tmp.glob(f"{DEBIAN_PACKAGE}_*.deb"))
        if out.returncode == 0 and debs:
            return debs[0]
        if attempt == 0 and os.geteuid() == 0:
            log("apt: prometheus not downloadable yet; running apt-get update once")
            subprocess.run(
                ["apt-get", "update", "-q"], capture_output=True, timeout=300, check=False, env=env
            )
        else:
            log(f"apt: download failed: {out.stderr.strip()[-300:]}")
    return None


def _from_debian(log: Log) -> Promtool | None:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        log("apt-get/dpkg-deb unavailable: not taking promtool from Debian's package")
        return None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            deb = _download_deb(tmp, log)
            if deb is None:
                return None
            log(f"apt: unpacking promtool from {deb.name}")
            tar = subprocess.run(
                ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, timeout=300
            )
            (tmp / "fs.tar").write_bytes(tar.stdout)
            with tarfile.open(tmp / "fs.tar") as fs:
                member = fs.extractfile("./usr/bin/promtool")
                if member is None:
                    raise KeyError("./usr/bin/promtool")
                (tmp / "promtool").write_bytes(member.read())
        except (OSError, subprocess.TimeoutExpired, KeyError, tarfile.TarError) as err:
            log(f"apt: {err}")
            return None
        return _store(tmp / "promtool", "Debian package")


def _from_go(log: Log) -> Promtool | None:
    go = shutil.which("go")
    if go is None:
        log("go not found: not building promtool through the Go module proxy")
        return None
    log(f"go: building {GO_MODULE} (takes minutes)")
    with tempfile.TemporaryDirectory() as gobin:
        try:
            out = subprocess.run(
                [go, "install", GO_MODULE],
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
                env={**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"},
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            log(f"go: {err}")
            return None
        built = Path(gobin) / "promtool"
        if out.returncode != 0 or not built.is_file():
            log(f"go: install failed: {out.stderr.strip()[-300:]}")
            return None
        return _store(built, "Go module proxy")


def ensure_promtool(log: Log, *, install: bool = True) -> Promtool | None:
    """A usable promtool, installing one if allowed; ``None`` (reasons logged) if not."""
    found = _from_path()
    if found:
        return found
    if CACHED_PROMTOOL.is_file():
        found = probe(str(CACHED_PROMTOOL), "cache")
        if found:
            return found
    if not install or os.environ.get("DEPLOY_CHECK_NO_INSTALL"):
        log("promtool missing and installing is disabled")
        return None
    return _from_debian(log) or _from_go(log)


def check_rules(promtool: Promtool, rule_file: Path) -> tuple[bool, str]:
    """``promtool check rules FILE``: (passed, its output)."""
    out = subprocess.run(
        [promtool.path, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return out.returncode == 0, (out.stdout + out.stderr).strip()
