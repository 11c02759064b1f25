"""``orchestrator demo --agents`` end to end: it must finish and its figures agree with the ledger.

The demo's promise is that what ``campaign status`` shows of an agent campaign is what the
telephony side saw; a demo that silently disagreed would teach the wrong numbers. A shorter
list (120 contacts) keeps it near a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandbox.demo_agents import run_agents_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(240)
async def test_the_agents_demo_agrees_with_the_ledger(tmp_path: Path) -> None:
    code = await run_agents_demo(
        tmp_path / "results.csv", timeout_s=150, quiet_logs=True, contacts=120
    )
    assert code == 0
    assert (tmp_path / "demo-agents-ledger.json").is_file()
