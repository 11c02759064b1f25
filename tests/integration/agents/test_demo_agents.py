"""``orchestrator demo --agents`` end to end: it must finish and its figures agree with the ledger.

The demo's promise is that what ``campaign status`` shows of an agent campaign is what the
telephony side saw; a demo that silently disagreed would teach the wrong numbers. A shorter
list (120 contacts) keeps it near a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandbox.demo_agents import run_agents_demo

# Open defect (README, "Agent campaigns"): the live "connected" counter of campaign status can
# trail the ledger by a few calls (40 vs 41 in a full suite run), so the demo says NO now and
# then. Out of make test until it is fixed; make test-all runs it. The bridging promises
# themselves (one agent per human, no double booking, no machine bridged, kill -9) are checked
# by test_agent_campaign.py in make test.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.open_defect]


@pytest.mark.timeout(240)
async def test_the_agents_demo_agrees_with_the_ledger(tmp_path: Path) -> None:
    code = await run_agents_demo(
        tmp_path / "results.csv", timeout_s=150, quiet_logs=True, contacts=120
    )
    assert code == 0
    assert (tmp_path / "demo-agents-ledger.json").is_file()
