"""``orchestrator check``: run the history checker against a live (quiet) stack.

Reads the Voice API simulator's ledger and the product topics from the outside, like the soak
does after its run, and exits 1 on any anomaly. Only click and the stdlib at import time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--sim-url", required=True, help="The simulator (GET /_sim/ledger), e.g. http://127.0.0.1:8090"
)
@click.option(
    "--cps", type=float, default=None, help="Account CPS to check windows against [VONAGE_CPS]."
)
@click.option("--rps", type=float, default=None, help="Account RPS [VONAGE_RPS].")
@click.option(
    "--cap", type=int, default=None, help="Max calls in flight (a campaign's max_concurrent)."
)
@click.option("--time-scale", type=float, default=1.0, show_default=True, help="The simulator's.")
@click.option(
    "--contacts",
    "contacts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File of contact ids (one a line) that must each have exactly one final result.",
)
def check(
    sim_url: str,
    cps: float | None,
    rps: float | None,
    cap: int | None,
    time_scale: float,
    contacts_file: Path | None,
) -> None:
    """Check the recorded history (ledger + topics): lost, unapplied, duplicated, out of order."""
    import asyncio

    from orchestrator.config import load_settings
    from orchestrator.sandbox.checker.checks import check as run_checks
    from orchestrator.sandbox.checker.collect import collect

    settings = load_settings()
    contacts: list[str] = []
    if contacts_file is not None:
        contacts = [ln.strip() for ln in contacts_file.read_text().splitlines() if ln.strip()]
    collected = asyncio.run(collect(settings, sim_url, contacts=contacts, time_scale=time_scale))
    report = run_checks(
        collected.history,
        cps=cps if cps is not None else settings.vonage_cps,
        rps=rps if rps is not None else settings.vonage_rps,
        cap=cap,
    )
    click.echo(report.render())
    sys.exit(0 if report.ok else 1)
