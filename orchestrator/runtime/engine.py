"""The runtime: a consumer-group member that runs an :class:`~orchestrator.runtime.app.App` per key.

One asyncio task fetches batches and, holding ``_lock``, applies them, fires timers, produces
outputs and checkpoints. The rebalance callbacks take the same lock, so a revocation always sees
a quiet partition: drain, checkpoint, release (drain first, then fence: finished work is never
thrown away).

A checkpoint (:mod:`orchestrator.runtime.checkpoint`) takes, per partition and in one
synchronous step, the outputs, the changed states and the committable input offset, then makes
them durable in the background while processing goes on (one checkpoint in flight at a time, so
the changelog stays in order): at least once (outputs, then changelog, then offsets) or exactly
once (one transaction per partition, fenced against a previous owner). A crash replays from the
last commit: a replayed record at or below a key's changelog offset is skipped, and outputs that
are produced again carry the same deterministic ids.

Rebalances. An assignment callback only pauses the new partitions and starts their restore in a
task of its own: aiokafka does not heartbeat while a callback runs, so a restore longer than the
session timeout inside it would get the member expelled, and the next owner would restore again,
in a loop. The run loop keeps polling meanwhile (the group sees a live member) and resumes each
partition once its state is loaded. A revocation after a *lost* generation (the member was
expelled, for example after a pause past the session timeout) writes nothing: another owner may
already be writing those partitions, and a late checkpoint would roll its state back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from contracts.envelopes import DeadLetter
from contracts.topics import MAX_RECORD_BYTES
from orchestrator.config import (
    SLOW_RESTORE_S,
    WORKER_COMMIT_BEFORE_PRODUCE,
    WORKER_RESTORE_IN_CALLBACK,
    WORKER_SLOW_RESTORE,
    Settings,
)
from orchestrator.kafka.clients import group_name, make_consumer, make_producer
from orchestrator.kafka.headers import TRACEPARENT, Headers, record_headers, traceparent_of
from orchestrator.kafka.membership import generation_lost, request_rejoin
from orchestrator.kafka.reading import partitions_of
from orchestrator.logs import get_logger
from orchestrator.runtime.app import App, Context, DecodeError, Output, Step
from orchestrator.runtime.checkpoint import (
    AtLeastOnce,
    CheckpointFailed,
    Cut,
    ExactlyOnce,
    Written,
)
from orchestrator.runtime.metrics import RuntimeMetrics
from orchestrator.runtime.output import OutputBuffer, fits
from orchestrator.runtime.restore import RestoreAborted, restore
from orchestrator.runtime.shutdown import bounded, cancel_and_wait
from orchestrator.runtime.store import Entry, PartitionStore, encode_changelog
from orchestrator.tracing import call_traceparent, record_trace, tracing_for

S = TypeVar("S")
E = TypeVar("E")

__all__ = ["FatalError", "Runtime", "RuntimeConfig"]

log = get_logger("orchestrator.runtime")

#: How long a rebalance or a stop waits for a cancelled restore before leaving it behind.
RESTORE_CANCEL_S = 5.0
#: A checkpoint not durable by then is fatal: the process exits and its records are replayed.
#: (A fenced transactional producer's sender can die with futures that never resolve; the
#: checkpoint then waited forever and no output of its partitions was ever committed again.)
CHECKPOINT_DEADLINE_S = 30.0


class FatalError(RuntimeError):
    """Outputs could not be confirmed: the process must stop and replay from the last commit."""


@dataclass(frozen=True)
class RuntimeConfig:
    input_topic: str
    changelog_topic: str
    dlq_topic: str
    group_id: str
    #: Every topic the application may produce to (routing needs their partition counts).
    output_topics: Sequence[str] = ()
    #: Async apps: at most this many keys processed at once.
    concurrency: int = 64
    #: Checkpoint at least this often (seconds) ...
    commit_interval_s: float = 0.5
    #: ... or after this many records.
    commit_every_records: int = 50_000
    #: Finished keys are evicted (tombstoned) this long after they finished.
    retention_s: float = 300.0
    #: Granularity of timers (and the longest fetch wait).
    tick_s: float = 0.05
    punctuate_interval_s: float | None = None
    max_poll_records: int = 5_000
    #: Async apps: stop fetching while this many records are in flight.
    max_inflight_records: int = 20_000
    #: Revocation/shutdown: the longest wait for in-flight async work.
    drain_timeout_s: float = 15.0
    #: One transaction per partition per checkpoint (outputs, changelog and offsets together,
    #: fenced against a previous owner) instead of at-least-once with deduplication.
    exactly_once: bool = False
    consumer_overrides: Mapping[str, Any] = field(default_factory=dict)
    producer_overrides: Mapping[str, Any] = field(default_factory=dict)


class _Partition(Generic[S]):
    __slots__ = (
        "cl",
        "committed",
        "done",
        "last",
        "out",
        "p",
        "pending",
        "queues",
        "sent",
        "store",
        "tp",
    )

    def __init__(
        self,
        tp: TopicPartition,
        store: PartitionStore[S],
        committed: int,
        out: OutputBuffer,
        cl: OutputBuffer,
    ) -> None:
        self.tp = tp
        self.p = tp.partition
        self.store = store
        self.out = out  # outputs and dead letters of this partition's records
        self.cl = cl  # its changelog records
        self.sent: list[asyncio.Future[Any]] = []  # at-least-once: submitted, not yet confirmed
        self.committed = committed  # the group's committed offset (next record to read)
        self.last = -1  # highest input offset taken (done or in flight)
        self.pending: deque[int] = deque()  # async: offsets in flight, ascending
        self.done: set[int] = set()  # async: completed offsets still in ``pending``
        #: async: busy state keys, each with its waiting records (and their decoded events,
        #: for an application that maps Kafka keys to state keys; else None)
        self.queues: dict[str, deque[tuple[ConsumerRecord[bytes, bytes], Any]]] = {}

    def committable(self) -> int | None:
        """The offset to commit: everything below it is complete."""
        pending = self.pending
        done = self.done
        while pending and pending[0] in done:
            done.discard(pending.popleft())
        if pending:
            return pending[0]
        return self.last + 1 if self.last >= 0 else None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runtime: Runtime[Any, Any]) -> None:
        self._rt = runtime

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._rt._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._rt._on_assigned(assigned)


class Runtime(Generic[S, E]):
    """Runs ``app`` on ``config.input_topic``; see the package docstring for the contract."""

    def __init__(
        self,
        settings: Settings,
        app: App[S, E],
        config: RuntimeConfig,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.app = app
        self.cfg = config
        self.registry = registry or CollectorRegistry()
        self.metrics = RuntimeMetrics(self.registry, app.name).labels()
        self._async = inspect.iscoroutinefunction(app.apply)
        #: The application maps Kafka keys to state keys (``App.state_key``): its records are
        #: decoded before the replay check, and ordered and stored by state key.
        self._keyed = type(app).state_key is not App.state_key
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._epoch = 0
        self._parts: dict[int, _Partition[S]] = {}
        self._standby: dict[int, PartitionStore[S]] = {}
        self._cl_end: dict[int, int] = {}  # changelog end offset as we last knew it
        self._ctx = Context()
        self._ckpt_task: asyncio.Task[None] | None = None
        self._since_ckpt = 0
        self._last_ckpt = time.monotonic()
        self._last_tick = 0.0
        self._last_sweep = 0.0
        self._last_punctuate = 0.0
        self._inflight = 0
        self._sem = asyncio.Semaphore(max(1, config.concurrency))
        self._tasks: set[asyncio.Task[None]] = set()
        self._joined = False
        self._started = False
        self._closing = False
        self._loop_at = time.monotonic()
        self._fatal: BaseException | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._restorer: AIOKafkaConsumer | None = None
        self._writer: AtLeastOnce | ExactlyOnce | None = None
        self._routes: dict[str, int] = {}
        #: Partitions assigned but not yet restored (paused), and the task restoring them.
        self._restoring_parts: set[int] = set()
        self._restore_task: asyncio.Task[None] | None = None
        self._submitted: dict[str, int] = {}
        self._fenced: set[int] = set()
        self.stats = {"applied": 0, "skipped": 0, "dead_lettered": 0, "restored_records": 0}
        #: A deliberately broken variant (soak tests only): see ``orchestrator.config``.
        self._commit_before_produce = WORKER_COMMIT_BEFORE_PRODUCE in settings.orchestrator_fault
        self._restore_in_callback = WORKER_RESTORE_IN_CALLBACK in settings.orchestrator_fault
        self._slow_restore = WORKER_SLOW_RESTORE in settings.orchestrator_fault
        self._tracing = tracing_for(app.name)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        self._restorer = make_consumer(
            s,
            group_id=None,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            isolation_level="read_committed",  # a zombie's aborted changelog writes are not state
        )
        await self._restorer.start()
        for topic in (self.cfg.dlq_topic, self.cfg.changelog_topic, *self.cfg.output_topics):
            parts = await partitions_of(self._restorer, topic)
            if not parts:
                raise KafkaError(f"topic {topic} has no partitions")
            self._routes[topic] = len(parts)
        timeout_ms = s.kafka_session_timeout_ms
        self._consumer = make_consumer(
            s,
            group_id=self.cfg.group_id,
            max_poll_records=self.cfg.max_poll_records,
            # Sticky: a rebalance moves as few partitions as it can, so fewer restores.
            partition_assignment_strategy=(StickyPartitionAssignor,),
            # Members get this long to finish a revocation (drain + checkpoint) once a
            # rebalance starts; longer than the drain bound, so a drain never expels anyone.
            rebalance_timeout_ms=max(timeout_ms, int(self.cfg.drain_timeout_s * 1000) + 15_000),
            **dict(self.cfg.consumer_overrides),
        )
        if self.cfg.exactly_once:
            self._writer = ExactlyOnce(
                s,
                group_name(s, self.cfg.group_id),
                self.cfg.input_topic,
                self.cfg.producer_overrides,
            )
        else:
            self._producer = make_producer(s, **dict(self.cfg.producer_overrides))
            await self._producer.start()
            self._writer = AtLeastOnce(self._producer, self._consumer)
        await self._consumer.start()
        self._consumer.subscribe([self.cfg.input_topic], listener=_Listener(self))
        self._started = True
        log.info(
            "runtime started",
            app=self.app.name,
            group=self.cfg.group_id,
            topic=self.cfg.input_topic,
            mode="async" if self._async else "inline",
            guarantee="exactly-once" if self.cfg.exactly_once else "at-least-once",
        )

    def request_stop(self) -> None:
        """Stop fetching; ``run`` returns, then call ``close`` (drain, checkpoint, leave)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def alive(self) -> bool:
        if self._fatal is not None:
            return False
        return not self._started or time.monotonic() - self._loop_at < 60

    def ready(self) -> bool:
        return (
            self._started and self._joined and not self._restoring_parts and not self._stop.is_set()
        )

    def detail(self) -> dict[str, Any]:
        return {
            "partitions": sorted(self._parts),
            "live_keys": sum(len(p.store) for p in self._parts.values()),
            "restoring": sorted(self._restoring_parts),
            "stopping": self._stop.is_set(),
        }

    async def run(self) -> None:
        """Fetch and process until :meth:`request_stop`; raise :class:`FatalError` on lost output."""
        assert self._consumer is not None
        consumer = self._consumer
        timeout_ms = max(1, int(self.cfg.tick_s * 1000))
        while not self._stop.is_set():
            self._loop_at = time.monotonic()
            if self._fatal is not None:
                raise FatalError(str(self._fatal)) from self._fatal
            if self._async and self._inflight >= self.cfg.max_inflight_records:
                await asyncio.sleep(0.005)
                async with self._lock:
                    await self._housekeeping(time.time())
                continue
            if self._fenced:
                async with self._lock:
                    await self._lose_fenced()
            epoch = self._epoch
            try:
                batch = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self.cfg.max_poll_records
                )
            except KafkaError as err:
                log.warning("fetch failed", error=str(err))
                await asyncio.sleep(0.5)
                continue
            async with self._lock:
                if epoch != self._epoch:
                    self._rewind(batch)
                    continue
                now = time.time()
                if batch:
                    self._process(batch, now)
                await self._housekeeping(now)

    def _rewind(self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """A batch fetched across a rebalance is not processed: its positions are moved back.

        The consumer's position already moved past the batch, so for partitions we (still) own,
        seek to the first offset not yet taken under the current assignment.
        """
        assert self._consumer is not None
        for tp, msgs in batch.items():
            part = self._parts.get(tp.partition)
            if part is None or not msgs or tp.topic != self.cfg.input_topic:
                continue
            self._consumer.seek(tp, part.last + 1 if part.last >= 0 else part.committed)

    async def _housekeeping(self, now: float) -> None:
        """Timers, punctuate, eviction, output submission, checkpoint when due (lock held)."""
        assert self._writer is not None
        if now - self._last_tick >= self.cfg.tick_s:
            self._last_tick = now
            self._fire_timers(now)
            if (
                self.cfg.punctuate_interval_s is not None
                and now - self._last_punctuate >= self.cfg.punctuate_interval_s
            ):
                self._last_punctuate = now
                self._punctuate(now)
            if now - self._last_sweep >= 1.0:
                self._last_sweep = now
                self._evict(now)
        if not self._writer.exactly_once:  # outputs leave now; the checkpoint confirms them
            for part in self._parts.values():
                if part.out.pending_records:
                    batches = part.out.detach()
                    self._count(batches)
                    part.sent += await self._writer.submit(batches)
                    if len(part.sent) > 512:
                        part.sent = _unsettled(part.sent)
        if (
            self._since_ckpt >= self.cfg.commit_every_records
            or time.monotonic() - self._last_ckpt >= self.cfg.commit_interval_s
        ) and not self._checkpoint_running():
            await self._start_checkpoint()

    async def close(self) -> None:
        """Drain in-flight work, checkpoint, leave the group, stop the clients."""
        if self._closing:
            return
        self._closing = True
        self._stop.set()
        t0 = time.monotonic()
        await self._cancel_restore()
        if self._started:
            async with self._lock:
                await self._drain(list(self._parts.values()))
                try:
                    await bounded(self._checkpoint(), 10, what="final checkpoint")
                except Exception as err:  # the replay after restart covers what was not committed
                    log.error("final checkpoint failed", error=str(err))
        self._parts.clear()
        self._standby.clear()
        if self._writer is not None:
            await self._writer.release_all()

        async def _stop(name: str, client: Any) -> None:
            try:
                await bounded(client.stop(), 8, what=f"{name} stop")
            except Exception as err:
                log.warning("client stop failed", client=name, error=str(err))

        clients = {
            "consumer": self._consumer,
            "producer": self._producer,
            "restorer": self._restorer,
        }
        # Side by side: each may take its 8 s (a broker gone, a fenced producer).
        await asyncio.gather(*(_stop(n, c) for n, c in clients.items() if c is not None))
        self.metrics.partitions.set(0)
        self.metrics.live_keys.set(0)
        log.info(
            "runtime stopped",
            app=self.app.name,
            drain_s=round(time.monotonic() - t0, 3),
            **self.stats,
        )

    # ------------------------------------------------------------------ processing

    def _process(
        self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]], now: float
    ) -> None:
        t0 = time.perf_counter()
        newest = 0
        n = 0
        topic = self.cfg.input_topic
        for tp, msgs in batch.items():
            part = self._parts.get(tp.partition)
            if part is None or tp.topic != topic or not msgs:
                continue
            n += len(msgs)
            newest = max(newest, msgs[-1].timestamp)
            if self._async:
                for m in msgs:
                    self._dispatch_async(part, m, now)
            else:
                self._process_inline(part, msgs, now)
        self._since_ckpt += n
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        if newest:
            self.metrics.event_age.observe(max(0.0, now - newest / 1000))

    def _process_inline(
        self, part: _Partition[S], msgs: list[ConsumerRecord[bytes, bytes]], now: float
    ) -> None:
        """The fast path for plain-function apps: in partition order, no awaits."""
        entries = part.store.entries
        dirty = part.store.dirty
        store = part.store
        app = self.app
        decode = app.decode
        apply = app.apply
        invalid = app.invalid_errors
        append = part.out.append
        tracing = self._tracing
        span_name = f"{app.name} apply"
        ctx = self._ctx
        ctx.partition = part.p
        ctx.now = now
        ctx.idle_s = 0.0
        keyed = self._keyed
        applied = skipped = 0
        for m in msgs:
            off = m.offset
            kb = m.key
            if kb is None:
                self._dead_letter(part, m, "missing_key", "record has no key")
                continue
            try:
                key = rkey = kb.decode()
            except UnicodeDecodeError as err:
                self._dead_letter(part, m, "undecodable", f"key: {err}")
                continue
            if not keyed:
                entry = entries.get(key)
                if entry is not None and off <= entry.offset:
                    skipped += 1
                    continue
            try:
                event = decode(kb, m.value)
            except DecodeError as err:
                self._dead_letter(part, m, "undecodable", str(err))
                continue
            except Exception as err:
                self._dead_letter(part, m, "undecodable", f"{type(err).__name__}: {err}")
                continue
            if keyed:
                mapped = self._state_key(part, m, key, event)
                if mapped is None:
                    continue
                key = mapped
                entry = entries.get(key)
                if entry is not None and off <= entry.offset:
                    skipped += 1
                    continue
            ctx.record_key = rkey
            ctx.offset = off
            ctx.timestamp_ms = m.timestamp
            trace = record_trace(m.headers, rkey)
            try:
                if tracing.enabled:
                    with tracing.span(span_name, trace, attributes={"voice.key": key}) as trace:
                        step: Step[S] = apply(
                            key, entry.state if entry is not None else None, event, ctx
                        )  # type: ignore[assignment]
                else:
                    step = apply(key, entry.state if entry is not None else None, event, ctx)  # type: ignore[assignment]
            except invalid as err:
                self._dead_letter(part, m, "invalid_event", str(err))
                continue
            except Exception as err:
                self._dead_letter(part, m, "handler_error", f"{type(err).__name__}: {err}")
                continue
            if step.outputs and _oversized(step):
                self._dead_letter(part, m, "output_too_large", _OVERSIZED)
                continue
            applied += 1
            state = step.state
            if state is None:
                if entries.pop(key, None) is not None:
                    dirty.add(key)
            else:
                if entry is None:
                    entry = Entry(state, off, now)
                    entries[key] = entry
                else:
                    entry.state = state
                    entry.offset = off
                    entry.touched = now
                dirty.add(key)
                timer = step.timer
                if timer is not None:
                    store.schedule(key, entry, now + timer)
                elif entry.due is not None:
                    entry.due = None
                if step.finished:
                    store.mark_finished(key, entry, now)
                elif entry.done_at is not None:
                    entry.done_at = None
            for o in step.outputs:
                append(o.topic, o.key, o.value, o.partition, _out_headers(o, trace))
        part.last = msgs[-1].offset
        self.stats["applied"] += applied
        self.stats["skipped"] += skipped
        if applied:
            self.metrics.applied.inc(applied)
        if skipped:
            self.metrics.skipped.inc(skipped)

    def _state_key(
        self, part: _Partition[S], m: ConsumerRecord[bytes, bytes], key: str, event: E
    ) -> str | None:
        """The record's state key (``App.state_key``); None: dead-lettered."""
        try:
            return self.app.state_key(key, event)
        except self.app.invalid_errors as err:
            self._dead_letter(part, m, "invalid_event", f"state key: {err}")
        except Exception as err:
            self._dead_letter(part, m, "handler_error", f"state key: {type(err).__name__}: {err}")
        return None

    def _apply_step(
        self,
        part: _Partition[S],
        key: str,
        step: Step[S],
        offset: int,
        now: float,
        *,
        touched: bool,
        trace: str | None,
    ) -> None:
        """Store a step's state, timer, finished mark and outputs (used by all non-inline paths).

        A timer step that changed nothing (same state object, no outputs, same finished mark, a
        timer still set) is not written to the changelog: only its new due time would be, and the
        stored, earlier due time just makes the timer fire early once after a takeover.
        """
        store = part.store
        entry = store.entries.get(key)
        if step.state is None:
            if store.entries.pop(key, None) is not None:
                store.dirty.add(key)
        else:
            if entry is None:
                entry = Entry(step.state, offset, now)
                store.entries[key] = entry
                store.dirty.add(key)
            else:
                if (
                    entry.state is not step.state
                    or step.outputs
                    or touched
                    or step.finished != (entry.done_at is not None)
                    or (step.timer is None) != (entry.saved_due is None)
                ):
                    store.dirty.add(key)
                entry.state = step.state
                if offset >= 0:
                    entry.offset = offset
                if touched:
                    entry.touched = now
            store.schedule(key, entry, None if step.timer is None else now + step.timer)
            store.mark_finished(key, entry, now if step.finished else None)
        for o in step.outputs:
            part.out.append(o.topic, o.key, o.value, o.partition, _out_headers(o, trace))

    # -- async apps: per-key order, concurrency across keys

    def _dispatch_async(
        self, part: _Partition[S], m: ConsumerRecord[bytes, bytes], now: float
    ) -> None:
        part.last = m.offset
        part.pending.append(m.offset)
        self._inflight += 1
        kb = m.key
        if kb is None:
            self._dead_letter(part, m, "missing_key", "record has no key")
            self._complete(part, m.offset)
            return
        try:
            key = kb.decode()
        except UnicodeDecodeError as err:
            self._dead_letter(part, m, "undecodable", f"key: {err}")
            self._complete(part, m.offset)
            return
        event: Any = None
        if self._keyed:  # ordered by state key: decoded here to learn it
            try:
                event = self.app.decode(kb, m.value)
            except Exception as err:
                self._dead_letter(
                    part,
                    m,
                    "undecodable",
                    str(err) if isinstance(err, DecodeError) else f"{type(err).__name__}: {err}",
                )
                self._complete(part, m.offset)
                return
            mapped = self._state_key(part, m, key, event)
            if mapped is None:
                self._complete(part, m.offset)
                return
            key = mapped
        queue = part.queues.get(key)
        if queue is not None:
            queue.append((m, event))  # the key is busy: wait behind it, in order
            return
        part.queues[key] = deque()
        task = asyncio.create_task(self._run_key(part, key, m, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _complete(self, part: _Partition[S], offset: int) -> None:
        part.done.add(offset)
        self._inflight -= 1

    async def _run_key(
        self, part: _Partition[S], key: str, m: ConsumerRecord[bytes, bytes], event: Any = None
    ) -> None:
        while True:
            try:
                async with self._sem:
                    await self._apply_async(part, key, m, event)
            except Exception as err:  # pragma: no cover - _apply_async handles app errors
                self._fatal = err
            finally:
                self._complete(part, m.offset)
            queue = part.queues.get(key)
            if not queue:
                part.queues.pop(key, None)
                return
            m, event = queue.popleft()

    async def _apply_async(
        self, part: _Partition[S], key: str, m: ConsumerRecord[bytes, bytes], event: Any = None
    ) -> None:
        """Apply one record to state ``key``; ``event`` is already decoded for a keyed app."""
        entry = part.store.entries.get(key)
        if entry is not None and m.offset <= entry.offset:
            self.stats["skipped"] += 1
            self.metrics.skipped.inc()
            return
        if not self._keyed:
            try:
                event = self.app.decode(m.key or b"", m.value)
            except Exception as err:
                self._dead_letter(
                    part,
                    m,
                    "undecodable",
                    str(err) if isinstance(err, DecodeError) else f"{type(err).__name__}: {err}",
                )
                return
        rkey = (m.key or b"").decode()
        ctx = Context(
            partition=part.p,
            offset=m.offset,
            timestamp_ms=m.timestamp,
            now=time.time(),
            record_key=rkey,
        )
        if entry is not None:
            entry.busy = True
        trace = record_trace(m.headers, rkey)
        try:
            with self._tracing.span(
                f"{self.app.name} apply", trace, attributes={"voice.key": key}
            ) as trace:
                result = self.app.apply(key, entry.state if entry is not None else None, event, ctx)
                step: Step[S] = await result if inspect.isawaitable(result) else result
        except self.app.invalid_errors as err:
            self._dead_letter(part, m, "invalid_event", str(err))
            return
        except Exception as err:
            self._dead_letter(part, m, "handler_error", f"{type(err).__name__}: {err}")
            return
        finally:
            if entry is not None:
                entry.busy = False
        if step.outputs and _oversized(step):
            self._dead_letter(part, m, "output_too_large", _OVERSIZED)
            return
        self._apply_step(part, key, step, m.offset, time.time(), touched=True, trace=trace)
        self.stats["applied"] += 1
        self.metrics.applied.inc()

    async def _drain(self, parts: Iterable[_Partition[S]]) -> None:
        """Wait until the partitions' async work is done (bounded by ``drain_timeout_s``)."""
        parts = list(parts)
        deadline = time.monotonic() + self.cfg.drain_timeout_s
        while any(p.queues for p in parts):
            if time.monotonic() > deadline:
                log.warning("drain timed out; uncommitted work will be replayed by the next owner")
                break
            await asyncio.sleep(0.005)

    # -- timers, punctuate, eviction

    def _fire_timers(self, now: float) -> None:
        ctx = self._ctx
        fired = 0
        for part in self._parts.values():
            store = part.store
            if not store.timers or store.timers[0][0] > now:
                continue
            ctx.partition = part.p
            ctx.offset = -1
            ctx.timestamp_ms = 0
            ctx.now = now
            ctx.record_key = ""
            for key in store.due_keys(now):
                entry = store.entries[key]
                if key in part.queues:  # async work in flight: try again next tick
                    store.schedule(key, entry, now + self.cfg.tick_s)
                    continue
                entry.due = None
                ctx.idle_s = max(0.0, now - entry.touched)
                trace = call_traceparent(key)
                try:
                    with self._tracing.span(
                        f"{self.app.name} timer", trace, attributes={"voice.key": key}
                    ) as trace:
                        step = self.app.on_timer(key, entry.state, ctx)
                except Exception as err:
                    log.error("timer failed", key=key, error=f"{type(err).__name__}: {err}")
                    continue
                if step.outputs and _oversized(step):
                    log.error("timer output too large: dropped", key=key, limit=MAX_RECORD_BYTES)
                    continue
                fired += 1
                self._apply_step(part, key, step, -1, now, touched=False, trace=trace)
        if fired:
            self.metrics.timers.inc(fired)

    def _punctuate(self, now: float) -> None:
        for part in self._parts.values():
            ctx = Context(partition=part.p, offset=-1, timestamp_ms=0, now=now)
            try:
                outputs = list(self.app.punctuate(part.p, part.store, ctx))
            except Exception as err:
                log.error(
                    "punctuate failed", partition=part.p, error=f"{type(err).__name__}: {err}"
                )
                continue
            for o in outputs:
                if fits(o.key, o.value):
                    part.out.append(o.topic, o.key, o.value, o.partition, _out_headers(o, None))
                else:
                    log.error("punctuate output too large: dropped", partition=part.p)

    def _evict(self, now: float) -> None:
        n = 0
        for part in self._parts.values():
            for key in part.store.expired(now, self.cfg.retention_s, part.committed):
                part.store.evict(key)
                n += 1
        if n:
            self.metrics.evictions.inc(n)

    # -- dead letters

    def _dead_letter(
        self,
        part: _Partition[S],
        m: ConsumerRecord[bytes, bytes],
        reason: str,
        error: str | None,
    ) -> None:
        letter = DeadLetter(
            id=DeadLetter.make_id(m.topic, m.partition, m.offset),
            occurred_at=datetime.now(UTC),
            reason=reason,
            error=(error or "")[:2000] or None,
            source_topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            key_b64=base64.b64encode(m.key).decode() if m.key is not None else None,
            value_b64=base64.b64encode(m.value).decode() if m.value is not None else None,
            role=self.app.name,
        )
        value = letter.to_bytes()
        if not fits(m.key, value):  # the original is too big to carry: keep its coordinates
            value = letter.model_copy(update={"value_b64": None}).to_bytes()
        trace = (
            record_trace(m.headers, m.key.decode("utf-8", "replace"))
            if m.key is not None
            else traceparent_of(m.headers)
        )
        part.out.append(
            self.cfg.dlq_topic,
            m.key,
            value,
            headers=record_headers("DeadLetter", letter.schema_version, trace),
        )
        self.stats["dead_lettered"] += 1
        self.metrics.dead.inc()
        self.metrics.dead_letter(reason)
        log.warning(
            "dead-lettered",
            reason=reason,
            error=(error or "")[:300],
            partition=m.partition,
            offset=m.offset,
        )

    # ------------------------------------------------------------------ checkpoint

    def _count(self, batches: list[tuple[tuple[str, int], Any]]) -> None:
        for (topic, _), builder in batches:
            self._submitted[topic] = self._submitted.get(topic, 0) + builder.record_count()

    def _generation_lost(self) -> bool:
        return generation_lost(self._consumer)

    async def _checkpoint(self) -> None:
        """A complete checkpoint, waited for (revoke, shutdown). Lock held."""
        await self._wait_checkpoint()
        await self._start_checkpoint()
        await self._wait_checkpoint()

    async def _wait_checkpoint(self) -> None:
        task = self._ckpt_task
        if task is not None:
            self._ckpt_task = None
            await task  # raises FatalError if it failed

    def _checkpoint_running(self) -> bool:
        task = self._ckpt_task
        if task is None:
            return False
        if not task.done():
            return True
        self._ckpt_task = None
        if not task.cancelled() and task.exception() is not None:
            self._fatal = task.exception()
        return False

    def _cut(self, part: _Partition[S]) -> Cut:
        """One partition's share of a checkpoint, taken synchronously so its parts agree."""
        c = part.committable()
        store = part.store
        cl_count = 0
        if store.dirty:
            dump = self.app.dump_state
            state_type, state_version = self.app.state_type, self.app.state_schema_version
            dirty, store.dirty = store.dirty, set()
            entries = store.entries
            for key in dirty:
                e = entries.get(key)
                value = None
                if e is not None:
                    value = encode_changelog(e, dump(e.state))
                    e.saved_due = e.due
                    if not fits(key.encode(), value):
                        # No topic can hold it: the key's state is lost at the next restore.
                        # Say so loudly rather than fail every checkpoint from now on.
                        log.error(
                            "state too large for the changelog: stored as deleted",
                            key=key,
                            size=len(value),
                            limit=MAX_RECORD_BYTES,
                        )
                        self.metrics.dead_letter("state_too_large")
                        value = None
                part.cl.append(
                    self.cfg.changelog_topic,
                    key.encode(),
                    value,
                    part.p,
                    record_headers(state_type, state_version, call_traceparent(key)),
                )
                cl_count += 1
        outputs = part.out.detach()
        changelog = part.cl.detach()
        self._count(outputs)
        self._count(changelog)
        sent, part.sent = part.sent, []
        offset = c if c is not None and c > part.committed else None
        return Cut(part.p, part.tp, outputs, changelog, cl_count, offset, sent)

    async def _start_checkpoint(self) -> None:
        """Cut every partition now; make the cuts durable in the background (lock held, none in
        flight). Processing goes on meanwhile; one checkpoint in flight keeps the changelog in
        order."""
        assert self._writer is not None
        cuts = [self._cut(part) for part in self._parts.values()]
        self._since_ckpt = 0
        self._last_ckpt = time.monotonic()
        offsets = {cut.tp: cut.offset for cut in cuts if cut.offset is not None}
        if offsets and self._commit_before_produce:  # soak tests only
            assert self._consumer is not None
            await self._consumer.commit(offsets)
            for cut in cuts:
                if cut.offset is not None:
                    self._parts[cut.partition].committed = cut.offset
                    cut.offset = None
            await asyncio.sleep(1.0)
        try:
            await self._writer.start(cuts)
        except Exception as err:
            self._fatal = err
            raise FatalError(f"outputs not accepted: {type(err).__name__}: {err}") from err
        self._ckpt_task = asyncio.create_task(self._finish_checkpoint(cuts))

    async def _finish_checkpoint(self, cuts: list[Cut]) -> None:
        assert self._writer is not None
        t0 = time.monotonic()
        try:
            written: Written = await bounded(
                self._writer.finish(cuts, lambda: not self._generation_lost()),
                CHECKPOINT_DEADLINE_S,
                what="checkpoint",
            )
        except (CheckpointFailed, TimeoutError) as err:
            self._fatal = err
            raise FatalError(str(err)) from err
        for p, end in written.changelog_ends.items():
            self._cl_end[p] = max(self._cl_end.get(p, 0), end)
        self.metrics.changelog_records.inc(sum(c.changelog_records for c in cuts))
        if written.commit_refused:
            self.metrics.commit_failures.inc()
        for tp, c in written.committed.items():
            owned = self._parts.get(tp.partition)
            if owned is not None:
                owned.committed = max(owned.committed, c)
        if written.fenced:
            self._fenced |= written.fenced
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.observe(time.monotonic() - t0)
        self._update_gauges()

    def _update_gauges(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        live = 0
        inflight = 0
        for part in self._parts.values():
            live += len(part.store)
            inflight += len(part.pending)
            hw = consumer.highwater(part.tp)
            if hw is not None:
                pos = part.last + 1 if part.last >= 0 else max(part.committed, 0)
                self.metrics.lag(part.p, max(0, hw - pos))
        self.metrics.live_keys.set(live)
        self.metrics.inflight.set(inflight)
        for name, n in self._submitted.items():
            self.metrics.output(name, n)
        self._submitted.clear()
        self.metrics.partitions.set(len(self._parts))

    # ------------------------------------------------------------------ rebalance

    async def _drop(self, numbers: Iterable[int], *, keep_state: bool) -> None:
        """Stop owning partitions (lock held). Their stores stay as standby when ``keep_state``
        (only for a store that holds exactly what is durable): if the partition comes straight
        back, only what another owner wrote since is read.

        The transactional producer goes in every case. Whoever owns the partition next claims
        it with a fresh one, whose initialisation is what fences the owners in between; a kept
        producer is fenced by them, and its first transaction fails (a soak found a partition
        given up that way, and two calls that never got their outcome)."""
        assert self._writer is not None
        for p in numbers:
            self._fenced.discard(p)
            part = self._parts.pop(p, None)
            if part is None:
                continue
            self.metrics.drop_lag(p)
            if keep_state:
                self._standby[p] = part.store
            else:
                self._cl_end.pop(p, None)
            await self._writer.release(p)

    async def _lose_fenced(self) -> None:
        """Partitions whose transactional id another owner initialised (lock held): this process
        is a zombie for them. Nothing of theirs is kept; the group will revoke them."""
        fenced, self._fenced = self._fenced, set()
        lost = [p for p in fenced if p in self._parts]
        if not lost:
            return
        assert self._consumer is not None
        self._consumer.pause(*[self._parts[p].tp for p in lost])
        await self._drop(lost, keep_state=False)
        # Nothing says the group moved them: the fence may come from an owner that is itself
        # stale. Rejoining settles it; if the group gives them back, they are claimed afresh
        # (which fences the other). Without it they stayed paused here and nobody read them.
        request_rejoin(self._consumer)
        log.warning(
            "partitions given up: fenced by another owner; rejoining the group",
            partitions=sorted(lost),
        )

    async def _cancel_restore(self) -> None:
        """Cancel the restore task and wait for it, cancelling again while it has not ended.

        A restore waits inside aiokafka (claims, changelog fetches), which has swallowed a
        cancel before: one cancel and an unbounded wait could hang a rebalance or a shutdown.
        After :data:`RESTORE_CANCEL_S` it is left behind: its epoch is stale, so it installs
        nothing.
        """
        task, self._restore_task = self._restore_task, None
        if task is not None and not task.done():
            await cancel_and_wait(task, what="restore", within_s=RESTORE_CANCEL_S)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.metrics.rebalance("revoked")
        await self._cancel_restore()  # its partitions are being revoked too (eager protocol)
        async with self._lock:
            self._epoch += 1
            numbers = {tp.partition for tp in revoked if tp.topic == self.cfg.input_topic}
            self._restoring_parts -= numbers
            parts = [self._parts[p] for p in sorted(numbers) if p in self._parts]
            if not parts:
                return
            if self._generation_lost():
                # Expelled: another member may own these partitions already. Writing now could
                # roll its state back or repeat its outputs, so nothing is written.
                self.metrics.rebalance("lost")
                log.warning(
                    "partitions lost (expelled from the group): uncommitted work is left to "
                    "the next owner",
                    partitions=[p.p for p in parts],
                )
                await self._drop([p.p for p in parts], keep_state=False)
                self._update_gauges()
                return
            await self._drain(parts)
            durable = {p.p for p in parts}
            try:
                await self._checkpoint()
            except FatalError:
                raise
            except Exception as err:
                log.warning("checkpoint on revoke failed", error=str(err))
                durable.clear()
            # A fenced partition's store holds what its aborted transaction applied: kept as
            # standby, the replay of those records would find them applied and emit nothing.
            durable -= self._fenced
            await self._drop(sorted(durable), keep_state=True)
            await self._drop([p.p for p in parts if p.p not in durable], keep_state=False)
            self._update_gauges()
            log.info("partitions revoked", app=self.app.name, partitions=[p.p for p in parts])

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Pause the new partitions and restore them in a task of their own (see the module
        docstring: never inside this callback)."""
        self.metrics.rebalance("assigned")
        assert self._consumer is not None and self._writer is not None
        async with self._lock:
            self._epoch += 1
            mine = sorted(tp.partition for tp in assigned if tp.topic == self.cfg.input_topic)
            for p in [p for p in self._standby if p not in mine]:
                del self._standby[p]
                self._cl_end.pop(p, None)
            new = [p for p in mine if p not in self._parts]
            self._joined = True
            if not new:
                self._update_gauges()
                return
            self._consumer.pause(*[TopicPartition(self.cfg.input_topic, p) for p in new])
            self._restoring_parts |= set(new)
            task = self._restore_task = asyncio.create_task(self._restore(new, self._epoch))
        if self._restore_in_callback:  # broken variant (tests only)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def _restore(self, new: list[int], epoch: int) -> None:
        """Fence, restore, install and resume ``new`` (a task; abandoned by the next rebalance)."""
        assert self._consumer is not None and self._restorer is not None
        assert self._writer is not None
        writer = self._writer
        t0 = time.monotonic()
        try:
            # Exactly-once: the previous owner is fenced before its changelog is read, so the
            # changelog and the committed offsets read below can no longer change under us.
            buffers = dict(
                zip(
                    new,
                    await asyncio.gather(*(writer.claim(p, self._routes) for p in new)),
                    strict=True,
                )
            )
            stores: dict[int, PartitionStore[S]] = {}
            start: dict[int, int] = {}
            for p in new:
                standby = self._standby.pop(p, None)
                if standby is not None and p in self._cl_end:
                    stores[p] = standby  # only what others wrote since is read
                    start[p] = self._cl_end[p]
                else:
                    stores[p] = PartitionStore(p)
            if self._slow_restore:  # a huge changelog (tests only)
                await asyncio.sleep(SLOW_RESTORE_S)
            ends, read = await restore(
                self._restorer,
                self.cfg.changelog_topic,
                stores,
                self.app.load_state,
                start=start,
                on_bad_record=lambda p, off, err: log.error(
                    "bad changelog record skipped", partition=p, offset=off, error=str(err)
                ),
                should_stop=lambda: self._stop.is_set() or self._epoch != epoch,
            )
            async with self._lock:
                if self._epoch != epoch:
                    return  # a rebalance came first; the next assignment restores again
                self._cl_end.update(ends)
                tps = []
                for p in new:
                    tp = TopicPartition(self.cfg.input_topic, p)
                    committed = await self._consumer.committed(tp)
                    if committed is None:
                        await self._consumer.seek_to_beginning(tp)
                    else:
                        self._consumer.seek(tp, committed)
                    out, cl = buffers[p]
                    self._parts[p] = _Partition(tp, stores[p], committed or 0, out, cl)
                    tps.append(tp)
                self._consumer.resume(*tps)
                self._restoring_parts -= set(new)
                self.metrics.restores.inc(len(new))
                self.metrics.restore_records.inc(read)
                self.metrics.restore_seconds.observe(time.monotonic() - t0)
                self.stats["restored_records"] += read
                self._update_gauges()
                log.info(
                    "partitions assigned",
                    app=self.app.name,
                    partitions=sorted(self._parts),
                    restored=[p for p in new if p not in start],
                    incremental=sorted(start),
                    changelog_records=read,
                    restore_s=round(time.monotonic() - t0, 3),
                )
        except RestoreAborted:
            log.info("restore abandoned", partitions=new)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the process stops and the group gives the partitions away
            log.error("restore failed", partitions=new, error=f"{type(err).__name__}: {err}")
            self._fatal = err


_OVERSIZED = f"an output is over the {MAX_RECORD_BYTES}-byte record limit"


def _oversized(step: Step[Any]) -> bool:
    return not all(fits(o.key, o.value) for o in step.outputs)


def _unsettled(futs: list[asyncio.Future[Any]]) -> list[asyncio.Future[Any]]:
    """Drop confirmed futures; keep pending and failed ones (a failure surfaces at checkpoint)."""
    return [f for f in futs if not f.done() or f.exception() is not None]


def _out_headers(o: Output, trace: str | None) -> Headers:
    """The ``type``, ``schema_version`` and ``traceparent`` headers of an app's output."""
    tp = o.traceparent or trace
    if tp is None and o.key is not None:
        tp = call_traceparent(o.key.decode("utf-8", "replace"))
    if o.record_type is None:
        return [(TRACEPARENT, tp.encode())] if tp is not None else []
    return record_headers(o.record_type, o.schema_version, tp)
