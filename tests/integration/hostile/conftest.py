"""One ingress process for the hostile suite, on the session broker, with a contacts directory.

Its webhook limit is raised to 3 MB (``--max-body``), above what a record on ``voice.events``
may be (the producer's 1 MB): an operator's setting that lets a body in whose record can never
fit the topic, which must be a 413, not a 503 "retry".
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker, free_port
from tests.conftest import make_settings
from tests.integration.hostile.procs import Proc, start_role

MAX_WEBHOOK_BODY = 3_000_000


@dataclass
class Target:
    proc: Proc
    settings: Settings
    token: str
    signature_secret: str
    contacts_dir: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def secrets(self) -> list[str]:
        return [self.token, self.signature_secret]


def contacts_dir(root: Path) -> Path:
    d = root / "contacts"
    (d / "lists").mkdir(parents=True)
    (d / "lists" / "ok.csv").write_text("number,name\n+14155550100,Ann\n")
    (d / "passwd-link").symlink_to("/etc/passwd")  # inside, but pointing out
    os.mkfifo(d / "fifo")
    return d


@pytest.fixture(scope="package")
async def target(
    broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    settings = make_settings(broker.bootstrap)
    await ensure_topics(settings, create=True)
    root = tmp_path_factory.mktemp("hostile")
    token = secrets.token_urlsafe(24)
    signature_secret = secrets.token_urlsafe(32)
    cdir = contacts_dir(root)
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "TOPIC_PREFIX": settings.topic_prefix,
        "VONAGE_SIGNATURE_SECRET": signature_secret,
        "CONTROL_API_TOKEN": token,
        "CONTACTS_DIR": str(cdir),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "warning",
    }
    proc = start_role(
        [
            "ingress",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-body",
            str(MAX_WEBHOOK_BODY),
        ],
        env,
        port,
        root / "ingress.log",
        "/healthz",
    )
    try:
        yield Target(proc, settings, token, signature_secret, cdir)
    finally:
        proc.stop()
