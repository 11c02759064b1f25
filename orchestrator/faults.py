"""Deliberately broken variants of the product, switched on only by the soak's own tests.

The soak proves that its checker catches real bugs by running the product with one of these
switched on and expecting the matching anomaly. ``ORCHESTRATOR_FAULT`` (comma-separated names) is
read here and nowhere else; unset (always, outside those tests) every switch is off, and the
code paths they guard are one boolean test each.
"""

from __future__ import annotations

import os

__all__ = [
    "DISPATCHER_RESEND_ON_TIMEOUT",
    "FAULTS",
    "WORKER_COMMIT_BEFORE_PRODUCE",
    "WORKER_RESTORE_IN_CALLBACK",
    "WORKER_SLOW_RESTORE",
    "active",
]

FAULT_ENV = "ORCHESTRATOR_FAULT"

#: The dispatcher sends a create-call again when the first attempt's outcome is unknown
#: (timeout or dropped connection) instead of resolving it: a second call for one call_ref.
DISPATCHER_RESEND_ON_TIMEOUT = "dispatcher-resend-on-timeout"
#: The worker commits its input offsets before its outputs and state are confirmed, and lingers
#: there: a crash in between loses both (events never applied, outcomes never produced).
WORKER_COMMIT_BEFORE_PRODUCE = "worker-commit-before-produce"

#: A condition, not a bug: every state restore takes SLOW_RESTORE_S longer (a changelog far bigger
#: than the session timeout allows to read), to show restores never get a member expelled.
WORKER_SLOW_RESTORE = "worker-slow-restore"
SLOW_RESTORE_S = 12.0
#: The worker waits for its restore inside the assignment callback, as it once did: aiokafka does
#: not heartbeat meanwhile, so a restore longer than the session timeout expels the member, which
#: rejoins and restores again, in a loop.
WORKER_RESTORE_IN_CALLBACK = "worker-restore-in-callback"

FAULTS = frozenset(
    {
        DISPATCHER_RESEND_ON_TIMEOUT,
        WORKER_COMMIT_BEFORE_PRODUCE,
        WORKER_SLOW_RESTORE,
        WORKER_RESTORE_IN_CALLBACK,
    }
)

_ACTIVE = frozenset(
    name.strip() for name in os.environ.get(FAULT_ENV, "").split(",") if name.strip()
)
if _ACTIVE - FAULTS:
    raise RuntimeError(f"{FAULT_ENV}: unknown fault(s) {sorted(_ACTIVE - FAULTS)}")


def active(name: str) -> bool:
    """Whether the deliberately broken variant ``name`` is switched on in this process."""
    return name in _ACTIVE
