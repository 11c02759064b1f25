"""structlog, configured once per process: JSON when not a terminal, pretty in one.

Call identifiers are bound with :func:`bind_call` (contextvars), so every line a handler logs while
working on a call carries them. Secrets never reach the output: :func:`_redact` masks any value whose
key looks secret, as a last line of defence behind ``SecretStr`` in the settings.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from orchestrator.config import Settings

_SECRET_WORDS = ("secret", "private_key", "password", "token", "authorization", "api_secret")


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        lk = key.lower()
        if any(word in lk for word in _SECRET_WORDS):
            event[key] = "**redacted**"
    return event


def configure_logging(settings: Settings | None = None, *, stream: Any = None) -> None:
    fmt = settings.log_format if settings else "auto"
    level_name = settings.log_level if settings else "info"
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    level = getattr(logging, level_name.upper())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if use_json:
        processors += [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, uvicorn) log through stdlib logging: keep them quiet and on stderr.
    logging.basicConfig(
        level=max(level, logging.WARNING),
        stream=stream,
        format="%(name)s %(levelname)s %(message)s",
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def bind_call(**ids: str | None) -> None:
    """Bind call identifiers (flow_key, call_ref, uuid, conversation_uuid) for the current task."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v})


def clear_call() -> None:
    structlog.contextvars.clear_contextvars()
