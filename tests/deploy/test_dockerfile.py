"""The Dockerfile lint passes on deploy/Dockerfile and names each broken rule (no kubectl needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.check import DEPLOY_DIR, Report
from deploy.check.dockerfile import lint_dockerfile, parse

from .helpers import assert_fails

REAL = DEPLOY_DIR / "Dockerfile"


def lint(deploy_dir: Path) -> Report:
    report = Report()
    lint_dockerfile(deploy_dir / "Dockerfile", deploy_dir.parent, report)
    return report


def rewrite(deploy_dir: Path, old: str, new: str) -> None:
    path = deploy_dir / "Dockerfile"
    text = path.read_text()
    assert old in text, f"{old!r} not in the Dockerfile any more; update the test"
    path.write_text(text.replace(old, new))


def test_real_dockerfile_passes() -> None:
    report = lint(DEPLOY_DIR)
    assert report.ok, report.render_text()


def test_parser_joins_continuations() -> None:
    ins = parse("FROM a:1.2.3 AS b\nRUN one \\\n    two\n# c\nUSER 1\n")
    assert [(i.keyword, i.args) for i in ins] == [
        ("FROM", "a:1.2.3 AS b"),
        ("RUN", "one two"),
        ("USER", "1"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        ("USER 10001:10001", "USER root", ("must not run as root",)),
        ("USER 10001:10001", "USER 0:0", ("must not run as root",)),
        ("USER 10001:10001\n", "", ("no USER: the container would run as root",)),
        ("USER 10001:10001", "USER orchestrator", ("use a numeric uid",)),
        ("USER 10001:10001", "USER 20000", ("differs from runAsUser 10001",)),
        (
            "ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm",
            "ARG PYTHON_IMAGE=python:latest",
            ("uses the `latest` tag",),
        ),
        (
            "ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm",
            "ARG PYTHON_IMAGE=python",
            ("has no tag (that is `latest`)",),
        ),
        (
            "ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm",
            "ARG PYTHON_IMAGE=python:3.11-slim",
            ("pin a full version",),
        ),
        (
            "    PYTHONFAULTHANDLER=1",
            "    PYTHONFAULTHANDLER=1 \\\n    VONAGE_API_SECRET=abc123",
            ("ENV VONAGE_API_SECRET: secrets must not be baked",),
        ),
        (
            "ARG REVISION=unknown",
            "ARG REVISION=unknown\nARG CONTROL_API_TOKEN",
            ("ARG CONTROL_API_TOKEN",),
        ),
        ('ENTRYPOINT ["orchestrator"]', "ENTRYPOINT orchestrator", ("shell form",)),
        (
            'ENTRYPOINT ["orchestrator"]',
            'ENTRYPOINT ["python", "-m", "x"]',
            ('expected ["orchestrator"]',),
        ),
        (
            "COPY handlers ./handlers",
            "COPY handlers ./handlers\nCOPY private.pem /",
            ("key or env files",),
        ),
        (
            "COPY handlers ./handlers",
            "COPY nothere ./nothere",
            ("does not exist in the build context",),
        ),
        (
            'org.opencontainers.image.licenses="Apache-2.0" \\\n',
            "",
            ("lacks OCI labels: org.opencontainers.image.licenses",),
        ),
    ],
)
def test_broken_dockerfile(
    deploy_copy: Path, old: str, new: str, fragments: tuple[str, ...]
) -> None:
    rewrite(deploy_copy, old, new)
    assert_fails(lint(deploy_copy), "dockerfile", *fragments)


def test_copy_source_excluded_by_dockerignore(deploy_copy: Path) -> None:
    ignore = deploy_copy / "Dockerfile.dockerignore"
    ignore.write_text(ignore.read_text().replace("!handlers/\n", ""))
    assert_fails(
        lint(deploy_copy), "dockerfile", "'handlers' is excluded by Dockerfile.dockerignore"
    )


def test_single_stage_is_flagged(tmp_path: Path) -> None:
    deploy_dir = tmp_path / "deploy"
    deploy_dir.mkdir()
    (deploy_dir / "Dockerfile").write_text(
        "FROM python:3.11.11-slim-bookworm\nLABEL org.opencontainers.image.title=x\n"
        'USER 10001\nENTRYPOINT ["orchestrator"]\n'
    )
    assert_fails(lint(deploy_dir), "dockerfile", "single stage")


@pytest.mark.parametrize("path", ["orchestrator/sandbox/", "orchestrator/localbroker/"])
def test_image_without_the_test_bench(deploy_copy: Path, path: str) -> None:
    ignore = deploy_copy / "Dockerfile.dockerignore"
    text = ignore.read_text()
    assert f"\n{path}\n" in text
    ignore.write_text(text.replace(f"\n{path}\n", "\n"))
    assert_fails(lint(deploy_copy), "dockerfile", f"copies {path} into the image: exclude it")
