"""What an application gives the runtime, and what the runtime gives back: the whole API surface.

An application is a state machine per key. The runtime owns everything else (consumer group,
ordering, the state store and its changelog, checkpoints, timers, DLQ, metrics), so the same
runtime runs the voice worker and the campaign controller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    from orchestrator.runtime.store import PartitionStore

S = TypeVar("S")
E = TypeVar("E")

__all__ = ["App", "Context", "DecodeError", "Output", "Step"]


class DecodeError(ValueError):
    """The record's bytes are not an event of this application: dead-lettered as ``undecodable``."""


class Output(NamedTuple):
    """A record to produce. ``partition`` None: by key, like the Java client (murmur2).

    ``record_type`` and ``schema_version`` become the record's ``type`` and ``schema_version``
    headers (the model name the AsyncAPI document uses). ``traceparent`` None: the record joins
    the trace of what made it (the input record's span, or for a timer the key's call).
    """

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    record_type: str | None = None
    schema_version: int = 1
    traceparent: str | None = None


class Step(NamedTuple, Generic[S]):
    """What one ``apply``/``on_timer`` call decided.

    ``state``: the key's new state; None deletes the key now (a tombstone in the changelog).
    ``outputs``: records to produce; they are confirmed by the broker before the input offset is
    committed and before the new state is written to the changelog.
    ``timer``: call ``on_timer`` for this key after this many seconds of wall-clock time (None: no
    timer; a later step replaces the timer). Timers survive restarts: the due time is stored with
    the state. A timer step that changes nothing else is not written, so after a takeover such a
    timer fires once at the previously stored (earlier) time; ``on_timer`` must tolerate that.
    ``finished``: the key is done; the runtime evicts it after ``retention_s`` (tombstone).
    """

    state: S | None
    outputs: Sequence[Output] = ()
    timer: float | None = None
    finished: bool = False


@dataclass(slots=True)
class Context:
    """Where a call comes from. One object is reused across calls: do not keep a reference."""

    partition: int = -1
    #: Source offset on the input topic (-1 for timers and punctuate).
    offset: int = -1
    #: The input record's timestamp (ms), 0 for timers and punctuate.
    timestamp_ms: int = 0
    #: Wall clock (``time.time()``) when the batch or tick started.
    now: float = 0.0
    #: Seconds since the key last received a record (timers), 0 for records.
    idle_s: float = 0.0
    #: The input record's Kafka key ("" for timers and punctuate). ``apply`` gets the state
    #: key (:meth:`App.state_key`), which is the same unless the application maps keys.
    record_key: str = ""


class App(Generic[S, E]):
    """Base class of a runtime application. Override ``decode`` and ``apply``; the rest is optional.

    ``apply`` may be a plain function (it then runs inline, in partition order: the fast path for
    pure state machines) or ``async def`` (records of one key run one at a time, in order; different
    keys run concurrently, up to the runtime's ``concurrency``). Exceptions listed in
    ``invalid_errors`` are dead-lettered with reason ``invalid_event``, any other exception with
    ``handler_error``; the key's state is left as it was and the partition carries on.
    """

    #: Metrics label and DLQ ``role``.
    name: str = "app"
    #: The ``type`` and ``schema_version`` headers of the changelog's records.
    state_type: str = "State"
    state_schema_version: int = 1
    #: Exceptions that mean "bad input" rather than "bug".
    invalid_errors: tuple[type[BaseException], ...] = ()

    def decode(self, key: bytes, value: bytes | None) -> E:
        raise NotImplementedError

    def state_key(self, key: str, event: E) -> str:
        """The state a record belongs to (default: its Kafka key).

        The runtime orders, stores, checkpoints and deduplicates (by source offset) per *state
        key*, so an application whose decisions need several Kafka keys in one state (the agent
        pool: every agent and every call it bridges) maps them all to one state key. The input
        partition still bounds what one state can see: records that share a state key must be
        in the same partition (the agents app reads a one-partition topic). The changelog
        record's key is the state key. Override it only when needed: an overriding app's
        records are decoded before the replay check (the default path skips replayed records
        without decoding them).
        """
        return key

    def apply(
        self, key: str, state: S | None, event: E, ctx: Context
    ) -> Step[S] | Awaitable[Step[S]]:
        raise NotImplementedError

    def on_timer(self, key: str, state: S, ctx: Context) -> Step[S]:
        """A timer set by a previous step is due (``ctx.idle_s`` says how long the key was quiet)."""
        return Step(state)

    def punctuate(self, partition: int, store: PartitionStore[S], ctx: Context) -> Iterable[Output]:
        """Called every ``punctuate_interval_s`` per owned partition (pacing, sweeps).

        It may read and update states through ``store`` (``get``/``put``/``delete``), and return
        outputs. It runs between batches, never concurrently with the partition's records.
        """
        return ()

    def dump_state(self, state: S) -> Any:
        """The state as a JSON-serialisable value (orjson: dicts, lists, dataclasses...)."""
        return state

    def load_state(self, raw: Any) -> S:
        """Inverse of ``dump_state`` (called while restoring from the changelog)."""
        return raw  # type: ignore[no-any-return]
