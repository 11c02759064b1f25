"""``make demo`` starts from files in the repository: they must be where the demo looks."""

from __future__ import annotations

from contracts.campaign import load_campaign_file
from orchestrator.sandbox.demo import CAMPAIGN_FILE, ROOT


def test_the_demo_campaign_file_is_found_and_valid() -> None:
    assert (ROOT / "pyproject.toml").is_file(), ROOT  # the checkout, not a package folder
    spec = load_campaign_file(CAMPAIGN_FILE)
    assert spec.name == "demo"
