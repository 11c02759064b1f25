"""``orchestrator simulate --help`` documents the profile format (generated from the model)."""

from __future__ import annotations

from click.testing import CliRunner

from orchestrator.cli import cli


def test_simulate_is_registered_and_documents_the_profile() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    for option in (
        "--port",
        "--cps",
        "--rps",
        "--seed",
        "--time-scale",
        "--profile",
        "--tls",
        "--cert",
    ):
        assert option in out
    for key in (
        "outcomes:",
        "human: 70",
        "timing:",
        "ring: [2, 10]",
        "faults:",
        "overrides:",
        "events:",
    ):
        assert key in out, key
    assert "examples/sim-profile.yaml" in out
    assert "/_sim/ledger" in out


def test_bad_arguments() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--cert", __file__])
    assert result.exit_code != 0
    assert "--cert and --key go together" in result.output
