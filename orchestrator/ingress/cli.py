"""``orchestrator ingress``: the webhook ingress and control API on uvicorn.

Only click and the standard library at import time (the top-level CLI stays fast); the app and its
dependencies load inside the command.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--allow-unsigned",
    is_flag=True,
    default=False,
    help="Accept webhooks without a signature (local use only; logged loudly).",
)
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    envvar="ORCHESTRATOR_FLOWS",
    help="Directory of declarative flow YAML files (env ORCHESTRATOR_FLOWS).",
)
@click.option(
    "--publish-timeout",
    default=2.5,
    show_default=True,
    type=float,
    help="Seconds to wait for the broker's ack before answering 503.",
)
@click.option(
    "--max-body", default=64 * 1024, show_default=True, type=int, help="Bytes (413 above)."
)
@click.option(
    "--no-publish",
    is_flag=True,
    default=False,
    hidden=True,
    help="Benchmark baseline only: answer without storing anything.",
)
def ingress(
    host: str,
    port: int,
    allow_unsigned: bool,
    flows_dir: Path | None,
    publish_timeout: float,
    max_body: int,
    no_publish: bool,
) -> None:
    """Receive Vonage webhooks: verify, store on voice.events, answer NCCOs from flows."""
    import asyncio

    import uvicorn

    from contracts.flow import FlowError
    from orchestrator.config import ConfigError, load_settings
    from orchestrator.ingress.asgi import IngressOptions, create_app
    from orchestrator.ingress.flows import load_flows
    from orchestrator.ingress.publish import NullPublisher
    from orchestrator.kafka.preflight import check_connection
    from orchestrator.logs import configure_logging
    from orchestrator.runtime.shutdown import ShutdownWatch
    from orchestrator.web.head import uvicorn_http_options

    class _WatchedServer(uvicorn.Server):
        """uvicorn's server, with the shutdown watch armed by the stop signal."""

        watch = ShutdownWatch("ingress")

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.watch.arm()
            super().handle_exit(sig, frame)

    settings = load_settings()
    configure_logging(settings)
    # The ingress starts without a reachable broker (it answers 503 until one is), but a broker
    # that refuses its credentials or certificate is a mistake to report now, in one line.
    if not no_publish:
        asyncio.run(check_connection(settings))
    try:
        flows = load_flows(flows_dir)
    except FlowError as err:
        raise ConfigError(f"--flows: {err}") from None
    options = IngressOptions(
        allow_unsigned=allow_unsigned or settings.allow_unsigned_webhooks,
        max_body_bytes=max_body,
        publish_deadline=publish_timeout,
    )
    app = create_app(
        settings,
        flows=flows,
        options=options,
        publisher=NullPublisher() if no_publish else None,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
        **uvicorn_http_options(),
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT (finish requests, then the lifespan flushes
    # the producer), then re-raises the signal to itself. The product exits 0 after a clean drain
    # (design item 7), so the re-raised signal lands on a handler that does nothing.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    _WatchedServer(config).run()
