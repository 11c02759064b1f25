"""``orchestrator run``: every role in one process, for one machine.

Ingress (webhooks + control API on one port), worker, dispatcher, campaign controller and the
agents app (the agent pool of agent campaigns) share
one asyncio loop but keep their own Kafka clients and consumer groups, exactly as separate
processes would; moving a role out to its own pod changes nothing else. Only click and the stdlib
are imported at module level (the CLI loads every role).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["LocalStack", "run"]


class LocalStack:
    """Ingress, worker, dispatcher, controller and agents in this process (an async context manager).

    Args:
        settings: the product settings (broker, Vonage credentials, public base URL ...).
        ingress_host/port: where the webhook/control HTTP server listens.
        flows_dir: declarative flows for the ingress (None: built-ins only).
        role_health: serve each role's /healthz, /readyz, /metrics on 9100/9101/9102/9103.
        clock: the controller's clock (epoch seconds); tests pass a simulated one.
        worker_settle_s: quiet time before the worker reports a call's outcome.
        with_agents: host the agents app too (tests run it as a process of its own to kill it).
        with_worker, with_controller: host the worker and the campaign controller (likewise).
    """

    def __init__(
        self,
        settings: Any,
        *,
        ingress_host: str = "127.0.0.1",
        ingress_port: int = 8080,
        flows_dir: Path | None = None,
        allow_unsigned: bool = False,
        role_health: bool = False,
        health_host: str = "127.0.0.1",
        clock: Any = None,
        worker_settle_s: float = 0.5,
        with_agents: bool = True,
        with_worker: bool = True,
        with_controller: bool = True,
    ) -> None:
        self.settings = settings
        self.ingress_host = ingress_host
        self.ingress_port = ingress_port
        self.flows_dir = flows_dir
        self.allow_unsigned = allow_unsigned
        self.role_health = role_health
        self.health_host = health_host
        self.clock = clock
        self.worker_settle_s = worker_settle_s
        self.with_agents = with_agents
        self.with_worker = with_worker
        self.with_controller = with_controller
        self._tasks: list[Any] = []
        self._server: Any = None
        self.worker_runtime: Any = None
        self.worker_health: Any = None
        self.dispatcher: Any = None
        self.controller: Any = None
        self.agents: Any = None
        self.ingress_app: Any = None

    async def __aenter__(self) -> LocalStack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        import asyncio

        from prometheus_client import CollectorRegistry

        from orchestrator.agents.main import AgentsService
        from orchestrator.campaign.main import ControllerService
        from orchestrator.dispatcher.service import (
            DISPATCHER_NEEDS,
            DispatcherOptions,
            DispatcherService,
        )
        from orchestrator.ingress.asgi import IngressOptions, create_app
        from orchestrator.ingress.flows import load_flows
        from orchestrator.kafka.admin import ensure_topics
        from orchestrator.kafka.preflight import check_connection
        from orchestrator.runtime.engine import Runtime
        from orchestrator.runtime.health import HealthServer
        from orchestrator.web.embedded import EmbeddedServer
        from orchestrator.web.head import uvicorn_http_options
        from orchestrator.worker.main import WorkerOptions, runtime_config
        from orchestrator.worker.voice_app import VoiceApp

        s = self.settings
        # Every role's needs before any of them starts: nothing listens or says ready without.
        s.require(*DISPATCHER_NEEDS, role="the dispatcher (orchestrator run)")
        await check_connection(s)  # a security mistake: one line naming the setting
        await ensure_topics(s, create=s.create_topics)

        # Ingress first: the other roles cause webhooks that must find it listening.
        self.ingress_app = create_app(
            s,
            flows=load_flows(self.flows_dir),
            options=IngressOptions(allow_unsigned=self.allow_unsigned or s.allow_unsigned_webhooks),
        )
        # In this process's loop, without signal handlers: the host process owns SIGINT/SIGTERM
        # (stop every role in order, not just the ingress).
        self._server = EmbeddedServer(
            self.ingress_app,
            host=self.ingress_host,
            port=self.ingress_port,
            lifespan="on",
            server_header=False,
            **uvicorn_http_options(),
        )
        try:
            await self._server.start()
        except OSError as err:
            self._server = None
            raise RuntimeError(
                f"ingress did not start on {self.ingress_host}:{self.ingress_port}: {err}"
            ) from None

        if self.with_worker:
            wopts = WorkerOptions(
                health_port=9100, health_host=self.health_host, settle_s=self.worker_settle_s
            )
            registry = CollectorRegistry()
            app = VoiceApp(s.topic_prefix, settle_s=wopts.settle_s)
            self.worker_runtime = Runtime(s, app, runtime_config(s, wopts), registry)
            if self.role_health:
                self.worker_health = HealthServer(
                    registry,
                    alive=self.worker_runtime.alive,
                    ready=self.worker_runtime.ready,
                    detail=self.worker_runtime.detail,
                    host=self.health_host,
                    port=9100,
                )
                await self.worker_health.start()
            await self.worker_runtime.start()
            self._tasks.append(asyncio.create_task(self.worker_runtime.run(), name="worker"))

        self.dispatcher = DispatcherService(
            s,
            DispatcherOptions(
                health_host=self.health_host, health_port=9101 if self.role_health else None
            ),
        )
        self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))

        if self.with_controller:
            self.controller = ControllerService(
                s,
                health_host=self.health_host,
                health_port=9102 if self.role_health else None,
                clock=self.clock,
            )
            self._tasks.append(asyncio.create_task(self.controller.run(), name="controller"))

        if self.with_agents:
            self.agents = AgentsService(
                s, health_host=self.health_host, health_port=9103 if self.role_health else None
            )
            self._tasks.append(asyncio.create_task(self.agents.run(), name="agents"))

    def failed(self) -> str | None:
        """The name of a role whose task ended with an error, if any."""
        for t in self._tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                return f"{t.get_name()}: {t.exception()}"
        return None

    async def stop(self) -> None:
        """Stop taking new work, drain, checkpoint and leave the groups (SIGTERM semantics)."""
        import asyncio
        import contextlib

        from orchestrator.runtime.shutdown import bounded

        if self.controller is not None:
            self.controller.stop()
        if self.agents is not None:
            self.agents.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.worker_runtime is not None:
            self.worker_runtime.request_stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=20)
        if self.worker_runtime is not None:
            with contextlib.suppress(Exception):
                await bounded(self.worker_runtime.close(), 15, what="worker close")
        if self.worker_health is not None:
            await self.worker_health.stop()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await bounded(self._server.stop(), 10, what="ingress server stop")
            self._server = None
        for t in self._tasks:
            if not t.done():
                t.cancel()
        self._tasks.clear()


@click.command("run")
@click.option("--host", default="0.0.0.0", show_default=True, help="Ingress listen address.")
@click.option("--port", default=8080, show_default=True, help="Ingress port (webhooks, API).")
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of declarative flow YAML files.",
)
@click.option("--allow-unsigned", is_flag=True, help="Accept unsigned webhooks (local only).")
@click.option("--health-host", default="0.0.0.0", show_default=True)
def run(
    host: str, port: int, flows_dir: Path | None, allow_unsigned: bool, health_host: str
) -> None:
    """All roles in one process: ingress, worker, dispatcher, campaign controller, agents."""
    import asyncio

    from orchestrator.config import load_settings
    from orchestrator.logs import configure_logging
    from orchestrator.runtime.shutdown import bounded, stop_on_signals

    settings = load_settings()
    configure_logging(settings)

    async def main() -> None:
        stack = LocalStack(
            settings,
            ingress_host=host,
            ingress_port=port,
            flows_dir=flows_dir,
            allow_unsigned=allow_unsigned,
            role_health=True,
            health_host=health_host,
        )
        stop = asyncio.Event()
        stop_on_signals(asyncio.get_running_loop(), stop.set, role="run")
        await stack.start()
        click.echo(f"orchestrator running: ingress on {host}:{port}; Ctrl-C to stop")
        try:
            while not stop.is_set():
                if (err := stack.failed()) is not None:
                    click.echo(f"role failed: {err}", err=True)
                    raise SystemExit(1)
                await asyncio.sleep(0.5)
        finally:
            await bounded(stack.stop(), 25, what="every role's stop")

    asyncio.run(main())
