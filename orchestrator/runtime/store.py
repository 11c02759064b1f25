"""The partition-local state store: one dict per owned input partition, backed by a changelog.

Each changelog record (key = the state key, partition = the input partition: the topics are
co-partitioned) holds ``{"offset", "state", "at", "due", "done"}``: the input offset of the last
record applied to the key (a replayed record at or below it is skipped), the state, when the key
last received a record, its timer's due time and when it finished (epoch seconds). A tombstone
(null value) deletes the key. Only the latest value per key matters, so the topic is compacted.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import orjson

S = TypeVar("S")

__all__ = ["Entry", "KeyBusyError", "PartitionStore", "decode_changelog", "encode_changelog"]


class KeyBusyError(RuntimeError):
    """``punctuate`` tried to change a key whose async ``apply`` is still running."""


class Entry(Generic[S]):
    __slots__ = ("busy", "done_at", "due", "offset", "queued", "saved_due", "state", "touched")

    def __init__(self, state: S, offset: int, touched: float) -> None:
        self.state = state
        self.offset = offset  # last input offset applied (-1: none yet)
        self.touched = touched  # wall clock of the last record
        self.due: float | None = None  # timer due time
        self.saved_due: float | None = None  # due time as last written to the changelog
        self.queued: float | None = None  # due time of this key's entry in the timer heap
        self.done_at: float | None = None  # finished at (eviction after retention)
        self.busy = False  # an async apply is running for this key


class PartitionStore(Generic[S]):
    """The states of one partition. ``get``/``put``/``delete`` are the API for ``punctuate``."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.entries: dict[str, Entry[S]] = {}
        self.dirty: set[str] = set()
        self.timers: list[tuple[float, str]] = []
        self.finished: deque[tuple[float, str]] = deque()

    # -- API for applications ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def get(self, key: str) -> S | None:
        entry = self.entries.get(key)
        return entry.state if entry is not None else None

    def keys(self) -> Iterator[str]:
        return iter(list(self.entries))

    def items(self) -> Iterator[tuple[str, S]]:
        """Snapshot of (key, state); keys with async work in flight are left out."""
        return iter([(k, e.state) for k, e in self.entries.items() if not e.busy])

    def put(
        self,
        key: str,
        state: S,
        *,
        timer_due: float | None = None,
        finished_at: float | None = None,
        now: float = 0.0,
    ) -> None:
        """Set a key's state from ``punctuate`` (written to the changelog at the next checkpoint)."""
        entry = self.entries.get(key)
        if entry is not None and entry.busy:
            raise KeyBusyError(key)
        if entry is None:
            entry = Entry(state, -1, now)
            self.entries[key] = entry
        entry.state = state
        self.schedule(key, entry, timer_due)
        self.mark_finished(key, entry, finished_at)
        self.dirty.add(key)

    def delete(self, key: str) -> None:
        entry = self.entries.get(key)
        if entry is not None and entry.busy:
            raise KeyBusyError(key)
        if self.entries.pop(key, None) is not None:
            self.dirty.add(key)

    # -- runtime internals ---------------------------------------------------------------------

    def schedule(self, key: str, entry: Entry[S], due: float | None) -> None:
        entry.due = due
        if due is not None and (entry.queued is None or due < entry.queued):
            heapq.heappush(self.timers, (due, key))
            entry.queued = due

    def mark_finished(self, key: str, entry: Entry[S], at: float | None) -> None:
        if at is None:
            entry.done_at = None
        elif entry.done_at is None:
            entry.done_at = at
            self.finished.append((at, key))

    def due_keys(self, now: float) -> list[str]:
        """Pop the keys whose timer is due (stale heap entries are dropped or re-queued)."""
        out: list[str] = []
        timers = self.timers
        entries = self.entries
        while timers and timers[0][0] <= now:
            due, key = heapq.heappop(timers)
            entry = entries.get(key)
            if entry is None or entry.queued != due:
                continue
            entry.queued = None
            if entry.due is None:
                continue
            if entry.due > now:
                heapq.heappush(timers, (entry.due, key))
                entry.queued = entry.due
                continue
            out.append(key)
        return out

    def expired(self, now: float, retention_s: float, committed: int) -> list[str]:
        """Finished keys past retention whose last applied offset is below the committed offset."""
        out: list[str] = []
        fin = self.finished
        entries = self.entries
        while fin and fin[0][0] + retention_s <= now:
            at, key = fin[0]
            entry = entries.get(key)
            if entry is None or entry.done_at != at or entry.busy:
                fin.popleft()  # gone, un-finished, or finished again later (re-queued then)
                continue
            if entry.offset >= committed:
                break  # wait for the commit to pass it, so a replay cannot resurrect it
            fin.popleft()
            out.append(key)
        return out

    def evict(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.dirty.add(key)

    def load(self, key: str, entry: Entry[S] | None) -> None:
        """Restore one changelog record (None: tombstone)."""
        old = self.entries.pop(key, None)
        if old is not None:
            old.queued = None
        if entry is None:
            return
        self.entries[key] = entry

    def reindex(self) -> None:
        """Rebuild the timer heap and the finished queue after a restore."""
        self.timers = []
        fin: list[tuple[float, str]] = []
        for key, entry in self.entries.items():
            entry.queued = None
            entry.saved_due = entry.due
            if entry.due is not None:
                self.timers.append((entry.due, key))
                entry.queued = entry.due
            if entry.done_at is not None:
                fin.append((entry.done_at, key))
        heapq.heapify(self.timers)
        fin.sort()
        self.finished = deque(fin)


def encode_changelog(entry: Entry[Any], dumped: Any) -> bytes:
    doc: dict[str, Any] = {"offset": entry.offset, "state": dumped, "at": entry.touched}
    if entry.due is not None:
        doc["due"] = entry.due
    if entry.done_at is not None:
        doc["done"] = entry.done_at
    return orjson.dumps(doc)


def decode_changelog(value: bytes) -> tuple[int, Any, float, float | None, float | None]:
    """``(offset, state, touched, due, done_at)``; raises ValueError on a malformed record."""
    doc = orjson.loads(value)
    if not isinstance(doc, dict) or not isinstance(doc.get("offset"), int) or "state" not in doc:
        raise ValueError("changelog record without offset/state")
    at = doc.get("at")
    return (
        doc["offset"],
        doc["state"],
        float(at) if isinstance(at, int | float) else 0.0,
        doc.get("due"),
        doc.get("done"),
    )
