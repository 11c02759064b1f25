"""``orchestrator agents``: run the agents role, or look at and change agents (imports stay lazy).

``orchestrator agents`` alone runs the role (the agent pool of agent campaigns, health on 9103);
``orchestrator agents list`` prints the pool as ``agents.state`` holds it; ``orchestrator agents
set ID ACTION`` logs an agent in (``--profile`` JSON or a file holding it), out, or marks them
available or offline, exactly as ``PUT /v1/agents/{id}/state`` does.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("agents", invoke_without_command=True)
@click.option("--health-port", default=9103, show_default=True, envvar="AGENTS_HEALTH_PORT")
@click.option("--health-host", default="0.0.0.0", show_default=True, envvar="AGENTS_HEALTH_HOST")
@click.pass_context
def agents(ctx: click.Context, health_port: int, health_host: str) -> None:
    """The agents role (no subcommand), or list / set agents."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from orchestrator.agents.main import AgentsService
    from orchestrator.config import load_settings
    from orchestrator.kafka.admin import ensure_topics
    from orchestrator.logs import configure_logging
    from orchestrator.runtime.process import tune_gc
    from orchestrator.runtime.shutdown import stop_on_signals

    settings = load_settings()
    configure_logging(settings)

    async def main() -> None:
        await ensure_topics(settings, create=settings.create_topics)
        service = AgentsService(settings, health_host=health_host, health_port=health_port)
        stop_on_signals(asyncio.get_running_loop(), service.stop, role="agents")
        tune_gc()
        await service.run()

    asyncio.run(main())


@agents.command("list")
@click.option("--json", "as_json", is_flag=True, help="The pool snapshot as JSON.")
def list_agents(as_json: bool) -> None:
    """Every agent and their state, as agents.state last recorded them."""
    import asyncio

    import orjson

    from orchestrator.agents.operations import read_pool
    from orchestrator.config import load_settings

    pool = asyncio.run(read_pool(load_settings()))
    if as_json:
        click.echo(orjson.dumps(pool.model_dump(mode="json") if pool else None).decode())
        return
    if pool is None or not pool.agents:
        click.echo("no agents")
        return
    click.echo(f"{'agent':<24} {'state':<10} {'call':<34} calls")
    for r in pool.agents:
        click.echo(
            f"{r.agent.id[:24]:<24} {r.state.value:<10} {(r.call_ref or '-')[:34]:<34} {r.calls}"
        )
    for refusal in pool.refused:
        click.echo(f"refused: {refusal.get('agent_id')}: {refusal.get('reason')}", err=True)


@agents.command("set")
@click.argument("agent_id")
@click.argument("action", type=click.Choice(["login", "logout", "available", "offline"]))
@click.option("--profile", help="login: the agent's profile, as JSON or @FILE.")
def set_state(agent_id: str, action: str, profile: str | None) -> None:
    """Log AGENT_ID in (with --profile) or out, or mark them available or offline."""
    import asyncio

    import orjson
    from pydantic import ValidationError

    from contracts.agents import Agent, AgentAction
    from orchestrator.agents.operations import agent_command, send_agent_command
    from orchestrator.config import load_settings

    try:
        agent = None
        if profile is not None:
            text = Path(profile[1:]).read_bytes() if profile.startswith("@") else profile.encode()
            agent = Agent.model_validate({"id": agent_id, **orjson.loads(text)})
        cmd = agent_command(agent_id, AgentAction(action), profile=agent, requested_by="cli")
    except (ValidationError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from None
    asyncio.run(send_agent_command(load_settings(), cmd))
    click.echo(f"{action} {agent_id}: sent ({cmd.id})")
