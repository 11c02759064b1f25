"""A generic, restartable, stateful Kafka consumer runtime (state per key, kept in Kafka).

Modelled on Kafka Streams / Quix Streams state stores and Confluent Parallel Consumer's KEY
ordering (one key's records in order, different keys concurrently). The voice worker is one
application of it; the campaign controller is another. The broker needs no transactions or
idempotent producer.

Writing an application
----------------------
Subclass :class:`App` and run it with :class:`Runtime`::

    class Counter(App[dict, dict]):
        name = "counter"
        invalid_errors = (ValueError,)            # dead-lettered as "invalid_event"

        def decode(self, key: bytes, value: bytes | None) -> dict:
            return orjson.loads(value)           # raise DecodeError -> "undecodable"

        def apply(self, key, state, event, ctx) -> Step[dict]:
            n = (state or {"n": 0})["n"] + 1
            out = Output("counts", key.encode(), orjson.dumps({"n": n}))
            return Step({"n": n}, [out], timer=30.0, finished=event.get("last", False))

        def on_timer(self, key, state, ctx) -> Step[dict]:   # 30 s after the last record
            return Step(state, finished=True)

    rt = Runtime(settings, Counter(), RuntimeConfig(
        input_topic="in", changelog_topic="counter.state", dlq_topic="voice.dlq",
        group_id="counter", output_topics=["counts"]))
    await rt.start(); await rt.run()  # until rt.request_stop(); then: await rt.close()

The contract
------------
- **Keys and order.** Records are processed per key in partition order. A plain-function
  ``apply`` runs inline (the fast path: pure state machines need no concurrency); an
  ``async def apply`` runs one record per key at a time and different keys concurrently (at most
  ``concurrency``), so a slow key never blocks its partition.
- **State keys.** A record's state is its Kafka key's unless the app overrides
  ``App.state_key(key, event)``: ordering, the store, the changelog and the replay check then go
  by the state key (the agents app maps every record of its one-partition input to one state,
  the pool). ``apply`` gets the state key; ``ctx.record_key`` is the Kafka key.
- **Offsets** are committed only below completed work (the lowest offset still in flight).
- **State store**: one in-memory dict per owned partition, restored from the compacted changelog
  (``changelog_topic``, co-partitioned with the input) by a separate, manually assigned consumer
  that reads to the end before the partition is processed. Each changelog value is
  ``{"offset", "state", "at", "due", "done"}``; a replayed record at or below ``offset`` is
  skipped, so a record is applied at most once to the stored state. Only the last state per key
  and checkpoint is written (a key updated 5 times between checkpoints costs one record).
- **Checkpoint** (every ``commit_interval_s`` or ``commit_every_records``, on revoke and on
  shutdown): outputs confirmed by the broker, then the changelog confirmed, then the input offsets
  committed. If outputs cannot be confirmed the runtime raises :class:`FatalError`: the process
  exits and the replay after restart re-produces them (with the same ids, if the app's ids are
  deterministic; consumers dedupe on id).
- **Timers**: a step may ask for ``on_timer`` after N seconds (wall clock); a newer step replaces
  the timer; due times are in the changelog, so timers survive a takeover.
- **punctuate(partition, store, ctx)**: called every ``punctuate_interval_s`` per owned partition,
  between batches; it may update states through the store and return outputs to any topic listed
  in ``output_topics`` (pacing, retry due times, sweeps).
- **Eviction**: a key whose step said ``finished`` is removed ``retention_s`` later (a tombstone in
  the changelog), once its last offset is committed; memory tracks live keys, not history.
- **Dead letters**: an undecodable record, or one that makes ``apply`` raise, goes to
  ``dlq_topic`` as a ``DeadLetter`` (reason ``undecodable`` / ``missing_key`` /
  ``invalid_event`` / ``handler_error``, the error text, the original key and value, topic,
  partition and offset); the key's state is unchanged and the partition carries on.
- **Rebalance**: on revoke the partition is drained (in-flight work finished), checkpointed, then
  released; on assign it is restored first. A store revoked and assigned straight back is kept
  and only brought up to date with what another owner wrote since (usually nothing).
- **Shutdown** (:meth:`Runtime.request_stop` from a SIGTERM handler, then :meth:`Runtime.close`):
  stop fetching, drain, checkpoint, leave the group, stop the clients.
- **Health and metrics**: :class:`HealthServer` serves ``/healthz`` (alive), ``/readyz`` (joined
  and restored) and ``/metrics``; metrics are prefixed ``orchestrator_runtime_`` (events by
  result, batch time, record age, outputs by topic, DLQ by reason, lag per partition, live keys,
  restores, rebalances, checkpoints, evictions, timers).
"""

from orchestrator.runtime.app import App, Context, DecodeError, Output, Step
from orchestrator.runtime.engine import FatalError, Runtime, RuntimeConfig
from orchestrator.runtime.health import HealthServer
from orchestrator.runtime.store import KeyBusyError, PartitionStore

__all__ = [
    "App",
    "Context",
    "DecodeError",
    "FatalError",
    "HealthServer",
    "KeyBusyError",
    "Output",
    "PartitionStore",
    "Runtime",
    "RuntimeConfig",
    "Step",
]
