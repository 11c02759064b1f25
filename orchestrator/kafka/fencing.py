"""Whether a transactional producer's failure means another process took its transactional id.

Both the runtime (one producer per input partition) and the dispatcher (one per command
partition) give a partition up when fenced, and stop the process on any other failure. aiokafka
does not always say "fenced": when its sender routine meets the fence first, the transaction
manager turns fatal and the next call fails with a state error instead ("Can't send messages
while not in transaction", "Invalid state transition FATAL_ERROR -> IN_TRANSACTION"). A
dispatcher fenced mid-transaction exited on that. The fence is still recorded, as the fatal
error's cause, in a private field; it is read here, in one place.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

__all__ = ["FENCED", "was_fenced"]

#: Errors that mean another process now owns the transactional id.
FENCED = (ProducerFenced, InvalidProducerEpoch)


def was_fenced(err: BaseException, producer: Any = None) -> bool:
    """``err`` is a fence, or ``producer``'s transactions failed for good because of one."""
    if isinstance(err, FENCED):
        return True
    manager = getattr(producer, "_txn_manager", None)
    if manager is None or not manager.is_fatal_error():
        return False
    cause: asyncio.Future[Any] | None = getattr(manager, "_transaction_waiter", None)
    if cause is None or not cause.done() or cause.cancelled():
        return False
    return isinstance(cause.exception(), FENCED)
