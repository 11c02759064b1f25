"""Lint the rules of ``deploy/Dockerfile`` that matter for production.

No Docker engine runs here, so the image cannot be built in tests; these rules make it correct by
construction instead: pinned bases (never ``latest``), a numeric non-root USER that matches the
manifests' ``runAsUser``, an exec-form ``orchestrator`` entrypoint (so SIGTERM reaches the role and
its drain), no secrets in ENV/ARG or copied files, COPY sources that exist and survive the
``.dockerignore``, OCI labels, and an image that carries the product only (the sandbox and the
local broker tooling excluded from every COPY).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .contract import IMAGE_UID
from .findings import Report

SECRET_NAME_RE = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE_KEY|CREDENTIAL|API_KEY)", re.I)
SECRET_FILE_RE = re.compile(r"(\.pem|\.key|\.p12|\.pfx|(^|/)\.env(\..*)?|id_rsa\w*)$")
FULL_VERSION_RE = re.compile(r"\d+\.\d+\.\d+")
Fail = Callable[[int, str], None]
#: Test bench and local-stack tooling: in the repository and a development install, never in the
#: production image (``orchestrator/sandbox/__init__.py`` says why they are apart).
NOT_IN_IMAGE = ("orchestrator/sandbox", "orchestrator/localbroker")
REQUIRED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
)


@dataclass(frozen=True, slots=True)
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    alias: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    out: list[Instruction] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buf = ""
    return out


def _substitute(value: str, args: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        return args.get(m.group(1) or m.group(2), m.group(0))

    return re.sub(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)", repl, value)


def _kv_pairs(args: str) -> dict[str, str]:
    """KEY=VALUE pairs of ENV/LABEL/ARG (also the legacy `ENV KEY VALUE` form)."""
    try:
        parts = shlex.split(args, posix=True)
    except ValueError:
        parts = args.split()
    if parts and "=" not in parts[0]:
        return {parts[0]: " ".join(parts[1:])}
    out = {}
    for p in parts:
        key, eq, value = p.partition("=")
        out[key] = value if eq else ""
    return out


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics, simplified: last matching pattern wins, `!` re-includes."""
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.rstrip("/")
        if p.startswith("**/"):
            hit = (
                fnmatch.fnmatch(path, p[3:])
                or fnmatch.fnmatch(path, p)
                or any(fnmatch.fnmatch(part, p[3:]) for part in path.split("/"))
            )
        else:
            hit = fnmatch.fnmatch(path, p) or path.startswith(p + "/")
        if hit:
            ignored = not neg
    return ignored


def lint_dockerfile(dockerfile: Path, repo_root: Path, report: Report) -> None:
    where = (
        str(dockerfile.relative_to(repo_root))
        if dockerfile.is_relative_to(repo_root)
        else str(dockerfile)
    )
    if not dockerfile.is_file():
        report.add("dockerfile", where, "missing")
        return

    def fail(line: int, message: str) -> None:
        report.add("dockerfile", f"{where}:{line}", message)

    instructions = parse(dockerfile.read_text())
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            parts = ins.args.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(_substitute(parts[0], global_args), alias, ins.line))
        elif ins.keyword == "ARG" and not stages:
            global_args.update(_kv_pairs(ins.args))
        elif stages:
            stages[-1].instructions.append(ins)
        else:
            fail(ins.line, f"{ins.keyword} before the first FROM")

    if not stages:
        fail(1, "no FROM instruction")
        return
    if len(stages) < 2:
        fail(stages[0].line, "single stage: build wheels in a build stage, ship only the runtime")

    aliases = {s.alias for s in stages if s.alias}
    for stage in stages:
        if stage.base in aliases or stage.base == "scratch":
            continue
        _check_base(stage, fail)

    for key in global_args:
        if SECRET_NAME_RE.search(key):
            fail(
                1, f"ARG {key}: build arguments are stored in the image history; never pass secrets"
            )
    for stage in stages:
        for ins in stage.instructions:
            if ins.keyword in ("ENV", "ARG"):
                for key, value in _kv_pairs(ins.args).items():
                    if SECRET_NAME_RE.search(key) and (value or ins.keyword == "ARG"):
                        fail(
                            ins.line,
                            f"{ins.keyword} {key}: secrets must not be baked into the image; "
                            "they come from the mounted Secret at run time",
                        )
            if ins.keyword == "ADD" and re.search(r"\bhttps?://", ins.args):
                fail(ins.line, "ADD of a remote URL: unpinned, unverified download")

    final = stages[-1]
    _check_user(final, fail)
    _check_entrypoint(final, fail)
    labels: dict[str, str] = {}
    for ins in final.instructions:
        if ins.keyword == "LABEL":
            labels.update(_kv_pairs(ins.args))
    missing = [lab for lab in REQUIRED_LABELS if lab not in labels]
    if missing:
        fail(final.line, f"final stage lacks OCI labels: {', '.join(missing)}")
    _check_copies(dockerfile, repo_root, stages, fail)


def _check_base(stage: Stage, fail: Fail) -> None:
    image = stage.base
    if "$" in image:
        fail(stage.line, f"base image {image!r} uses an ARG without a default")
        return
    if "@sha256:" in image:
        return
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    if not tag:
        fail(stage.line, f"base image {image!r} has no tag (that is `latest`)")
    elif tag == "latest":
        fail(stage.line, f"base image {image!r} uses the `latest` tag")
    elif not FULL_VERSION_RE.search(tag):
        fail(
            stage.line,
            f"base image {image!r}: pin a full version (e.g. 3.11.11-slim-bookworm) or a digest, "
            "not a moving tag",
        )


def _check_user(final: Stage, fail: Fail) -> None:
    users = [i for i in final.instructions if i.keyword == "USER"]
    if not users:
        fail(final.line, "final stage has no USER: the container would run as root")
        return
    user = users[-1]
    uid, _, gid = user.args.strip().partition(":")
    if uid in ("root", "0") or gid in ("root", "0"):
        fail(user.line, f"USER {user.args}: the final stage must not run as root")
    elif not uid.isdigit():
        fail(
            user.line,
            f"USER {user.args}: use a numeric uid; Kubernetes' runAsNonRoot cannot verify a name",
        )
    elif int(uid) != IMAGE_UID:
        fail(
            user.line,
            f"USER {uid} differs from runAsUser {IMAGE_UID} in the manifests (deploy/check/contract.py)",
        )


def _check_entrypoint(final: Stage, fail: Fail) -> None:
    entries = [i for i in final.instructions if i.keyword == "ENTRYPOINT"]
    if not entries:
        fail(final.line, 'final stage has no ENTRYPOINT (expected ["orchestrator"])')
        return
    entry = entries[-1]
    try:
        argv = json.loads(entry.args)
    except json.JSONDecodeError:
        fail(
            entry.line,
            "ENTRYPOINT in shell form: /bin/sh becomes PID 1 and SIGTERM never reaches the role, "
            'so there is no drain; use the exec form ["orchestrator"]',
        )
        return
    if not isinstance(argv, list) or not argv or argv[0] != "orchestrator":
        fail(entry.line, f'ENTRYPOINT {argv}: expected ["orchestrator"]')


def _check_copies(dockerfile: Path, repo_root: Path, stages: list[Stage], fail: Fail) -> None:
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = []
    if ignore_file.is_file():
        patterns = [
            ln.strip()
            for ln in ignore_file.read_text().splitlines()
            if ln.strip() and not ln.strip().startswith("#")
        ]
    for stage in stages:
        for ins in stage.instructions:
            if ins.keyword not in ("COPY", "ADD"):
                continue
            parts = [p for p in shlex.split(ins.args) if not p.startswith("--")]
            if any(p.startswith("--from") for p in shlex.split(ins.args)):
                continue
            for src in parts[:-1]:
                if SECRET_FILE_RE.search(src):
                    fail(
                        ins.line, f"{ins.keyword} {src}: key or env files must not enter the image"
                    )
                if any(ch in src for ch in "*?["):
                    continue
                if not (repo_root / src).exists():
                    fail(
                        ins.line,
                        f"{ins.keyword} source {src!r} does not exist in the build context",
                    )
                elif patterns and _ignored(src.rstrip("/"), patterns):
                    fail(
                        ins.line,
                        f"{ins.keyword} source {src!r} is excluded by {ignore_file.name}: the build "
                        "would fail",
                    )
                else:
                    _check_product_only(src, ins, patterns, ignore_file.name, fail)


def _check_product_only(
    src: str, ins: Instruction, patterns: list[str], ignore_name: str, fail: Fail
) -> None:
    """A COPY of a folder that holds the sandbox must leave it out (the image is the product)."""
    root = src.strip().rstrip("/")
    for path in NOT_IN_IMAGE:
        inside = root in (".", "") or path == root or path.startswith(root + "/")
        if inside and not _ignored(path, patterns):
            fail(
                ins.line,
                f"{ins.keyword} {src!r} copies {path}/ into the image: exclude it in "
                f"{ignore_name} (the image carries the product, not the test bench)",
            )
