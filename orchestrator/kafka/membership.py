"""What a consumer knows of its place in its group, where aiokafka has no public call for it.

Both the runtime and the dispatcher need two things the client keeps private: whether the group
expelled this member (so nothing may be written for partitions another member may own now), and
a way to ask for a new assignment (after a fence, when the assignment may no longer be true).
Kept here, in one place, so an aiokafka upgrade that renames them breaks one module.
"""

from __future__ import annotations

from typing import Any

__all__ = ["generation_lost", "request_rejoin"]


def generation_lost(consumer: Any) -> bool:
    """The group expelled this member (a heartbeat found it unknown: paused past the session
    timeout, say). aiokafka resets its generation to -1 then, before the revoke callback."""
    coordinator = getattr(consumer, "_coordinator", None)
    return coordinator is not None and getattr(coordinator, "generation", 0) == -1


def request_rejoin(consumer: Any) -> bool:
    """Ask the group for a new assignment at the next poll; False when the client cannot."""
    coordinator = getattr(consumer, "_coordinator", None)
    request = getattr(coordinator, "request_rejoin", None)
    if request is None:
        return False
    request()
    return True
