"""``python -m orchestrator.sandbox.soak``: the same as ``orchestrator soak``."""

from orchestrator.sandbox.soak.cli import soak

soak(prog_name="python -m orchestrator.sandbox.soak")
