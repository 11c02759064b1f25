"""Checkpoints: how a partition's outputs, changelog and input offset become durable together.

A checkpoint starts with a :class:`Cut` per input partition, taken in one synchronous step so its
three parts agree: the output batches, the changelog batches (the states changed since the last
cut) and the input offset below which everything is done. Two writers make cuts durable:

- :class:`AtLeastOnce`: outputs confirmed, then the changelog written and confirmed, then the
  offsets committed. A crash in between replays from the last commit; replayed records at or
  below a key's changelog offset are skipped and re-produced outputs carry the same ids, so
  consumers that deduplicate by id see each once. A zombie (a process paused past its session
  timeout) can still write late records; after a lost generation nothing is written.
- :class:`ExactlyOnce`: each input partition has its own transactional producer
  (``transactional.id`` = group + input topic + partition), and a cut is one transaction:
  outputs, changelog and the input offset (``send_offsets_to_transaction``) commit together or
  not at all. The partition's next owner initialises the same ``transactional.id``, which bumps
  its epoch and fences the previous owner: a zombie's later writes and commits fail with
  ``ProducerFenced`` and are never visible to ``read_committed`` readers. aiokafka commits offsets
  with TxnOffsetCommit v0, without the group generation (KIP-447); fencing by one producer per
  partition does not need it, which is why the producers are per partition, not per process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import TopicPartition

from orchestrator.config import Settings
from orchestrator.kafka.clients import make_producer
from orchestrator.kafka.fencing import FENCED, was_fenced
from orchestrator.logs import get_logger
from orchestrator.runtime.output import OutputBuffer
from orchestrator.runtime.shutdown import bounded

__all__ = ["AtLeastOnce", "CheckpointFailed", "Cut", "ExactlyOnce", "Written"]

log = get_logger("orchestrator.runtime")

Batch = tuple[tuple[str, int], Any]


class CheckpointFailed(RuntimeError):
    """Outputs or changelog were not confirmed: stop and replay from the last commit."""


@dataclass
class Cut:
    """What one checkpoint writes for one input partition."""

    partition: int
    tp: TopicPartition
    outputs: list[Batch]
    changelog: list[Batch]
    changelog_records: int
    offset: int | None  # the input offset to commit (everything below it is done), or None
    #: At-least-once: output batches handed to the producer earlier, still to be confirmed.
    sent: list[asyncio.Future[Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return (
            self.offset is None
            and not self.sent
            and not any(b.record_count() for _, b in self.outputs + self.changelog)
        )


@dataclass
class Written:
    """What a checkpoint achieved: partitions committed, partitions lost to another owner."""

    committed: dict[TopicPartition, int] = field(default_factory=dict)
    fenced: set[int] = field(default_factory=set)
    changelog_ends: dict[int, int] = field(default_factory=dict)
    commit_refused: bool = False


def _ends(batches: list[Batch], metadata: list[Any]) -> dict[int, int]:
    """Changelog end offset per partition from the acknowledged batches."""
    ends: dict[int, int] = {}
    for ((_, p), builder), md in zip(batches, metadata, strict=True):
        ends[p] = max(ends.get(p, 0), md.offset + builder.record_count())
    return ends


async def _submit(producer: AIOKafkaProducer, batches: list[Batch]) -> list[asyncio.Future[Any]]:
    futs: list[asyncio.Future[Any]] = []
    for (topic, partition), builder in batches:
        builder.close()  # complete: nothing else may be appended by the producer
        futs.append(await producer.send_batch(builder, topic, partition=partition))
    return futs


def _nonempty(batches: list[Batch]) -> list[Batch]:
    return [(tp, b) for tp, b in batches if b.record_count()]


class AtLeastOnce:
    """One producer for every partition; offsets committed after everything else is confirmed."""

    exactly_once = False

    def __init__(self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
        self.producer = producer
        self.consumer = consumer

    async def claim(
        self, partition: int, routes: dict[str, int]
    ) -> tuple[OutputBuffer, OutputBuffer]:
        """Buffers for a partition's outputs and its changelog."""
        return OutputBuffer(self.producer, routes), OutputBuffer(self.producer, routes)

    async def release(self, partition: int) -> None:
        return None

    async def release_all(self) -> None:
        return None

    async def submit(self, batches: list[Batch]) -> list[asyncio.Future[Any]]:
        """Hand a partition's outputs to the producer now (lower latency); the next checkpoint
        waits for them before it commits."""
        return await _submit(self.producer, _nonempty(batches))

    async def start(self, cuts: list[Cut]) -> None:
        """In the caller's task, before the background part: outputs keep their order with the
        outputs submitted afterwards."""
        for cut in cuts:
            cut.sent += await _submit(self.producer, _nonempty(cut.outputs))
            cut.outputs = []

    async def finish(self, cuts: list[Cut], generation_valid: Callable[[], bool]) -> Written:
        written = Written()
        try:
            futs = [f for cut in cuts for f in cut.sent]
            if futs:
                await asyncio.gather(*futs)
            changelog = [b for cut in cuts for b in _nonempty(cut.changelog)]
            if changelog:
                mds = await asyncio.gather(*await _submit(self.producer, changelog))
                written.changelog_ends = _ends(changelog, list(mds))
        except Exception as err:
            raise CheckpointFailed(
                f"outputs or changelog not confirmed: {type(err).__name__}: {err}"
            ) from err
        offsets = {cut.tp: cut.offset for cut in cuts if cut.offset is not None}
        if offsets and generation_valid():
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as err:
                written.commit_refused = True
                log.info("commit refused (rebalance); the next owner replays", error=str(err))
            else:
                written.committed = offsets
        return written


class ExactlyOnce:
    """A transactional producer per input partition; each cut is one transaction."""

    exactly_once = True

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        input_topic: str,
        producer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.input_topic = input_topic
        self.overrides = dict(producer_overrides or {})
        self.producers: dict[int, AIOKafkaProducer] = {}

    def transactional_id(self, partition: int) -> str:
        return f"{self.group_id}.{self.input_topic}.{partition}"

    async def claim(
        self, partition: int, routes: dict[str, int]
    ) -> tuple[OutputBuffer, OutputBuffer]:
        """Initialise the partition's transactional id: from here on the previous owner's
        producer is fenced (an open transaction of it is aborted by the coordinator).

        Always with a new producer: one left from an earlier ownership was fenced by whoever
        owned the partition in between, and reusing it fenced nobody."""
        await self.release(partition)
        producer = make_producer(
            self.settings,
            **{
                **self.overrides,
                "transactional_id": self.transactional_id(partition),
                "enable_idempotence": True,
                "client_id": f"{self.group_id}-p{partition}",
            },
        )
        await producer.start()
        self.producers[partition] = producer
        return OutputBuffer(producer, routes), OutputBuffer(producer, routes)

    async def release(self, partition: int) -> None:
        producer = self.producers.pop(partition, None)
        if producer is not None:
            try:
                await bounded(producer.stop(), 8, what=f"transactional producer p{partition} stop")
            except Exception as err:  # a fenced producer may refuse a clean stop
                log.info("transactional producer stop", partition=partition, error=str(err))

    async def release_all(self) -> None:
        # Side by side: a stop may take its whole 8 s (a fenced producer flushing into refusals),
        # and one after another, four of them would outlast the role's shutdown budget.
        await asyncio.gather(*(self.release(p) for p in list(self.producers)))

    async def submit(self, batches: list[Batch]) -> list[asyncio.Future[Any]]:
        raise AssertionError("exactly-once outputs leave only inside their transaction")

    async def start(self, cuts: list[Cut]) -> None:
        return None

    async def finish(self, cuts: list[Cut], generation_valid: Callable[[], bool]) -> Written:
        written = Written()
        todo = [c for c in cuts if not c.empty and c.partition in self.producers]
        results = await asyncio.gather(*(self._one(cut) for cut in todo), return_exceptions=True)
        failures: list[BaseException] = []
        for cut, result in zip(todo, results, strict=True):
            if isinstance(result, BaseException) and was_fenced(
                result, self.producers.get(cut.partition)
            ):
                written.fenced.add(cut.partition)
                log.warning(
                    "partition fenced: another owner took it; nothing of this checkpoint is "
                    "visible",
                    partition=cut.partition,
                )
            elif isinstance(result, BaseException):
                failures.append(result)
            else:
                ends, offset = result
                written.changelog_ends.update(ends)
                if offset is not None:
                    written.committed[cut.tp] = offset
        if failures:
            err = failures[0]
            raise CheckpointFailed(f"transaction not committed: {type(err).__name__}: {err}")
        return written

    async def _one(self, cut: Cut) -> tuple[dict[int, int], int | None]:
        producer = self.producers[cut.partition]
        outputs, changelog = _nonempty(cut.outputs), _nonempty(cut.changelog)
        await producer.begin_transaction()
        try:
            out_futs = await _submit(producer, outputs)
            cl_futs = await _submit(producer, changelog)
            if cut.offset is not None:
                await producer.send_offsets_to_transaction({cut.tp: cut.offset}, self.group_id)
            await producer.commit_transaction()
            await asyncio.gather(*out_futs)
            mds = await asyncio.gather(*cl_futs)
        except FENCED:
            raise
        except BaseException:
            try:
                await producer.abort_transaction()
            except Exception as err:
                log.info("abort after a failed transaction", error=str(err))
            raise
        return _ends(changelog, list(mds)), cut.offset
