"""The dispatcher's writes for one command partition, fenced against a zombie owner.

Everything the dispatcher writes for command partition p (dial-ledger entries, results, dead
letters, the committed offset of p) goes through one transactional producer whose
``transactional.id`` is the group + commands topic + p. When the group gives p to another
replica, that replica initialises the same id first, which fences this producer: a dispatcher
paused past its session timeout (GC, SIGSTOP, a partition of the network) that wakes up can no
longer commit a ledger entry, a result or an offset, and a "sending" entry it did not manage to
commit is invisible to the new owner's ``read_committed`` restore.

Writes join the partition's open transaction; :meth:`PartitionTxn.commit` ends it (group
commit: callers that wait for the same transaction share one ``EndTxn``). A create-call's
"sending" entry is committed before the request may leave (:meth:`send_durably`); results and
final ledger states ride in the next commit, together with the offsets they make committable.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from orchestrator.config import Settings
from orchestrator.kafka.clients import make_producer
from orchestrator.kafka.fencing import was_fenced
from orchestrator.kafka.headers import Headers
from orchestrator.logs import get_logger
from orchestrator.runtime.shutdown import bounded

__all__ = ["Fenced", "PartitionTxn", "TxnFailed"]

log = get_logger("orchestrator.dispatcher")


class Fenced(Exception):
    """Another replica owns the partition now: nothing more may be written or sent for it."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"command partition {partition} was taken over by another replica")
        self.partition = partition


class TxnFailed(Exception):
    """A transaction could not be committed for another reason: stop and replay."""


class PartitionTxn:
    def __init__(
        self, settings: Settings, group_id: str, commands_topic: str, partition: int
    ) -> None:
        self.partition = partition
        self.group_id = group_id
        self.tp = TopicPartition(commands_topic, partition)
        self.transactional_id = f"{group_id}.{commands_topic}.{partition}"
        self._producer: AIOKafkaProducer = make_producer(
            settings,
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            client_id=f"{group_id}-p{partition}",
            linger_ms=0,
        )
        self._lock = asyncio.Lock()
        self._open = False
        self._number = 0  # the open (or last) transaction
        self._committed = 0  # the last committed transaction
        self.fenced = False
        #: A commit failed for another reason: the producer cannot be trusted with more.
        self.broken: TxnFailed | None = None

    async def start(self) -> None:
        """Initialise the transactional id: from here on the previous owner is fenced."""
        await self._producer.start()

    async def stop(self) -> None:
        try:
            await bounded(self._producer.stop(), 8, what="transactional producer stop")
        except Exception as err:  # a fenced producer may refuse a clean stop
            log.info("transactional producer stop", partition=self.partition, error=str(err))

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None = None,
        *,
        headers: Headers,
    ) -> int:
        """Add a record to the open transaction (beginning one); return its number."""
        async with self._lock:
            self._usable()
            try:
                if not self._open:
                    await self._producer.begin_transaction()
                    self._open = True
                    self._number += 1
                fut = await self._producer.send(
                    topic, value, key=key, partition=partition, headers=headers
                )
            except Exception as err:  # aiokafka's transaction state is fatal: not usable again
                if was_fenced(err, self._producer):
                    self.fenced = True
                    raise Fenced(self.partition) from None
                self.broken = TxnFailed(f"{type(err).__name__}: {err}")
                raise self.broken from err
            # A failed send fails the commit that would include it; that is where it surfaces.
            fut.add_done_callback(_retrieve)
            return self._number

    def _usable(self) -> None:
        if self.fenced:
            raise Fenced(self.partition)
        if self.broken is not None:
            raise self.broken

    async def commit(self, offset: int | None = None, *, upto: int | None = None) -> bool:
        """End the open transaction, with ``offset`` as the partition's committed offset.

        ``upto``: return at once if that transaction is already committed (another caller's
        commit took it). Returns whether a transaction was committed.
        """
        async with self._lock:
            if upto is not None and self._committed >= upto:
                return False
            self._usable()  # a failed commit took the caller's record with it: never "done"
            if upto is not None and (upto != self._number or not self._open):
                raise TxnFailed(f"transaction {upto} of partition {self.partition} was lost")
            if not self._open and offset is None:
                return False
            try:
                if not self._open:
                    await self._producer.begin_transaction()
                    self._open = True
                    self._number += 1
                if offset is not None:
                    await self._producer.send_offsets_to_transaction(
                        {self.tp: offset}, self.group_id
                    )
                await self._producer.commit_transaction()
            except Exception as err:
                self._open = False
                if was_fenced(err, self._producer):
                    self.fenced = True
                    raise Fenced(self.partition) from None
                self.broken = TxnFailed(f"{type(err).__name__}: {err}")
                try:
                    await self._producer.abort_transaction()
                except Exception as abort_err:
                    log.info("abort after a failed commit", error=str(abort_err))
                raise self.broken from err
            self._open = False
            self._committed = self._number
            return True

    async def send_durably(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None = None,
        *,
        headers: Headers,
    ) -> None:
        """Write one record and return once it is committed (visible to the next owner)."""
        number = await self.send(topic, value, key, partition, headers=headers)
        await self.commit(upto=number)

    def describe(self) -> dict[str, Any]:  # pragma: no cover - for debugging
        return {"transactional_id": self.transactional_id, "open": self._open}


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
