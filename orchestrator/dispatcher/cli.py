"""``orchestrator dispatcher``: only click and the stdlib at import time (the CLI loads every role)."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--cps", type=float, default=None, help="New calls per rolling second [VONAGE_CPS, 3]."
)
@click.option(
    "--rps", type=float, default=None, help="Other requests per rolling second [VONAGE_RPS, 15]."
)
@click.option("--health-port", default=9101, show_default=True, help="/healthz /readyz /metrics.")
@click.option("--health-host", default="0.0.0.0", show_default=True)
@click.option(
    "--region-routing",
    type=click.Choice(["direct", "fallback"]),
    default="direct",
    show_default=True,
    help="direct: send call requests to the call's region_url; fallback: to VONAGE_API_HOST "
    "first, then region_url on a 404.",
)
@click.option(
    "--resolve-after",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds after an ambiguous create before checking GET /v1/calls for it.",
)
def dispatcher(
    cps: float | None,
    rps: float | None,
    health_port: int,
    health_host: str,
    region_routing: str,
    resolve_after: float,
) -> None:
    """Send Voice/Application API requests from voice.commands within the account's limits.

    Creates at most --cps calls and --rps other requests in any rolling second, backs off on
    429 and never dials a call_ref twice (dial ledger). Results go to voice.events.
    """
    import asyncio

    from orchestrator.config import load_settings
    from orchestrator.dispatcher.executor import ResolvePolicy
    from orchestrator.dispatcher.service import DispatcherOptions, DispatcherService
    from orchestrator.kafka.admin import ensure_topics
    from orchestrator.kafka.preflight import check_connection
    from orchestrator.logs import configure_logging
    from orchestrator.runtime.shutdown import stop_on_signals

    if (cps is not None and cps <= 0) or (rps is not None and rps <= 0):
        raise click.BadParameter("--cps and --rps must be > 0")
    settings = load_settings()
    configure_logging(settings)
    options = DispatcherOptions(
        cps=cps,
        rps=rps,
        health_host=health_host,
        health_port=health_port,
        region_routing=region_routing,  # type: ignore[arg-type]
        resolve=ResolvePolicy(after=resolve_after),
    )

    async def main() -> None:
        service = DispatcherService(settings, options)  # credentials first: a one-line error
        await check_connection(settings)  # a Kafka security mistake: one line too
        await ensure_topics(settings, create=settings.create_topics)
        stop_on_signals(asyncio.get_running_loop(), service.stop, role="dispatcher")
        await service.run()

    asyncio.run(main())
