"""The dial ledger: a create-call is recorded durably *before* it is sent, so nobody rings twice.

``POST /v1/calls`` is not idempotent and Vonage offers no idempotency key. If the dispatcher
crashes, or a connection drops after the request was written, nobody can tell from our side
whether the call exists. The official SDK re-sends in that case; we never do. Every attempt goes
through these states on ``voice.dispatch-ledger`` (compacted, key = command id, written in the
command partition's transaction: :mod:`orchestrator.dispatcher.txn`):

``sending``  written before each POST (the request may now reach Vonage)
``not_sent`` the POST was refused without effect (429, 503, connect error): may be sent again
``created``  201 with the call's uuid (final)
``failed``   refused for good, or proven never created (final)
``unknown``  sent, outcome unknown (timeout, dropped connection, 500/502/504)

A command that arrives (again) with a ledger entry is never sent blindly: a final entry re-emits
the stored result (same deterministic id, so consumers deduplicate); ``sending``/``unknown`` is
resolved by listing the account's calls (``GET /v1/calls`` over a window around the attempt)
once a bound has passed, matching the ``to`` endpoint: found -> ``created`` with its uuid; proven
absent -> ``failed`` with reason ``not_created_verified`` (a campaign may then dial again, always
with a new ``call_ref``). Meanwhile the worker gets a ``CommandResult`` with status ``unknown`` and
may resolve the attempt sooner from the webhooks that reach the call's ``call_ref`` path.

Placement: records are written to the ledger partition equal to the command's partition on
``voice.commands`` (modulo the ledger's partition count), so a replica that is assigned command
partition ``p`` restores exactly ledger partition ``p`` and nothing else. Entries whose command
offset is committed and that are older than the maximum command age are tombstoned, which keeps
the compacted topic as small as the recent work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import BaseModel, ConfigDict

from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer
from orchestrator.kafka.headers import record_headers
from orchestrator.kafka.reading import read_to_end
from orchestrator.tracing import call_traceparent

if TYPE_CHECKING:
    from orchestrator.dispatcher.txn import PartitionTxn


class LedgerState(StrEnum):
    SENDING = "sending"
    NOT_SENT = "not_sent"
    CREATED = "created"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: How many created call uuids to remember for resolution (a few hours of a busy account).
CLAIMED_MEMORY = 200_000

FINAL_STATES = frozenset({LedgerState.CREATED, LedgerState.FAILED})
#: States in which the request may have reached Vonage: never send again, resolve instead.
UNRESOLVED_STATES = frozenset({LedgerState.SENDING, LedgerState.UNKNOWN})


class LedgerEntry(BaseModel):
    """One record of ``voice.dispatch-ledger`` (the latest per command id wins)."""

    model_config = ConfigDict(frozen=True, use_enum_values=False)

    command_id: str
    call_ref: str | None = None
    state: LedgerState
    #: The destination as written in the request (number, URI, user ...): what resolution matches.
    to: str | None = None
    #: When the latest attempt was sent (or refused); UTC.
    at: datetime
    #: When the first attempt was sent: the start of the window searched when resolving.
    first_at: datetime
    attempt: int = 1
    call_uuid: str | None = None
    conversation_uuid: str | None = None
    #: The final ``CommandResult`` (JSON), re-emitted verbatim on redelivery.
    result: dict[str, Any] | None = None
    source_partition: int
    source_offset: int

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def endpoint_id(ep: Any) -> str | None:
    """A comparable identity of an endpoint object (``to``/``from`` of a request or call)."""
    if not isinstance(ep, dict):
        return None
    for field in ("number", "uri", "user", "extension"):
        value = ep.get(field)
        if isinstance(value, str) and value:
            return f"{ep.get('type') or 'phone'}:{value.lstrip('+')}"
    return None


def destination(body: dict[str, Any]) -> str | None:
    """The first ``to`` endpoint of a create-call body (Vonage dials the first one)."""
    to = body.get("to")
    if isinstance(to, list) and to:
        return endpoint_id(to[0])
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def match_created_call(
    calls: Iterable[dict[str, Any]],
    *,
    to: str | None,
    first_at: datetime,
    claimed: set[str],
    skew: timedelta = timedelta(seconds=5),
) -> dict[str, Any] | None:
    """The call our unresolved attempt created, among a ``GET /v1/calls`` listing, if any.

    A call matches when it is outbound, goes to the same destination, was not created before the
    first attempt (minus clock skew), and is not already owned by another command's ledger entry.
    Among several matches (the same number dialled by two unresolved commands) the earliest wins.
    """
    if to is None:
        return None
    best: tuple[datetime, dict[str, Any]] | None = None
    for call in calls:
        uuid = call.get("uuid")
        if not isinstance(uuid, str) or uuid in claimed:
            continue
        if call.get("direction") not in (None, "outbound"):
            continue
        if endpoint_id(call.get("to")) != to:
            continue
        started = _parse_time(call.get("start_time")) or _parse_time(call.get("date_created"))
        if started is not None and started < first_at - skew:
            continue
        key = started or first_at
        if best is None or key < best[0]:
            best = (key, call)
    return best[1] if best else None


class DialLedger:
    """The ledger of the command partitions this replica owns (in memory, backed by the topic)."""

    def __init__(
        self,
        txn_for: Callable[[int], PartitionTxn],
        topic: str,
        partitions: int,
        *,
        keep_for: timedelta = timedelta(minutes=15),
    ) -> None:
        self._txn_for = txn_for  # the transaction writer of a command partition
        self.keep_for = keep_for
        self.topic = topic
        self.partitions = max(1, partitions)
        self._entries: dict[str, LedgerEntry] = {}
        #: call uuids some command owns: resolution must not claim another command's call. Kept
        #: (bounded) after the entry itself is compacted away.
        self._claimed: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def ledger_partition(self, command_partition: int) -> int:
        return command_partition % self.partitions

    def get(self, command_id: str) -> LedgerEntry | None:
        return self._entries.get(command_id)

    @property
    def claimed(self) -> set[str]:
        return set(self._claimed)

    def _apply(self, entry: LedgerEntry) -> None:
        self._entries[entry.command_id] = entry
        if entry.call_uuid:
            self._claimed[entry.call_uuid] = entry.command_id
            while len(self._claimed) > CLAIMED_MEMORY:
                self._claimed.popitem(last=False)

    def _remove(self, command_id: str) -> None:
        self._entries.pop(command_id, None)

    async def write(self, entry: LedgerEntry, *, durable: bool = False) -> None:
        """Add ``entry`` to its partition's transaction, then apply it.

        ``durable``: return only once it is committed, visible to a next owner's restore (a
        create's "sending" entry, which must be before the request leaves). Otherwise it is
        committed with the partition's next transaction, together with the result it goes with.
        Raises :class:`~orchestrator.dispatcher.txn.Fenced` when another replica owns the
        partition now.
        """
        txn = self._txn_for(entry.source_partition)
        args = (
            self.topic,
            entry.to_bytes(),
            entry.command_id.encode(),
            self.ledger_partition(entry.source_partition),
        )
        headers = record_headers(
            "LedgerEntry", 1, call_traceparent(entry.call_ref) if entry.call_ref else None
        )
        if durable:
            await txn.send_durably(*args, headers=headers)
        else:
            await txn.send(*args, headers=headers)
        self._apply(entry)

    async def restore(
        self,
        settings: Settings,
        command_partitions: Sequence[int],
        *,
        current: Callable[[], bool] = lambda: True,
    ) -> int:
        """Load the entries of the given command partitions from the topic; return how many.

        ``current`` says whether the take-over this load is for still stands: a load left
        behind by a revoke must not write over what a later take-over of the same partitions
        loaded."""
        wanted = sorted({self.ledger_partition(p) for p in command_partitions})
        if not wanted:
            return 0
        owned = set(command_partitions)
        consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
        await consumer.start()
        loaded = 0

        def load(_: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
            nonlocal loaded
            if not current():
                return
            for rec in records:
                if rec.key is None:
                    continue
                cid = rec.key.decode()
                if rec.value is None:
                    self._remove(cid)
                    continue
                entry = LedgerEntry.model_validate_json(rec.value)
                if entry.source_partition in owned:
                    self._apply(entry)
                    loaded += 1

        try:
            tps = [TopicPartition(self.topic, p) for p in wanted]
            await read_to_end(consumer, tps, load, within=300.0)
        finally:
            await consumer.stop()
        return loaded

    def forget_partitions(self, command_partitions: Iterable[int]) -> None:
        """Drop the entries of partitions this replica no longer owns (after a revoke)."""
        gone = set(command_partitions)
        for cid in [c for c, e in self._entries.items() if e.source_partition in gone]:
            self._remove(cid)

    async def compact(self, command_partition: int, committed_offset: int, now: datetime) -> int:
        """Tombstone final entries that can never be needed again: their command offset is
        committed and they are older than ``keep_for`` (the dispatcher's maximum command age).

        Until then a command read again (a group that lost its committed offsets re-reads its
        partitions) finds its entry and is answered from it, without a second request; after
        it, the command is too old to be executed at all.
        """
        done = [
            e
            for e in self._entries.values()
            if e.source_partition == command_partition
            and e.source_offset < committed_offset
            and e.final
            and now - e.at > self.keep_for
        ]
        txn = self._txn_for(command_partition)
        for e in done:
            await txn.send(
                self.topic,
                None,
                e.command_id.encode(),
                self.ledger_partition(command_partition),
                headers=record_headers("LedgerEntry", 1),
            )
            self._remove(e.command_id)
        return len(done)
