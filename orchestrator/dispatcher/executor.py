"""One command, start to final result: rate limit, send, classify, retry, dial ledger, resolution.

Everything here runs inside the task of one ordering key (see ``service``), so sleeping through a
backoff or an unresolved dial delays only that call's later commands, never anybody else's.
Results go to a :class:`Sink` (the service produces them on ``voice.events``); the sink is told
about dead letters too. A result always follows its ledger record, never precedes it: after a
crash between the two, the redelivered command finds the final ledger entry and re-emits the same
result (same deterministic id), instead of a different one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from contracts.envelopes import (
    CommandEnvelope,
    CommandKind,
    CommandResult,
    CommandStatus,
    DeadLetter,
    stable_id,
)
from orchestrator.clock import utc_now
from orchestrator.dispatcher.budgets import Budgets
from orchestrator.dispatcher.client import (
    ApiRequest,
    HttpOutcome,
    InvalidCommand,
    VonageClient,
    build_request,
)
from orchestrator.dispatcher.ledger import (
    UNRESOLVED_STATES,
    DialLedger,
    LedgerEntry,
    LedgerState,
    destination,
    match_created_call,
)
from orchestrator.dispatcher.limiter import Permit, RateLimiter
from orchestrator.dispatcher.listing import CallLister
from orchestrator.dispatcher.metrics import DispatcherMetrics
from orchestrator.dispatcher.retry import Action, Attempt, Backoff, classify, exhausted
from orchestrator.logs import get_logger

log = get_logger("orchestrator.dispatcher")

#: Remember creation times of this many calls (for Vonage's "too early" 400 on updates).
_CREATED_MEMORY = 50_000


class Draining(Exception):
    """The command's partition is being given up (revoke or shutdown): stop at this safe point.

    Raised only while waiting (for a rate-limit slot, a backoff, a resolution bound), never while
    a request is in flight, so an aborted command is simply redelivered to the next owner.
    """


@dataclass
class Work:
    """A command taken from ``voice.commands``, with where it came from."""

    cmd: CommandEnvelope
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    received: float = field(default_factory=time.monotonic)
    #: When the command was written to the topic (the record's timestamp; Unix seconds): its age
    #: on the topic, whatever clock its producer's business logic runs on.
    written_at: float | None = None
    #: Set when the partition is revoked or the process stops.
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    #: The trace context of what this command writes (its record's, then its span's).
    trace: str | None = None


T = TypeVar("T")


async def interruptible(work: Work, aw: Awaitable[T]) -> T:
    """Await ``aw`` unless ``work.abort`` is set first (then :class:`Draining`)."""
    task = asyncio.ensure_future(aw)
    if work.abort.is_set():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Draining
    stopper = asyncio.ensure_future(work.abort.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise Draining


class Sink(Protocol):
    async def result(self, work: Work, result: CommandResult, *, final: bool) -> None: ...

    async def dead_letter(self, letter: DeadLetter, trace: str | None = None) -> None: ...


@dataclass(frozen=True)
class ResolvePolicy:
    #: Wait this long after an ambiguous create before listing calls (Vonage needs time to list it;
    #: and a paused former owner may send up to SEND_WINDOW after its "sending" entry).
    after: float = 10.0
    #: Give up listing (final failed result + DLQ) this long after the attempt.
    deadline: float = 300.0
    #: Clock skew allowed between us and Vonage when windowing the listing.
    skew: float = 10.0
    page_size: int = 100


#: The longest a create may wait between its committed "sending" entry and its request (s). A
#: process paused in between (GC, SIGSTOP, a partitioned network) finds more time gone when it
#: wakes, and does not send: the partition's new owner may already be resolving that entry, and
#: only sends made within this window are sure to fall inside the window it lists. The check
#: runs right before the request, with nothing awaited in between.
SEND_WINDOW = 2.0


async def _drop(waiting: asyncio.Future[Permit]) -> None:
    """Stop waiting for a permit; one granted meanwhile is handed back unused."""
    waiting.cancel()
    with contextlib.suppress(BaseException):
        permit = await waiting
        permit.cancel()


def _marks(out: HttpOutcome | None) -> tuple[float | None, float | None]:
    return (None, None) if out is None else (out.sent_at, out.answered_at)


def unknown_result_id(command_id: str) -> str:
    """The id of the (non-final) ``unknown`` result; distinct from the final one."""
    return stable_id("res", command_id, "unknown")


class Executor:
    def __init__(
        self,
        client: VonageClient,
        budgets: Budgets,
        ledger: DialLedger | None,
        sink: Sink,
        metrics: DispatcherMetrics,
        *,
        backoff: Backoff | None = None,
        resolve: ResolvePolicy | None = None,
        rng: random.Random | None = None,
        max_age: timedelta | None = None,
        resend_on_timeout: bool = False,
    ) -> None:
        self.max_age = max_age
        self.client = client
        self.budgets = budgets
        self.ledger = ledger
        self.sink = sink
        self.metrics = metrics
        self.backoff = backoff or Backoff()
        self.resolve_policy = resolve or ResolvePolicy()
        self.rng = rng or random.Random()
        #: A deliberately broken variant (soak tests only): see ``orchestrator.config``.
        self.resend_on_timeout = resend_on_timeout
        self._created: OrderedDict[str, float] = OrderedDict()
        self._listers: dict[str, CallLister] = {}

    # --- entry point -----------------------------------------------------------------------

    async def execute(self, work: Work) -> None:
        cmd = work.cmd
        kind = CommandKind(cmd.kind)
        try:
            req = build_request(cmd)
        except InvalidCommand as err:
            await self._finish(
                work,
                CommandStatus.FAILED,
                attempts=0,
                error={"reason": "invalid_command", "detail": str(err)},
            )
            return
        if cmd.not_before is not None:
            wait = (cmd.not_before - utc_now()).total_seconds()
            if wait > 0:
                await interruptible(work, asyncio.sleep(wait))
        expired = (
            self.max_age is not None
            and work.written_at is not None
            and time.time() - work.written_at > self.max_age.total_seconds()
        )
        budget_name, limiter = self.budgets.get(cmd.account).for_kind(kind)
        if kind == CommandKind.CREATE_CALL and self.ledger is not None:
            await self._create(work, req, limiter, budget_name, expired=expired)
        elif expired:
            await self._expire(work)
        else:
            await self._call(work, req, limiter, budget_name)

    async def _expire(self, work: Work) -> None:
        """Too old to act on: a group that lost its offsets must not replay yesterday's calls."""
        self.metrics.expired.inc()
        await self._finish(
            work,
            CommandStatus.FAILED,
            attempts=0,
            error={
                "reason": "expired",
                "detail": f"command older than the maximum age ({self.max_age}); not sent",
            },
        )

    # --- results ---------------------------------------------------------------------------

    def _result(
        self,
        work: Work,
        status: CommandStatus,
        *,
        attempts: int,
        out: HttpOutcome | None = None,
        error: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        call_uuid: str | None = None,
        conversation_uuid: str | None = None,
        result_id: str | None = None,
    ) -> CommandResult:
        cmd = work.cmd
        body = out.body if out is not None else None
        if response is None and isinstance(body, dict) and status == CommandStatus.SUCCEEDED:
            response = body
        if error is None and status == CommandStatus.FAILED and out is not None:
            error = body if isinstance(body, dict) else {"detail": body or out.error}
        if call_uuid is None and isinstance(response, dict):
            call_uuid = response.get("uuid") if isinstance(response.get("uuid"), str) else None
        if conversation_uuid is None and isinstance(response, dict):
            cu = response.get("conversation_uuid")
            conversation_uuid = cu if isinstance(cu, str) else None
        return CommandResult(
            id=result_id or CommandResult.make_id(cmd.id),
            occurred_at=utc_now(),
            flow_key=cmd.flow_key,
            command_id=cmd.id,
            kind=cmd.kind,
            status=status,
            call_ref=cmd.call_ref,
            http_status=out.status if out is not None else None,
            call_uuid=call_uuid or cmd.call_uuid,
            conversation_uuid=conversation_uuid,
            error=error,
            response=response,
            attempts=attempts,
            latency_ms=round((time.monotonic() - work.received) * 1000, 3),
            hints=cmd.hints,
        )

    async def _emit(self, work: Work, res: CommandResult, *, final: bool = True) -> None:
        self.metrics.results.labels(res.kind, res.status).inc()
        if final:
            self.metrics.latency.labels(res.kind).observe(time.monotonic() - work.received)
        await self.sink.result(work, res, final=final)

    async def _finish(self, work: Work, status: CommandStatus, **kw: Any) -> CommandResult:
        res = self._result(work, status, **kw)
        await self._emit(work, res)
        return res

    async def _dead_letter(self, work: Work, reason: str, error: str | None) -> None:
        self.metrics.dead_letters.labels(reason).inc()
        letter = DeadLetter(
            id=DeadLetter.make_id(work.topic, work.partition, work.offset),
            occurred_at=utc_now(),
            reason=reason,
            error=error,
            source_topic=work.topic,
            partition=work.partition,
            offset=work.offset,
            key_b64=base64.b64encode(work.key).decode() if work.key is not None else None,
            value_b64=base64.b64encode(work.value).decode(),
            role="dispatcher",
        )
        await self.sink.dead_letter(letter, work.trace)

    # --- helpers ---------------------------------------------------------------------------

    def _count(self, kind: str, out: HttpOutcome) -> None:
        label = str(out.status) if out.status is not None else str(out.transport)
        self.metrics.requests.labels(kind, label).inc()
        self.metrics.http_latency.labels(kind).observe(out.elapsed)

    def _since_create(self, call_uuid: str | None) -> float | None:
        if not call_uuid:
            return None
        at = self._created.get(call_uuid)
        return None if at is None else time.monotonic() - at

    def _remember_created(self, call_uuid: str | None) -> None:
        if not call_uuid:
            return
        self._created[call_uuid] = time.monotonic()
        while len(self._created) > _CREATED_MEMORY:
            self._created.popitem(last=False)

    async def _send(
        self, work: Work, limiter: RateLimiter, req: ApiRequest, base: str
    ) -> HttpOutcome:
        permit = await self._acquire(work, limiter)
        out: HttpOutcome | None = None
        try:
            out = await self.client.send(req, base)
            return out
        finally:
            permit.done(*_marks(out))

    @staticmethod
    async def _permit(work: Work, limiter: RateLimiter) -> Permit:
        """A rate-limit permit, abandoning the wait if the partition is being given up."""
        if work.abort.is_set():
            raise Draining
        permit = limiter.acquire_nowait()
        if permit is None:
            permit = await interruptible(work, limiter.acquire())
        return permit

    async def _acquire(self, work: Work, limiter: RateLimiter) -> Permit:
        while True:
            permit = await self._permit(work, limiter)
            if permit.sending():
                return permit
            permit.cancel()

    async def _sending(
        self, work: Work, to: str | None, first_at: datetime, attempt: int
    ) -> tuple[LedgerEntry, float]:
        """Commit the create's "sending" entry (fenced: a replica that lost the partition
        cannot); return it and when it was committed (monotonic)."""
        assert self.ledger is not None
        entry = LedgerEntry(
            command_id=work.cmd.id,
            call_ref=work.cmd.call_ref,
            state=LedgerState.SENDING,
            to=to,
            at=utc_now(),
            first_at=first_at,
            attempt=attempt,
            source_partition=work.partition,
            source_offset=work.offset,
        )
        started = time.monotonic()
        await self.ledger.write(entry, durable=True)
        written = time.monotonic()
        self.metrics.ledger_latency.observe(written - started)
        return entry, written

    async def _not_sent(self, entry: LedgerEntry) -> None:
        """The create gave up its place in line (the partition is being handed over): say it
        was never sent, in the partition's open transaction, so the next owner dials it without
        first listing calls to find out. Best effort: if this fails the next owner resolves."""
        assert self.ledger is not None
        with contextlib.suppress(Exception):
            await self.ledger.write(entry.model_copy(update={"state": LedgerState.NOT_SENT}))

    def _throttle(self, limiter: RateLimiter, budget: str, delay: float, honour: bool) -> None:
        limiter.on_throttled(delay if honour else None)
        self.metrics.throttled.labels(budget).inc()

    # --- every kind but create --------------------------------------------------------------

    async def _call(self, work: Work, req: ApiRequest, limiter: RateLimiter, budget: str) -> None:
        cmd = work.cmd
        kind = CommandKind(cmd.kind)
        region = self.client.trusted_region(cmd.region_url) if req.call_scoped else None
        base = self.client.first_base(req, cmd.region_url)
        attempts, reauthed, too_early = 0, False, 0
        first: float | None = None
        while True:
            first = first if first is not None else time.monotonic()
            out = await self._send(work, limiter, req, base)
            attempts += 1
            self._count(kind.value, out)
            d = classify(
                Attempt(
                    kind,
                    status=out.status,
                    transport=out.transport,
                    retry_after=out.retry_after,
                    reauthed=reauthed,
                    region_url_known=region is not None,
                    at_region=base == region,
                    since_create=self._since_create(cmd.call_uuid),
                    too_early_retries=too_early,
                ),
                self.backoff,
                attempts,
                self.rng,
            )
            if d.throttled:
                self._throttle(limiter, budget, d.delay, d.honour_retry_after)
            if d.action == Action.DONE:
                await self._finish(work, CommandStatus.SUCCEEDED, attempts=attempts, out=out)
                return
            if d.action in (Action.FAIL, Action.AMBIGUOUS):
                await self._finish(work, CommandStatus.FAILED, attempts=attempts, out=out)
                return
            delay = d.delay
            if d.action == Action.REAUTH:
                self.client.refresh_jwt(out.token)
                reauthed, delay = True, 0.0
            elif d.action == Action.REROUTE and region is not None:
                base, delay = region, 0.0
            elif d.reason.startswith("too_early"):
                too_early += 1
            why = exhausted(kind, attempts, time.monotonic() - first, delay)
            if why is not None:
                await self._give_up(work, why, attempts, out)
                return
            self.metrics.retries.labels(kind.value, d.reason).inc()
            log.debug("retrying", command_id=cmd.id, kind=kind.value, reason=d.reason, delay=delay)
            await interruptible(work, asyncio.sleep(delay))

    async def _give_up(
        self, work: Work, why: str, attempts: int, out: HttpOutcome | None
    ) -> CommandResult:
        last = None if out is None else (out.status or out.transport)
        error: dict[str, Any] = {"reason": why, "last": str(last) if last is not None else None}
        if out is not None and isinstance(out.body, dict):
            error["body"] = out.body
        res = self._result(work, CommandStatus.FAILED, attempts=attempts, out=out, error=error)
        log.warning("command exhausted", command_id=work.cmd.id, kind=work.cmd.kind, why=why)
        if self.ledger is not None and work.cmd.kind == CommandKind.CREATE_CALL:
            entry = self.ledger.get(work.cmd.id)
            if entry is not None:
                await self.ledger.write(
                    entry.model_copy(
                        update={"state": LedgerState.FAILED, "result": res.model_dump(mode="json")}
                    )
                )
        await self._dead_letter(work, why, f"last outcome: {last}")
        await self._emit(work, res)
        return res

    # --- create call: the dial ledger --------------------------------------------------------

    async def _create(
        self,
        work: Work,
        req: ApiRequest,
        limiter: RateLimiter,
        budget: str,
        *,
        expired: bool = False,
    ) -> None:
        assert self.ledger is not None
        cmd = work.cmd
        kind = CommandKind.CREATE_CALL
        entry = self.ledger.get(cmd.id)
        log.debug(
            "create",
            command_id=cmd.id,
            offset=work.offset,
            ledger=entry.state.value if entry is not None else None,
        )
        if entry is not None and entry.final and entry.result is not None:
            log.info("create already final; re-emitting", command_id=cmd.id, state=entry.state)
            await self._emit(work, CommandResult.model_validate(entry.result))
            return
        if entry is not None and entry.state in UNRESOLVED_STATES:
            await self._resolve(work, entry, "redelivered_while_" + entry.state.value)
            return
        if expired:
            await self._expire(work)
            return
        attempts = entry.attempt if entry is not None else 0
        first_at = entry.first_at if entry is not None else None
        to = destination(req.json or {})
        reauthed = False
        first: float | None = None
        while True:
            first_at = first_at or utc_now()
            # The "sending" entry is committed while this create waits in line for its permit:
            # a slot counts from its send, so a write made after the permit lengthened every
            # slot by the write's latency and held the dispatcher below its CPS (a tenth of it
            # under load). The entry still precedes the request by SEND_WINDOW at most: a
            # permit that comes later gets a fresh entry first.
            waiting = asyncio.ensure_future(self._permit(work, limiter))
            try:
                entry, written = await self._sending(work, to, first_at, attempts + 1)
            except BaseException:
                await _drop(waiting)
                raise
            try:
                permit = await waiting
            except BaseException:
                await self._not_sent(entry)
                raise
            if time.monotonic() - written > SEND_WINDOW:
                try:  # a long line: the permit is held while a fresh entry is committed
                    entry, written = await self._sending(work, to, first_at, attempts + 1)
                except BaseException:
                    permit.cancel()
                    raise
            if not permit.sending():
                permit.cancel()  # the ledger write outlived the slot: take a fresh one
                continue
            if time.monotonic() - written > SEND_WINDOW:
                # Paused between the ledger and the request: whoever owns the partition now
                # (maybe a new owner already resolving this entry) must not see a late send.
                # Saying so is fenced too, so only a replica that still owns it carries on.
                permit.cancel()
                self.metrics.send_window_missed.inc()
                log.warning("create not sent: paused past the send window", command_id=cmd.id)
                await self.ledger.write(
                    entry.model_copy(update={"state": LedgerState.NOT_SENT}), durable=True
                )
                continue
            attempts += 1
            first = first if first is not None else time.monotonic()
            sent: HttpOutcome | None = None
            try:
                sent = await self.client.send(req, self.client.api_base)
            finally:
                permit.done(*_marks(sent))
            out = sent
            self._count(kind.value, out)
            d = classify(
                Attempt(
                    kind,
                    status=out.status,
                    transport=out.transport,
                    retry_after=out.retry_after,
                    reauthed=reauthed,
                ),
                self.backoff,
                attempts,
                self.rng,
            )
            if d.throttled:
                self._throttle(limiter, budget, d.delay, d.honour_retry_after)
            if d.action == Action.DONE:
                res = self._result(work, CommandStatus.SUCCEEDED, attempts=attempts, out=out)
                await self.ledger.write(
                    entry.model_copy(
                        update={
                            "state": LedgerState.CREATED,
                            "call_uuid": res.call_uuid,
                            "conversation_uuid": res.conversation_uuid,
                            "result": res.model_dump(mode="json"),
                        }
                    )
                )
                self._remember_created(res.call_uuid)
                await self._emit(work, res)
                return
            if d.action == Action.FAIL:
                res = self._result(work, CommandStatus.FAILED, attempts=attempts, out=out)
                await self.ledger.write(
                    entry.model_copy(
                        update={"state": LedgerState.FAILED, "result": res.model_dump(mode="json")}
                    )
                )
                await self._emit(work, res)
                return
            if d.action == Action.AMBIGUOUS and self.resend_on_timeout:
                continue  # deliberately broken variant (soak tests only): send the create again
            if d.action == Action.AMBIGUOUS:
                entry = entry.model_copy(update={"state": LedgerState.UNKNOWN})
                await self.ledger.write(entry)
                log.warning("create outcome unknown; resolving", command_id=cmd.id, reason=d.reason)
                await self._resolve(work, entry, d.reason)
                return
            # RETRY / REAUTH: Vonage refused without placing a call; sending again is safe.
            entry = entry.model_copy(update={"state": LedgerState.NOT_SENT})
            await self.ledger.write(entry)
            delay = d.delay
            if d.action == Action.REAUTH:
                self.client.refresh_jwt(out.token)
                reauthed, delay = True, 0.0
            why = exhausted(kind, attempts, time.monotonic() - first, delay)
            if why is not None:
                await self._give_up(work, why, attempts, out)
                return
            self.metrics.retries.labels(kind.value, d.reason).inc()
            await interruptible(work, asyncio.sleep(delay))

    async def _resolve(self, work: Work, entry: LedgerEntry, reason: str) -> None:
        """Find out whether an ambiguous create placed a call; never send it again."""
        assert self.ledger is not None
        policy = self.resolve_policy
        cmd = work.cmd
        self.metrics.unresolved.inc()
        try:
            pending = self._result(
                work,
                CommandStatus.UNKNOWN,
                attempts=entry.attempt,
                error={"reason": reason},
                result_id=unknown_result_id(cmd.id),
            )
            await self._emit(work, pending, final=False)
            wait = (entry.at + timedelta(seconds=policy.after) - utc_now()).total_seconds()
            if wait > 0:
                await interruptible(work, asyncio.sleep(wait))
            lister = self._lister(work)
            # The call, if it exists, was created between the first send and the last one.
            start = entry.first_at - timedelta(seconds=policy.skew)
            end = entry.at + timedelta(seconds=policy.skew)
            tries = 0
            while True:
                calls = await interruptible(work, lister.calls(start, end))
                if calls is not None:
                    break
                tries += 1
                spent = (utc_now() - entry.at).total_seconds()
                if spent > policy.deadline:
                    await self._give_up(work, "unresolved_outcome", entry.attempt, None)
                    return
                await interruptible(work, asyncio.sleep(self.backoff.delay(tries, self.rng)))
            claimed = self.ledger.claimed
            found = match_created_call(
                calls,
                to=entry.to,
                first_at=entry.first_at,
                claimed=claimed,
                skew=timedelta(seconds=policy.skew),
            )
            if found is not None:
                res = self._result(
                    work,
                    CommandStatus.SUCCEEDED,
                    attempts=entry.attempt,
                    response={**found, "resolved_by": "list_calls"},
                )
                final = entry.model_copy(
                    update={
                        "state": LedgerState.CREATED,
                        "call_uuid": res.call_uuid,
                        "conversation_uuid": res.conversation_uuid,
                        "result": res.model_dump(mode="json"),
                    }
                )
                self._remember_created(res.call_uuid)
            else:
                res = self._result(
                    work,
                    CommandStatus.FAILED,
                    attempts=entry.attempt,
                    error={
                        "reason": "not_created_verified",
                        "detail": f"no call to {entry.to} since {entry.first_at.isoformat()}",
                    },
                )
                final = entry.model_copy(
                    update={"state": LedgerState.FAILED, "result": res.model_dump(mode="json")}
                )
            await self.ledger.write(final)
            log.info(
                "create resolved",
                command_id=cmd.id,
                found=found is not None,
                call_uuid=res.call_uuid,
            )
            await self._emit(work, res)
        finally:
            self.metrics.unresolved.dec()

    def _lister(self, work: Work) -> CallLister:
        """The account's shared listing (resolutions waiting together share one pass)."""
        account = work.cmd.account
        lister = self._listers.get(account)
        if lister is None:
            _, limiter = self.budgets.get(account).for_kind(CommandKind.LIST_CALLS)
            # The pass serves many commands, so no single command's abort may stop it.
            detached = replace(work, abort=asyncio.Event())

            async def fetch(start: datetime, end: datetime) -> list[dict[str, Any]] | None:
                return await self._list_calls(detached, limiter, start, end)

            lister = self._listers[account] = CallLister(fetch)
        return lister

    async def _list_calls(
        self, work: Work, limiter: RateLimiter, start: datetime, end: datetime
    ) -> list[dict[str, Any]] | None:
        """Every call created in [start, end], or ``None`` if the listing failed."""
        policy = self.resolve_policy
        calls: list[dict[str, Any]] = []
        index = 0
        while True:
            params = {
                "date_start": start.isoformat().replace("+00:00", "Z"),
                "date_end": end.isoformat().replace("+00:00", "Z"),
                "page_size": str(policy.page_size),
                "record_index": str(index),
                "order": "asc",
            }
            req = ApiRequest("GET", "/v1/calls", params=params)
            out = await self._send(work, limiter, req, self.client.api_base)
            self._count(CommandKind.LIST_CALLS.value, out)
            if out.status == 429:
                self._throttle(limiter, "rps", 0.0, False)
            if out.status != 200 or not isinstance(out.body, dict):
                return None
            embedded = out.body.get("_embedded") or {}
            page = embedded.get("calls") if isinstance(embedded, dict) else None
            page = [c for c in (page or []) if isinstance(c, dict)]
            calls.extend(page)
            count = out.body.get("count")
            index += len(page)
            if len(page) < policy.page_size or (isinstance(count, int) and index >= count):
                return calls

    async def internal_failure(self, work: Work, err: BaseException) -> None:
        """A bug or an outage kept failing this command: dead-letter it with a failed result.

        A create whose ledger entry says the request may have reached Vonage must not be declared
        failed (the call may exist): that raises, so the process stops and the command is
        redelivered and resolved after the restart.
        """
        if self.ledger is not None and work.cmd.kind == CommandKind.CREATE_CALL:
            entry = self.ledger.get(work.cmd.id)
            if entry is not None and entry.state in UNRESOLVED_STATES:
                raise RuntimeError("cannot fail an unresolved create; restart to resolve") from err
        detail = f"{type(err).__name__}: {err}"
        await self._dead_letter(work, "internal_error", detail)
        await self._finish(
            work,
            CommandStatus.FAILED,
            attempts=0,
            error={"reason": "internal_error", "detail": detail},
        )
