"""The runtime: a consumer-group member that runs an :class:`~orchestrator.runtime.app.App` per key.

One asyncio task fetches batches and, holding ``_lock``, applies them, fires timers, produces
outputs and checkpoints. The rebalance callbacks take the same lock, so a revocation always sees
a quiet partition: drain, checkpoint, release (drain first, then fence: finished work is never
thrown away). Every checkpoint is, in this order:

1. take the produced-but-unconfirmed outputs, the committable offsets and the dirty states in one
   synchronous step (so the three agree);
2. wait until the broker confirmed the outputs;
3. write the states to the changelog and wait for the confirmation;
4. commit the input offsets.

Steps 2-4 run in a background task while processing goes on (one checkpoint in flight at a time,
so the changelog stays in order); revocation and shutdown wait for it and run a last one.

A crash anywhere replays from the last commit: a replayed record at or below a key's changelog
offset is skipped, and outputs that are produced again carry the same deterministic ids.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from contracts.envelopes import DeadLetter
from orchestrator.config import WORKER_COMMIT_BEFORE_PRODUCE, Settings
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.logs import get_logger
from orchestrator.runtime.app import App, Context, DecodeError, Step
from orchestrator.runtime.metrics import RuntimeMetrics
from orchestrator.runtime.output import OutputBuffer
from orchestrator.runtime.restore import RestoreAborted, restore
from orchestrator.runtime.store import Entry, PartitionStore, encode_changelog

S = TypeVar("S")
E = TypeVar("E")

__all__ = ["FatalError", "Runtime", "RuntimeConfig"]

log = get_logger("orchestrator.runtime")


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
    consumer_overrides: Mapping[str, Any] = field(default_factory=dict)
    producer_overrides: Mapping[str, Any] = field(default_factory=dict)


class _Partition(Generic[S]):
    __slots__ = ("committed", "done", "last", "p", "pending", "queues", "store", "tp")

    def __init__(self, tp: TopicPartition, store: PartitionStore[S], committed: int) -> None:
        self.tp = tp
        self.p = tp.partition
        self.store = store
        self.committed = committed  # the group's committed offset (next record to read)
        self.last = -1  # highest input offset taken (done or in flight)
        self.pending: deque[int] = deque()  # async: offsets in flight, ascending
        self.done: set[int] = set()  # async: completed offsets still in ``pending``
        self.queues: dict[str, deque[ConsumerRecord[bytes, bytes]]] = {}  # async: busy keys

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
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._epoch = 0
        self._parts: dict[int, _Partition[S]] = {}
        self._standby: dict[int, PartitionStore[S]] = {}
        self._cl_end: dict[int, int] = {}  # changelog end offset as we last knew it
        self._ctx = Context()
        self._futs: list[asyncio.Future[Any]] = []
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
        self._restoring = False
        self._started = False
        self._closing = False
        self._loop_at = time.monotonic()
        self._fatal: BaseException | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._restorer: AIOKafkaConsumer | None = None
        self._out: OutputBuffer | None = None
        self._cl: OutputBuffer | None = None
        self.stats = {"applied": 0, "skipped": 0, "dead_lettered": 0, "restored_records": 0}
        #: A deliberately broken variant (soak tests only): see ``orchestrator.config``.
        self._commit_before_produce = WORKER_COMMIT_BEFORE_PRODUCE in settings.orchestrator_fault

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        self._producer = make_producer(s, **dict(self.cfg.producer_overrides))
        await self._producer.start()
        self._out = OutputBuffer(self._producer)
        self._cl = OutputBuffer(self._producer)
        await self._out.prepare(self.cfg.dlq_topic, *self.cfg.output_topics)
        await self._cl.prepare(self.cfg.changelog_topic)
        self._restorer = make_consumer(
            s, group_id=None, fetch_max_wait_ms=50, max_partition_fetch_bytes=4 * 1024 * 1024
        )
        await self._restorer.start()
        self._consumer = make_consumer(
            s,
            group_id=self.cfg.group_id,
            max_poll_records=self.cfg.max_poll_records,
            **dict(self.cfg.consumer_overrides),
        )
        await self._consumer.start()
        self._consumer.subscribe([self.cfg.input_topic], listener=_Listener(self))
        self._started = True
        log.info(
            "runtime started",
            app=self.app.name,
            group=self.cfg.group_id,
            topic=self.cfg.input_topic,
            mode="async" if self._async else "inline",
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
        return not self._started or time.monotonic() - self._loop_at < 60 or self._restoring

    def ready(self) -> bool:
        return self._started and self._joined and not self._restoring and not self._stop.is_set()

    def detail(self) -> dict[str, Any]:
        return {
            "partitions": sorted(self._parts),
            "live_keys": sum(len(p.store) for p in self._parts.values()),
            "restoring": self._restoring,
            "stopping": self._stop.is_set(),
        }

    async def run(self) -> None:
        """Fetch and process until :meth:`request_stop`; raise :class:`FatalError` on lost output."""
        assert self._consumer is not None and self._out is not None
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
        assert self._out is not None
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
        if self._out.pending_records:
            self._futs += await self._out.submit(self._out.detach())
            if len(self._futs) > 512:
                self._prune_futures()
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
        if self._started:
            async with self._lock:
                await self._drain(list(self._parts.values()))
                try:
                    await asyncio.wait_for(self._checkpoint(), 10)
                except Exception as err:  # the replay after restart covers what was not committed
                    log.error("final checkpoint failed", error=str(err))
        for name, client in (
            ("consumer", self._consumer),
            ("producer", self._producer),
            ("restorer", self._restorer),
        ):
            if client is None:
                continue
            try:
                await asyncio.wait_for(client.stop(), 8)
            except Exception as err:
                log.warning("client stop failed", client=name, error=str(err))
        self._parts.clear()
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
        assert self._out is not None
        entries = part.store.entries
        dirty = part.store.dirty
        store = part.store
        app = self.app
        decode = app.decode
        apply = app.apply
        invalid = app.invalid_errors
        append = self._out.append
        ctx = self._ctx
        ctx.partition = part.p
        ctx.now = now
        ctx.idle_s = 0.0
        applied = skipped = 0
        for m in msgs:
            off = m.offset
            kb = m.key
            if kb is None:
                self._dead_letter(m, "missing_key", "record has no key")
                continue
            try:
                key = kb.decode()
            except UnicodeDecodeError as err:
                self._dead_letter(m, "undecodable", f"key: {err}")
                continue
            entry = entries.get(key)
            if entry is not None and off <= entry.offset:
                skipped += 1
                continue
            try:
                event = decode(kb, m.value)
            except DecodeError as err:
                self._dead_letter(m, "undecodable", str(err))
                continue
            except Exception as err:
                self._dead_letter(m, "undecodable", f"{type(err).__name__}: {err}")
                continue
            ctx.offset = off
            ctx.timestamp_ms = m.timestamp
            try:
                step: Step[S] = apply(key, entry.state if entry is not None else None, event, ctx)  # type: ignore[assignment]
            except invalid as err:
                self._dead_letter(m, "invalid_event", str(err))
                continue
            except Exception as err:
                self._dead_letter(m, "handler_error", f"{type(err).__name__}: {err}")
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
                append(o.topic, o.key, o.value, o.partition)
        part.last = msgs[-1].offset
        self.stats["applied"] += applied
        self.stats["skipped"] += skipped
        if applied:
            self.metrics.applied.inc(applied)
        if skipped:
            self.metrics.skipped.inc(skipped)

    def _apply_step(
        self,
        part: _Partition[S],
        key: str,
        step: Step[S],
        offset: int,
        now: float,
        *,
        touched: bool,
    ) -> None:
        """Store a step's state, timer, finished mark and outputs (used by all non-inline paths).

        A timer step that changed nothing (same state object, no outputs, same finished mark, a
        timer still set) is not written to the changelog: only its new due time would be, and the
        stored, earlier due time just makes the timer fire early once after a takeover.
        """
        assert self._out is not None
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
            self._out.append(o.topic, o.key, o.value, o.partition)

    # -- async apps: per-key order, concurrency across keys

    def _dispatch_async(
        self, part: _Partition[S], m: ConsumerRecord[bytes, bytes], now: float
    ) -> None:
        part.last = m.offset
        part.pending.append(m.offset)
        self._inflight += 1
        kb = m.key
        if kb is None:
            self._dead_letter(m, "missing_key", "record has no key")
            self._complete(part, m.offset)
            return
        try:
            key = kb.decode()
        except UnicodeDecodeError as err:
            self._dead_letter(m, "undecodable", f"key: {err}")
            self._complete(part, m.offset)
            return
        queue = part.queues.get(key)
        if queue is not None:
            queue.append(m)  # the key is busy: wait behind it, in order
            return
        part.queues[key] = deque()
        task = asyncio.create_task(self._run_key(part, key, m))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _complete(self, part: _Partition[S], offset: int) -> None:
        part.done.add(offset)
        self._inflight -= 1

    async def _run_key(
        self, part: _Partition[S], key: str, m: ConsumerRecord[bytes, bytes]
    ) -> None:
        while True:
            try:
                async with self._sem:
                    await self._apply_async(part, key, m)
            except Exception as err:  # pragma: no cover - _apply_async handles app errors
                self._fatal = err
            finally:
                self._complete(part, m.offset)
            queue = part.queues.get(key)
            if not queue:
                part.queues.pop(key, None)
                return
            m = queue.popleft()

    async def _apply_async(
        self, part: _Partition[S], key: str, m: ConsumerRecord[bytes, bytes]
    ) -> None:
        entry = part.store.entries.get(key)
        if entry is not None and m.offset <= entry.offset:
            self.stats["skipped"] += 1
            self.metrics.skipped.inc()
            return
        try:
            event = self.app.decode(m.key or b"", m.value)
        except Exception as err:
            self._dead_letter(
                m,
                "undecodable",
                str(err) if isinstance(err, DecodeError) else f"{type(err).__name__}: {err}",
            )
            return
        ctx = Context(partition=part.p, offset=m.offset, timestamp_ms=m.timestamp, now=time.time())
        if entry is not None:
            entry.busy = True
        try:
            result = self.app.apply(key, entry.state if entry is not None else None, event, ctx)
            step: Step[S] = await result if inspect.isawaitable(result) else result
        except self.app.invalid_errors as err:
            self._dead_letter(m, "invalid_event", str(err))
            return
        except Exception as err:
            self._dead_letter(m, "handler_error", f"{type(err).__name__}: {err}")
            return
        finally:
            if entry is not None:
                entry.busy = False
        self._apply_step(part, key, step, m.offset, time.time(), touched=True)
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
            for key in store.due_keys(now):
                entry = store.entries[key]
                if key in part.queues:  # async work in flight: try again next tick
                    store.schedule(key, entry, now + self.cfg.tick_s)
                    continue
                entry.due = None
                ctx.idle_s = max(0.0, now - entry.touched)
                try:
                    step = self.app.on_timer(key, entry.state, ctx)
                except Exception as err:
                    log.error("timer failed", key=key, error=f"{type(err).__name__}: {err}")
                    continue
                fired += 1
                self._apply_step(part, key, step, -1, now, touched=False)
        if fired:
            self.metrics.timers.inc(fired)

    def _punctuate(self, now: float) -> None:
        assert self._out is not None
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
                self._out.append(o.topic, o.key, o.value, o.partition)

    def _evict(self, now: float) -> None:
        n = 0
        for part in self._parts.values():
            for key in part.store.expired(now, self.cfg.retention_s, part.committed):
                part.store.evict(key)
                n += 1
        if n:
            self.metrics.evictions.inc(n)

    # -- dead letters

    def _dead_letter(self, m: ConsumerRecord[bytes, bytes], reason: str, error: str | None) -> None:
        assert self._out is not None
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
        self._out.append(self.cfg.dlq_topic, m.key, letter.to_bytes())
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

    def _prune_futures(self) -> None:
        keep: list[asyncio.Future[Any]] = []
        for fut in self._futs:
            if not fut.done():
                keep.append(fut)
            elif fut.exception() is not None:
                keep.append(fut)  # surfaces in the next checkpoint
        self._futs = keep

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

    async def _start_checkpoint(self) -> None:
        """Snapshot now; confirm and commit in the background (lock held, none in flight).

        1. One synchronous snapshot of what belongs together: the output batches, the committable
           offsets and the dirty states (encoded now, so later changes wait for the next one).
        2. The snapshot's output batches are handed to the producer here, in the main task, so
           they keep their order with the outputs the main task submits afterwards.
        3. In the background (processing goes on): outputs confirmed -> changelog written and
           confirmed -> input offsets committed. One checkpoint is in flight at a time, which
           keeps the changelog in order.
        """
        assert self._out is not None and self._cl is not None
        batches = self._out.detach()
        futs, self._futs = self._futs, []
        commits: dict[TopicPartition, int] = {}
        dump = self.app.dump_state
        cl_count = 0
        for part in self._parts.values():
            c = part.committable()
            if c is not None and c > part.committed:
                commits[part.tp] = c
            store = part.store
            if store.dirty:
                dirty, store.dirty = store.dirty, set()
                entries = store.entries
                for key in dirty:
                    e = entries.get(key)
                    value = None
                    if e is not None:
                        value = encode_changelog(e, dump(e.state))
                        e.saved_due = e.due
                    self._cl.append(self.cfg.changelog_topic, key.encode(), value, part.p)
                    cl_count += 1
        cl_batches = self._cl.detach()
        self._since_ckpt = 0
        self._last_ckpt = time.monotonic()
        if commits and self._commit_before_produce:  # soak tests only
            assert self._consumer is not None
            await self._consumer.commit(commits)
            for tp, c in commits.items():
                self._parts[tp.partition].committed = c
            commits = {}
            await asyncio.sleep(1.0)
        try:
            futs += await self._out.submit(batches)
        except Exception as err:
            self._fatal = err
            raise FatalError(f"outputs not accepted: {type(err).__name__}: {err}") from err
        self._ckpt_task = asyncio.create_task(
            self._finish_checkpoint(futs, cl_batches, cl_count, commits)
        )

    async def _finish_checkpoint(
        self,
        futs: list[asyncio.Future[Any]],
        cl_batches: list[tuple[tuple[str, int], Any]],
        cl_count: int,
        commits: dict[TopicPartition, int],
    ) -> None:
        assert self._cl is not None and self._consumer is not None
        t0 = time.monotonic()
        try:
            # Outputs confirmed by the broker.
            if futs:
                await asyncio.gather(*futs)
            # Changelog confirmed.
            if cl_batches:
                counts = [(tp[1], b.record_count()) for tp, b in cl_batches if b.record_count()]
                cl_futs = await self._cl.submit(cl_batches)
                mds = await asyncio.gather(*cl_futs)
                for (p, count), md in zip(counts, mds, strict=True):
                    self._cl_end[p] = max(self._cl_end.get(p, 0), md.offset + count)
        except Exception as err:
            self._fatal = err
            raise FatalError(
                f"outputs or changelog not confirmed: {type(err).__name__}: {err}"
            ) from err
        self.metrics.changelog_records.inc(cl_count)
        # Then, and only then, the input offsets.
        if commits:
            try:
                await self._consumer.commit(commits)
            except (CommitFailedError, IllegalStateError) as err:
                self.metrics.commit_failures.inc()
                log.info("commit refused (rebalance); the next owner replays", error=str(err))
            else:
                for tp, c in commits.items():
                    owned = self._parts.get(tp.partition)
                    if owned is not None:
                        owned.committed = max(owned.committed, c)
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
        for buf in (self._out, self._cl):
            if buf is not None and buf.submitted:
                for name, n in buf.submitted.items():
                    self.metrics.output(name, n)
                buf.submitted.clear()
        self.metrics.partitions.set(len(self._parts))

    # ------------------------------------------------------------------ rebalance

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.metrics.rebalance("revoked")
        async with self._lock:
            self._epoch += 1
            parts = [self._parts[tp.partition] for tp in revoked if tp.partition in self._parts]
            if not parts:
                return
            await self._drain(parts)
            try:
                await self._checkpoint()
            except FatalError:
                raise
            except Exception as err:
                log.warning("checkpoint on revoke failed", error=str(err))
            for part in parts:
                del self._parts[part.p]
                # Keep the store: if the partition comes straight back, only what another owner
                # wrote to the changelog since our last write is read (usually nothing).
                self._standby[part.p] = part.store
                self.metrics.drop_lag(part.p)
            self._update_gauges()
            log.info("partitions revoked", app=self.app.name, partitions=sorted(p.p for p in parts))

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.metrics.rebalance("assigned")
        assert self._consumer is not None and self._restorer is not None
        async with self._lock:
            self._epoch += 1
            mine = sorted(tp.partition for tp in assigned if tp.topic == self.cfg.input_topic)
            new = [p for p in mine if p not in self._parts]
            self._restoring = True
            try:
                t0 = time.monotonic()
                stores: dict[int, PartitionStore[S]] = {}
                start: dict[int, int] = {}
                for p in new:
                    standby = self._standby.get(p)
                    if standby is not None and p in self._cl_end:
                        stores[p] = standby  # only what others wrote since is read
                        start[p] = self._cl_end[p]
                    else:
                        stores[p] = PartitionStore(p)
                self._standby.clear()
                ends_r, read = await restore(
                    self._restorer,
                    self.cfg.changelog_topic,
                    stores,
                    self.app.load_state,
                    start=start,
                    on_bad_record=lambda p, off, err: log.error(
                        "bad changelog record skipped", partition=p, offset=off, error=str(err)
                    ),
                    should_stop=self._stop.is_set,
                )
                self._cl_end.update(ends_r)
                for p in new:
                    tp = TopicPartition(self.cfg.input_topic, p)
                    committed = await self._consumer.committed(tp)
                    self._parts[p] = _Partition(
                        tp, stores[p], committed if committed is not None else 0
                    )
                to_restore = [p for p in new if p not in start]
                if new:
                    self.metrics.restores.inc(len(new))
                    self.metrics.restore_records.inc(read)
                    self.metrics.restore_seconds.observe(time.monotonic() - t0)
                    self.stats["restored_records"] += read
                self._joined = True
                self._update_gauges()
                log.info(
                    "partitions assigned",
                    app=self.app.name,
                    partitions=mine,
                    restored=to_restore,
                    incremental=sorted(start),
                    changelog_records=read,
                    restore_s=round(time.monotonic() - t0, 3),
                )
            except RestoreAborted:
                log.info("restore abandoned: stopping", partitions=mine)
            finally:
                self._restoring = False
