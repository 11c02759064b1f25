"""Voice API simulator: a local stand-in for ``api.nexmo.com`` (sandbox for users, fixture for tests).

The package stays cheap to import (the CLI imports ``orchestrator.sandbox.simulator.cli`` at start-up), so
the heavy parts are loaded lazily on first attribute access::

    from orchestrator.sandbox.simulator import Simulator

    async with Simulator(port=0, cps=3, seed=1) as sim:
        app = sim.create_application()
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.applications import SimApplication
    from orchestrator.sandbox.simulator.profile import Profile, load_profile
    from orchestrator.sandbox.simulator.server import Simulator

__all__ = ["Profile", "SimApplication", "Simulator", "load_profile"]

_LAZY = {
    "Simulator": "orchestrator.sandbox.simulator.server",
    "Profile": "orchestrator.sandbox.simulator.profile",
    "load_profile": "orchestrator.sandbox.simulator.profile",
    "SimApplication": "orchestrator.sandbox.simulator.applications",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
