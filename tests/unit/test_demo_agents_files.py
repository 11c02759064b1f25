"""``orchestrator demo --agents`` starts from files in the repository: they must be valid."""

from __future__ import annotations

from contracts.campaign import load_campaign_file
from orchestrator.sandbox.demo_agents import AGENTS_CAMPAIGN_FILE, CONTACTS_FILE, load_roster


def test_the_agent_demo_files_are_found_and_valid() -> None:
    spec = load_campaign_file(AGENTS_CAMPAIGN_FILE)
    assert spec.mode == "predictive" and spec.agents is not None
    assert spec.machine_detection.mode != "off"
    assert CONTACTS_FILE.is_file()
    roster = load_roster()
    assert len(roster) == 12 and len({a.id for a in roster}) == 12
    assert {a.endpoint.type for a in roster} == {"phone", "sip"}
