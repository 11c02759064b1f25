"""The dispatcher role: consume ``voice.commands``, execute, produce results, commit safely.

Scheduling. Records are grouped by *ordering key* = (partition, flow key) and each key has one
task working through its own FIFO queue, so one call's commands run in Kafka order while
different calls run concurrently: a call that is backing off for 30 s, or whose dial is being
resolved, delays nothing but itself. Create-call commands share one Kafka key per account (design
item 3) but each has its own flow key, so they never wait for each other here; the CPS limiter is
what orders them.

Offsets. Per partition, the offsets accepted and not yet finished are tracked; the committed
offset is the lowest unfinished one (or one past the highest seen), so a commit never passes
work that is not done. Before each commit the producer is flushed: every result and dead letter
of a finished command is durable before its offset is. A crash therefore redelivers at most the
uncommitted tail, which is safe: creates go through the dial ledger, other requests are
idempotent updates on the call (hangup twice is still hung up), and results carry deterministic
ids that consumers deduplicate.

Revoke and SIGTERM. The partitions' work is told to stop at its next safe point (while waiting for
a slot, a backoff or a resolution bound; never while a request is in flight); what finished is
committed; the rest is redelivered to the next owner. SIGTERM does the same for every partition,
then leaves the group, within ``drain_timeout`` seconds.

Why not the generic keyed runtime (``orchestrator.runtime``)? Its contract does not fit, in
three places: it orders by *Kafka key*, and every create of an account shares one Kafka key
(``acct:{account}``, design item 3), so one create backing off for a minute would hold every other
create of the account; on revoke it *drains* in-flight work to completion, while a dispatcher
command may legitimately wait minutes (a backlog behind the CPS limiter, a create deadline of
180 s), which would stall the whole group's rebalance; and it restores a per-key state store,
while the dispatcher is stateless except for the dial ledger, which is keyed by command id and
placed by partition. So this module keeps its own small scheduler (ordering key = partition and
flow key, cooperative aborts at safe points) and uses the runtime's pieces where they fit: its
health server (``/healthz``, ``/readyz``, ``/metrics``), and the shared Kafka clients
(``orchestrator.kafka.clients``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import KafkaError
from cryptography.exceptions import UnsupportedAlgorithm
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from contracts.envelopes import (
    CommandEnvelope,
    CommandResult,
    DeadLetter,
)
from contracts.topics import (
    DISPATCH_LEDGER,
    REPLY_TOPICS,
    TOPICS_BY_NAME,
    VOICE_COMMANDS,
    VOICE_DLQ,
    VOICE_EVENTS,
    topic_name,
)
from orchestrator.clock import utc_now
from orchestrator.config import DISPATCHER_RESEND_ON_TIMEOUT, ConfigError, Settings
from orchestrator.dispatcher.auth import JwtMinter, basic_auth_header
from orchestrator.dispatcher.budgets import Budgets
from orchestrator.dispatcher.client import RegionRouting, VonageClient
from orchestrator.dispatcher.executor import (
    Draining,
    Executor,
    ResolvePolicy,
    Work,
    interruptible,
)
from orchestrator.dispatcher.ledger import DialLedger
from orchestrator.dispatcher.metrics import DispatcherMetrics
from orchestrator.dispatcher.txn import Fenced, PartitionTxn, TxnFailed
from orchestrator.kafka.clients import group_name, make_consumer
from orchestrator.kafka.headers import record_headers, traceparent_of
from orchestrator.kafka.membership import generation_lost, request_rejoin
from orchestrator.kafka.reading import partitions_of
from orchestrator.logs import get_logger
from orchestrator.runtime.health import HealthServer
from orchestrator.runtime.shutdown import cancel_and_wait
from orchestrator.tracing import call_traceparent, record_trace, tracing_for

log = get_logger("orchestrator.dispatcher")

GROUP_ID = "voice-dispatcher"
#: Remember this many final results, to answer a duplicate command without a second request.
_RESULT_MEMORY = 20_000


@dataclass
class _Partition:
    number: int
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    inflight: set[int] = field(default_factory=set)
    next_offset: int | None = None
    committed: int | None = None

    def committable(self) -> int | None:
        if self.inflight:
            return min(self.inflight)
        return self.next_offset


@dataclass
class DispatcherOptions:
    cps: float | None = None
    rps: float | None = None
    health_host: str = "0.0.0.0"
    health_port: int | None = 9101
    drain_timeout: float = 20.0
    revoke_timeout: float = 10.0
    commit_interval: float = 0.5
    max_inflight: int = 20_000
    region_routing: RegionRouting = "direct"
    resolve: ResolvePolicy = field(default_factory=ResolvePolicy)
    seed: int | None = None


#: Every call the dispatcher places is signed with the application's key: without these it
#: can do nothing useful, and API key/secret (Application API only) do not make up for them.
DISPATCHER_NEEDS = ("vonage_application_id", "vonage_private_key")


def build_client(settings: Settings, routing: RegionRouting = "direct") -> VonageClient:
    """The Vonage client from settings; fails with one line naming what is missing or unusable."""
    settings.require(*DISPATCHER_NEEDS, role="the dispatcher")
    assert settings.vonage_application_id is not None
    try:
        jwt = JwtMinter(settings.vonage_application_id, settings.private_key_pem())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            "VONAGE_PRIVATE_KEY: not a usable PEM private key (value not shown)"
        ) from None
    basic = None
    if settings.vonage_api_key and settings.vonage_api_secret is not None:
        basic = basic_auth_header(
            settings.vonage_api_key, settings.vonage_api_secret.get_secret_value()
        )
    return VonageClient(settings.api_base, jwt=jwt, basic=basic, region_routing=routing)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: DispatcherService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._service._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._service._on_assigned(assigned)


class DispatcherService:
    def __init__(
        self,
        settings: Settings,
        options: DispatcherOptions | None = None,
        *,
        client: VonageClient | None = None,
        metrics: DispatcherMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.opts = options or DispatcherOptions()
        prefix = settings.topic_prefix
        self.commands_topic = topic_name(VOICE_COMMANDS, prefix)
        self.events_topic = topic_name(VOICE_EVENTS, prefix)
        self.dlq_topic = topic_name(VOICE_DLQ, prefix)
        self.ledger_topic = topic_name(DISPATCH_LEDGER, prefix)
        #: A command's ``reply_to`` names one of these; its result goes there too.
        self.reply_topics = {
            name: topic_name(TOPICS_BY_NAME[name], prefix) for name in REPLY_TOPICS
        }
        self.metrics = metrics or DispatcherMetrics()
        self._tracing = tracing_for("dispatcher")
        self.client = client or build_client(settings, self.opts.region_routing)
        self.budgets = Budgets(
            self.opts.cps if self.opts.cps is not None else settings.vonage_cps,
            self.opts.rps if self.opts.rps is not None else settings.vonage_rps,
        )
        self._parts: dict[int, _Partition] = {}
        self._queues: dict[tuple[int, str], deque[Work]] = {}
        self._tasks: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._inflight = 0
        self._finals: OrderedDict[str, CommandResult] = OrderedDict()
        self._commit_lock = asyncio.Lock()
        self._txns: dict[int, PartitionTxn] = {}
        self._taking_over: asyncio.Task[None] | None = None
        self._round = 0  # assignment rounds: a take-over only registers within its own
        self._consumer: AIOKafkaConsumer | None = None
        self._ledger: DialLedger | None = None
        self._executor: Executor | None = None
        self._health: HealthServer | None = None
        self._stop = asyncio.Event()
        self._ready = False
        self._fatal: BaseException | None = None
        self._paused = False
        self._total_partitions = 0
        self.health_port: int | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the service to drain and exit (SIGTERM handler)."""
        self._stop.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; re-raises a fatal error after a clean shutdown."""
        probe = make_consumer(self.settings, group_id=None)
        await probe.start()
        try:
            ledger_parts = await partitions_of(probe, self.ledger_topic)
            command_parts = await partitions_of(probe, self.commands_topic)
        finally:
            await probe.stop()
        try:
            if not ledger_parts or not command_parts:
                raise ConfigError(f"topics missing: {self.ledger_topic}, {self.commands_topic}")
            self._total_partitions = len(command_parts)
            max_age = timedelta(seconds=self.settings.dispatcher_max_command_age_s)
            self._ledger = DialLedger(
                self._txn, self.ledger_topic, len(ledger_parts), keep_for=max_age
            )
            self._executor = Executor(
                self.client,
                self.budgets,
                self._ledger,
                self,
                self.metrics,
                resolve=self.opts.resolve,
                rng=random.Random(self.opts.seed),
                max_age=max_age,
                resend_on_timeout=DISPATCHER_RESEND_ON_TIMEOUT in self.settings.orchestrator_fault,
            )
            if self.opts.health_port is not None:
                self._health = HealthServer(
                    self.metrics.registry,
                    alive=self._alive,
                    ready=lambda: self._ready,
                    detail=lambda: {"partitions": sorted(self._parts)},
                    host=self.opts.health_host,
                    port=self.opts.health_port,
                )
                await self._health.start()
                self.health_port = self._health.port
            consumer = make_consumer(
                self.settings,
                group_id=GROUP_ID,
                auto_offset_reset=self.settings.dispatcher_offset_reset,
                partition_assignment_strategy=(StickyPartitionAssignor,),
                # A revocation waits up to revoke_timeout for commands to reach a safe point.
                rebalance_timeout_ms=max(
                    self.settings.kafka_session_timeout_ms,
                    int(self.opts.revoke_timeout * 1000) + 15_000,
                ),
            )
            consumer.subscribe([self.commands_topic], listener=_Listener(self))
            await consumer.start()
            self._consumer = consumer
            log.info(
                "dispatcher started",
                commands=self.commands_topic,
                cps=self.budgets.cps,
                rps=self.budgets.rps,
                api=self.client.api_base,
                health_port=self.health_port,
            )
            background = [
                asyncio.create_task(self._commit_loop()),
                asyncio.create_task(self._gauge_loop()),
            ]
            try:
                await self._fetch_loop(consumer)
            finally:
                self._ready = False
                await self._shutdown(consumer)
                for t in background:
                    t.cancel()
                await asyncio.gather(*background, return_exceptions=True)
        finally:
            # Side by side: each stop may take its 8 s (a fenced producer).
            await asyncio.gather(*(txn.stop() for txn in list(self._txns.values())))
            self._txns.clear()
            await self.client.aclose()
            await self.budgets.aclose()
            if self._health is not None:
                await self._health.stop()
        if self._fatal is not None:
            raise self._fatal

    def _alive(self) -> bool:
        return self._fatal is None

    async def _fetch_loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stop.is_set():
            self._backpressure(consumer)
            try:
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            except KafkaError as err:
                log.warning("fetch failed", error=str(err))
                await asyncio.sleep(0.5)
                continue
            self._ready = True
            for tp, records in batch.items():
                part = self._parts.get(tp.partition)
                if part is None or tp.topic != self.commands_topic:
                    # Not (or not yet) ours: a partition whose ledger is still being restored
                    # must not lose these records, so fetch them again later.
                    if records and tp in consumer.assignment():
                        consumer.seek(tp, records[0].offset)
                    continue
                for rec in records:
                    await self._accept(part, rec)

    def _backpressure(self, consumer: AIOKafkaConsumer) -> None:
        limit = self.opts.max_inflight
        if not self._paused and self._inflight >= limit:
            consumer.pause(*consumer.assignment())
            self._paused = True
        elif self._paused and self._inflight < limit // 2:
            consumer.resume(*consumer.assignment())
            self._paused = False

    async def _shutdown(self, consumer: AIOKafkaConsumer) -> None:
        log.info("dispatcher draining", inflight=self._inflight)
        if self._taking_over is not None:  # a take-over reads ledgers inside aiokafka
            await cancel_and_wait(self._taking_over, what="dispatcher take-over")
        for part in self._parts.values():
            part.abort.set()
        await self._wait_tasks(list(self._tasks.values()), self.opts.drain_timeout)
        await self._commit()
        with contextlib.suppress(Exception):
            await consumer.stop()  # leaves the group (unless static membership keeps the slot)
        log.info("dispatcher stopped")

    # --- accepting records ------------------------------------------------------------------

    async def _accept(self, part: _Partition, rec: Any) -> None:
        part.inflight.add(rec.offset)
        part.next_offset = rec.offset + 1
        self._inflight += 1
        value: bytes = rec.value or b""
        try:
            cmd = CommandEnvelope.model_validate_json(value)
        except ValidationError as err:
            assert self._executor is not None
            letter = DeadLetter(
                id=DeadLetter.make_id(self.commands_topic, part.number, rec.offset),
                occurred_at=utc_now(),
                reason="undecodable_command",
                error=str(err)[:2000],
                source_topic=self.commands_topic,
                partition=part.number,
                offset=rec.offset,
                key_b64=_b64(rec.key),
                value_b64=_b64(value),
                role="dispatcher",
            )
            self.metrics.dead_letters.labels("undecodable_command").inc()
            await self.dead_letter(letter, traceparent_of(rec.headers))
            self._finish(part.number, rec.offset)
            return
        work = Work(
            cmd=cmd,
            topic=self.commands_topic,
            partition=part.number,
            offset=rec.offset,
            key=rec.key,
            value=value,
            abort=part.abort,
            written_at=rec.timestamp / 1000 if rec.timestamp and rec.timestamp > 0 else None,
            trace=record_trace(rec.headers, cmd.flow_key),
        )
        key = (part.number, cmd.flow_key)
        queue = self._queues.get(key)
        if queue is None:
            queue = deque()
            self._queues[key] = queue
            self._tasks[key] = asyncio.create_task(self._run_key(key, queue))
        queue.append(work)

    def _finish(self, partition: int, offset: int) -> None:
        self._inflight -= 1
        part = self._parts.get(partition)
        if part is not None:
            part.inflight.discard(offset)

    async def _run_key(self, key: tuple[int, str], queue: deque[Work]) -> None:
        try:
            while queue:
                work = queue[0]
                if work.abort.is_set():
                    break
                try:
                    await self._execute(work)
                except Draining:
                    break
                queue.popleft()
                self._finish(work.partition, work.offset)
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]
                self._tasks.pop(key, None)
            # Aborted items stay unfinished in their partition (their offsets are not committed,
            # so they come back), but no longer count as queued here.
            self._inflight -= len(queue)

    async def _execute(self, work: Work) -> None:
        assert self._executor is not None
        done = self._finals.get(work.cmd.id)
        if done is not None:
            # A duplicate of a command this process already finished: same answer, no request.
            await self.result(work, done, final=True)
            return
        err: BaseException | None = None
        for attempt in range(3):
            try:
                with self._tracing.span(
                    f"dispatcher {work.cmd.kind}",
                    work.trace or call_traceparent(work.cmd.flow_key),
                    kind=SpanKind.CLIENT,
                    attributes={
                        "voice.command_id": work.cmd.id,
                        "voice.flow_key": work.cmd.flow_key,
                        "voice.command_kind": str(work.cmd.kind),
                    },
                ) as work.trace:
                    await self._executor.execute(work)
                return
            except (Draining, asyncio.CancelledError):
                raise
            except Fenced as fenced:
                self._fenced(fenced.partition)
                raise Draining from fenced
            except TxnFailed as failed:  # the producer is unusable: stop, and replay on restart
                self._fatal = failed
                self._stop.set()
                raise Draining from failed
            except Exception as exc:
                err = exc
                log.exception("command failed internally", command_id=work.cmd.id, try_=attempt)
                await _interruptible_sleep(work, 2.0**attempt)
        assert err is not None
        try:
            await self._executor.internal_failure(work, err)
        except Exception as fatal:
            self._fatal = fatal
            self._stop.set()
            raise Draining from fatal

    # --- Sink (results, dead letters) -------------------------------------------------------

    def _txn(self, partition: int) -> PartitionTxn:
        txn = self._txns.get(partition)
        if txn is None:
            raise Fenced(partition)  # not (any more) ours
        return txn

    async def result(self, work: Work, result: CommandResult, *, final: bool) -> None:
        """To the call's flow on ``voice.events``, and straight home when the command asked."""
        txn = self._txn(work.partition)
        value = result.to_bytes()
        headers = record_headers("CommandResult", result.schema_version, work.trace)
        await txn.send(self.events_topic, value, result.flow_key.encode(), headers=headers)
        reply = work.cmd.reply_to
        if reply is not None:
            await txn.send(
                self.reply_topics[reply.topic], value, reply.key.encode(), headers=headers
            )
        if final:
            self._finals[result.command_id] = result
            while len(self._finals) > _RESULT_MEMORY:
                self._finals.popitem(last=False)

    async def dead_letter(self, letter: DeadLetter, trace: str | None = None) -> None:
        key = base64.b64decode(letter.key_b64) if letter.key_b64 else None
        headers = record_headers("DeadLetter", letter.schema_version, trace)
        await self._txn(letter.partition).send(
            self.dlq_topic, letter.to_bytes(), key, headers=headers
        )

    # --- commits -----------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.opts.commit_interval)
            try:
                await self._commit()
            except Exception as err:  # a failed commit is retried at the next tick
                log.warning("commit failed", error=str(err))

    async def _commit(self, partitions: set[int] | None = None) -> None:
        """Commit each partition's transaction: its results, ledger entries and dead letters
        with the offset below which every command is finished (never past a lost write: a
        transaction commits all of its records or none)."""
        if self._consumer is None:
            return
        async with self._commit_lock:
            now = utc_now()
            for number, part in list(self._parts.items()):
                if partitions is not None and number not in partitions:
                    continue
                txn = self._txns.get(number)
                if txn is None:
                    continue
                target = part.committable()
                offset = target if target is not None and target != part.committed else None
                try:
                    await txn.commit(offset)
                except Fenced:
                    self._fenced(number)
                    continue
                except TxnFailed as err:
                    self._fatal = err
                    self._stop.set()
                    raise
                if offset is not None:
                    part.committed = offset
                    log.debug("committed", partition=number, offset=offset)
                    if self._ledger is not None:
                        await self._ledger.compact(number, offset, now)

    def _fenced(self, number: int) -> None:
        """Another replica initialised this partition's transactional id: it owns it now. Its
        commands stop at their next safe point; nothing more is written for it."""
        part = self._parts.get(number)
        if part is None or part.abort.is_set():
            return
        self.metrics.fenced.inc()
        log.warning("command partition fenced by another replica; giving it up", partition=number)
        part.abort.set()
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.pause(TopicPartition(self.commands_topic, number))
            # The fence may come from a replica that is itself stale: a new assignment settles
            # who owns it (given back, it is claimed afresh). Otherwise it could stay paused here.
            request_rejoin(self._consumer)

    def _generation_lost(self) -> bool:
        return generation_lost(self._consumer)

    # --- rebalance -----------------------------------------------------------------------------

    async def _release(self, numbers: set[int]) -> None:
        for n in numbers:
            self._parts.pop(n, None)
            txn = self._txns.pop(n, None)
            if txn is not None:
                await txn.stop()
        if self._ledger is not None:
            self._ledger.forget_partitions(numbers)

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        numbers = {tp.partition for tp in revoked if tp.topic == self.commands_topic}
        self._round += 1  # a take-over still in flight is for partitions revoked now
        if self._taking_over is not None:
            # Bounded like every stop: a take-over reads ledgers inside aiokafka, which has
            # swallowed a cancel before. One left behind registers nothing (its round is over).
            await cancel_and_wait(self._taking_over, what="dispatcher take-over on revoke")
            self._taking_over = None
        if not numbers:
            return
        lost = self._generation_lost()
        log.info("partitions revoked", partitions=sorted(numbers), lost=lost)
        for n in numbers:
            if n in self._parts:
                self._parts[n].abort.set()
        tasks = [t for (p, _), t in self._tasks.items() if p in numbers]
        await self._wait_tasks(tasks, self.opts.revoke_timeout)
        if lost:
            # Expelled: another replica may own these partitions already; its ledger is the
            # truth now. Nothing is committed (the open transactions are abandoned and the new
            # owner's initialisation aborts them).
            log.warning("partitions lost (expelled); nothing committed", partitions=sorted(numbers))
        else:
            try:
                await self._commit(numbers)
            except Exception as err:
                log.warning("commit on revoke failed", error=str(err))
        await self._release(numbers)

    async def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        """Pause the new partitions and take them over in a task (never restore inside this
        callback: aiokafka does not heartbeat while it runs)."""
        consumer = self._consumer
        numbers = sorted(tp.partition for tp in assigned if tp.topic == self.commands_topic)
        new = [n for n in numbers if n not in self._parts]
        if consumer is not None and new:
            consumer.pause(*[TopicPartition(self.commands_topic, n) for n in new])
        if new:
            self._taking_over = asyncio.create_task(self._take_over(new, self._round))
        self._set_share()

    async def _take_over(self, new: list[int], round_: int) -> None:
        """Fence the previous owner, load the partitions' dial ledger, then let their commands
        run: no command of a partition may run before its ledger is loaded."""
        consumer = self._consumer
        txns: list[PartitionTxn] = []

        def current() -> bool:
            return round_ == self._round  # else revoked meanwhile, and this task left behind

        try:
            txns += [
                PartitionTxn(
                    self.settings, group_name(self.settings, GROUP_ID), self.commands_topic, n
                )
                for n in new
            ]
            await asyncio.gather(*(t.start() for t in txns))
            if self._ledger is not None:
                loaded = await self._ledger.restore(self.settings, new, current=current)
                log.info("ledger restored", partitions=new, entries=loaded)
            if not current():
                raise asyncio.CancelledError
            for t in txns:
                self._txns[t.partition] = t
            for n in new:
                self._parts[n] = _Partition(n)
            if consumer is not None:
                tps = [TopicPartition(self.commands_topic, n) for n in new]
                for tp in tps:
                    committed = await consumer.committed(tp)
                    if committed is not None:
                        consumer.seek(tp, committed)
                if not self._paused:
                    consumer.resume(*tps)
            self._set_share()
            if new:
                self.budgets.took_over()
            log.info(
                "partitions assigned", partitions=sorted(self._parts), share=self.budgets.share
            )
        except asyncio.CancelledError:
            for t in txns:
                if self._txns.get(t.partition) is t:
                    del self._txns[t.partition]
            await asyncio.gather(*(t.stop() for t in txns), return_exceptions=True)
            raise
        except Exception as err:
            log.error("take-over failed", partitions=new, error=f"{type(err).__name__}: {err}")
            self._fatal = err
            self._stop.set()

    def _set_share(self) -> None:
        consumer = self._consumer
        total = 0
        if consumer is not None:
            total = len(consumer.partitions_for_topic(self.commands_topic) or ())
        total = max(total, self._total_partitions, len(self._parts))
        self.budgets.set_share(len(self._parts), total)

    async def _wait_tasks(self, tasks: list[asyncio.Task[None]], limit: float) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=limit)
        for t in pending:
            t.cancel()
        if pending:
            log.warning("cancelled unfinished commands", count=len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    # --- gauges --------------------------------------------------------------------------------

    async def _gauge_loop(self) -> None:
        while True:
            self.update_gauges()
            await asyncio.sleep(1.0)

    def update_gauges(self) -> None:
        m = self.metrics
        m.queue_depth.set(self._inflight)
        for budget in self.budgets.accounts():
            for name, lim in budget.limiters():
                m.rate.labels(budget.account, name).set(lim.rate)
                m.ceiling.labels(budget.account, name).set(lim.ceiling())
                m.sent_rate.labels(budget.account, name).set(lim.log.recent(lim.now()))
                m.limiter_waiting.labels(budget.account, name).set(lim.waiting)


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None


async def _interruptible_sleep(work: Work, seconds: float) -> None:
    await interruptible(work, asyncio.sleep(seconds))
