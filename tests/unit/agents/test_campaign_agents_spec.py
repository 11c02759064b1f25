"""The campaign file's mode and agents block: old files unchanged, errors with line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.agents import AgentNeed
from contracts.campaign import CampaignFileError, load_campaign_file, parse_campaign_yaml

BASE = """\
name: agents-demo
contacts: {csv: c.csv}
from: {numbers: ["447700900000"]}
flow: {ncco: [{action: talk, text: hi}]}
"""

REPO = Path(__file__).resolve().parents[3]


def test_files_without_a_mode_stay_agentless() -> None:
    spec = parse_campaign_yaml(BASE)
    assert spec.mode == "agentless" and spec.agents is None
    demo = load_campaign_file(REPO / "examples" / "demo-campaign.yaml")
    assert demo.mode == "agentless" and demo.agents is None


def test_predictive_with_its_defaults() -> None:
    spec = parse_campaign_yaml(
        BASE
        + "mode: predictive\nagents:\n  group: sales\n  skills: [fr]\n"
        + "  abandon_message: ACME calling, call us back on 0800 000 000\n"
    )
    rules = spec.agent_rules
    assert (rules.ratio, rules.connect_within, rules.abandon_cap) == (1.0, 2.0, 0.03)
    assert rules.abandon_window == 3600.0
    assert rules.need == AgentNeed(group="sales", skills=["fr"])


def test_progressive_may_leave_the_agents_block_out() -> None:
    spec = parse_campaign_yaml(BASE + "mode: progressive\n")
    assert spec.agents is None and spec.agent_rules.ratio == 1.0


def test_durations_in_the_agents_block() -> None:
    spec = parse_campaign_yaml(
        BASE + "mode: progressive\nagents: {connect_within: 1500ms, abandon_window: 2h}\n"
    )
    assert spec.agent_rules.connect_within == 1.5 and spec.agent_rules.abandon_window == 7200.0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "mode: preditive\n",
            "c.yaml:5: mode: must be one of 'agentless', 'progressive' or 'predictive'",
        ),
        (
            "mode: predictive\n",
            "c.yaml:1: agents: abandon_message: is required with mode predictive",
        ),
        (
            "mode: predictive\nagents:\n  ratio: 2\n",
            "c.yaml:6: agents: abandon_message: is required with mode predictive",
        ),
        (
            "mode: predictive\nagents:\n  abandon_message: '   '\n",
            "c.yaml:7: agents.abandon_message: must not be blank",
        ),
        (
            "mode: predictive\nagents:\n  abandon_cap: 0.2\n  abandon_message: hi\n",
            "c.yaml:7: agents.abandon_cap: must be <= 0.1",
        ),
        (
            "mode: predictive\nagents:\n  abandon_cap: -0.01\n  abandon_message: hi\n",
            "c.yaml:7: agents.abandon_cap: must be >= 0",
        ),
        ("agents: {ratio: 2}\n", "c.yaml:5: agents: only with mode progressive or predictive"),
        ("mode: progressive\nagents: {ratio: 0}\n", "c.yaml:6: agents.ratio: must be > 0"),
        (
            "mode: progressive\nagents: {connect_within: 100ms}\n",
            "c.yaml:6: agents.connect_within: must be between 0.5s and 60s",
        ),
        (
            "mode: progressive\nagents: {abandon_window: 10s}\n",
            "c.yaml:6: agents.abandon_window: must be between 1m and 24h",
        ),
        (
            "mode: progressive\nagents: {skils: [fr]}\n",
            "c.yaml:6: agents.skils: unknown field; did you mean skills?",
        ),
        (
            "mode: progressive\nagents: {group: 'a b'}\n",
            "c.yaml:6: agents.group: group 'a b': letters, digits",
        ),
    ],
)
def test_bad_agent_fields_name_line_and_field(extra: str, expected: str) -> None:
    with pytest.raises(CampaignFileError) as err:
        parse_campaign_yaml(BASE + extra, "c.yaml")
    assert expected in str(err.value)
