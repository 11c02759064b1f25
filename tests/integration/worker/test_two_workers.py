"""Two worker processes on the local broker: exact outcomes, takeover after ``kill -9``, DLQ, SIGTERM.

The input is 500 synthetic call flows (``orchestrator.sandbox.synthetic``: every outcome kind,
connected second legs, transfers into a named conversation, inbound calls, create-call results
that fail or stay unknown) delivered with Vonage-like jitter (reorderings) and 5 % duplicated
webhooks. Each flow says which outcomes it must produce, so the check is exact.

At-least-once note: a crash can make a worker produce an outcome again (it was confirmed, but the
flow's "reported" mark had not reached the changelog yet). Such a repeat carries the same
deterministic id and the same content, so these tests dedupe by id, assert that repeats are
identical, and count them.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from contracts.envelopes import DeadLetter, Outcome
from orchestrator.config import Settings
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker
from orchestrator.sandbox.synthetic import Scenario, stream
from tests.conftest import make_settings
from tests.integration.worker.helpers import WorkerProcess, produce, read_json, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_CALLS = 500
SEED = 20260105


def calls() -> tuple[list[Scenario], list[tuple[bytes, bytes]]]:
    return stream(random.Random(SEED), N_CALLS, calls_per_s=50, jitter_s=1.5, dup_p=0.05)


def expected(scenarios: list[Scenario]) -> dict[str, str]:
    out: dict[str, str] = {}
    for sc in scenarios:
        out.update(sc.outcomes)
    return out


def dedupe(records: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], int]:
    """Outcomes by id; asserts that repeated ids carry identical records; returns the repeat count."""
    by_id: dict[str, dict[str, Any]] = {}
    repeats = 0
    for rec in records:
        prev = by_id.get(rec["id"])
        if prev is not None:
            assert prev == rec, f"outcome {rec['id']} re-produced with different content"
            repeats += 1
        by_id[rec["id"]] = rec
    return by_id, repeats


POISON_GARBAGE = b"\x00\x01 this is not JSON"


def poison(scenarios: list[Scenario]) -> list[tuple[bytes, bytes]]:
    """A garbage record and one that makes the handler raise, keyed like two real calls.

    They come first, so the real events of those calls follow them on the same partition.
    """
    bad_envelope = {
        "id": "evt-poison",
        "schema_version": 1,
        "occurred_at": "2026-01-05T09:00:00Z",
        "flow_key": scenarios[1].flow_key,
        "type": "vonage.webhook",
        "webhook": "event",
        "call_ref": scenarios[1].flow_key,
        "event_type": "answered",
        "received_at": "2026-01-05T09:00:00Z",
        "payload": {"status": "answered", "conversation_uuid": "CON-x"},  # no uuid: InvalidEvent
    }
    return [
        (scenarios[0].flow_key.encode(), POISON_GARBAGE),
        (scenarios[1].flow_key.encode(), orjson.dumps(bad_envelope)),
    ]


async def fresh_settings(broker: LocalBroker) -> Settings:
    settings = make_settings(broker.bootstrap)
    await ensure_topics(settings, create=True)
    return settings


async def outcomes_complete(settings: Settings, want: set[str]) -> dict[str, Any] | None:
    records = await read_json(settings, "voice.outcomes")
    by_id, repeats = dedupe(records)
    if want <= set(by_id):
        return {"by_id": by_id, "repeats": repeats, "records": records}
    return None


@pytest.fixture(scope="module")
async def clean_run(broker: LocalBroker) -> AsyncIterator[dict[str, Any]]:
    """Two workers, no faults, poison records first: the reference run."""
    settings = await fresh_settings(broker)
    scenarios, records = calls()
    await produce(settings, "voice.events", [*poison(scenarios), *records])
    group = f"w-{uuid.uuid4().hex[:8]}"
    workers = [WorkerProcess(settings, group, "a"), WorkerProcess(settings, group, "b")]
    try:
        want = set(expected(scenarios))
        t0 = time.monotonic()
        done = await wait_for(
            lambda: outcomes_complete(settings, want), 90, "all outcomes (clean run)", every=1.0
        )
        elapsed = time.monotonic() - t0
        dlq = await read_json(settings, "voice.dlq")
        commands = await read_json(settings, "voice.commands")
        # The first worker may finish everything before the second has joined: wait for the
        # group to settle before recording who owns what.
        await wait_for(
            lambda: all((r := w.ready()) and r["partitions"] for w in workers),
            30,
            "both workers owning partitions",
        )
        parts = [w.ready() for w in workers]
        shutdowns = [w.terminate() for w in workers]
        print(f"\nclean run: {len(records)} records, {len(want)} outcomes in {elapsed:.1f}s (incl. group join); "
              f"SIGTERM->exit (idle): {', '.join(f'{s:.2f}s' for _, s in shutdowns)}")  # fmt: skip
        yield {
            "settings": settings,
            "scenarios": scenarios,
            "records": records,
            "done": done,
            "dlq": dlq,
            "commands": commands,
            "ready": parts,
            "shutdowns": shutdowns,
            "logs": [w.log() for w in workers],
        }
    finally:
        for w in workers:
            w.stop()


async def test_two_workers_exactly_one_outcome_per_leg_and_conversation(
    clean_run: dict[str, Any],
) -> None:
    scenarios: list[Scenario] = clean_run["scenarios"]
    by_id = clean_run["done"]["by_id"]
    assert {i: o["disposition"] for i, o in by_id.items()} == expected(scenarios)
    assert clean_run["done"]["repeats"] == 0, "no crash, so no outcome may be produced twice"
    for rec in clean_run["done"]["records"]:
        Outcome.model_validate(rec)
    # Both workers took part: the three partitions were split between them.
    owned = [set(r["partitions"]) for r in clean_run["ready"] if r]
    assert len(owned) == 2 and all(owned) and set.union(*owned) == {0, 1, 2}
    # The hangup-on-machine commands, once each.
    want_cmds = set().union(*(sc.commands for sc in scenarios))
    got_cmds = [c["id"] for c in clean_run["commands"]]
    assert sorted(got_cmds) == sorted(want_cmds)
    assert all(code == 0 for code, _ in clean_run["shutdowns"])


async def test_poison_records_are_dead_lettered_and_the_partition_carries_on(
    clean_run: dict[str, Any],
) -> None:
    scenarios: list[Scenario] = clean_run["scenarios"]
    letters = [DeadLetter.model_validate(d) for d in clean_run["dlq"]]
    by_reason = {d.reason: d for d in letters}
    assert set(by_reason) == {"undecodable", "invalid_event"}, letters
    garbage = by_reason["undecodable"]
    assert garbage.key_b64 is not None and garbage.value_b64 is not None
    assert base64.b64decode(garbage.value_b64) == POISON_GARBAGE
    assert base64.b64decode(garbage.key_b64).decode() == scenarios[0].flow_key
    assert "uuid" in (by_reason["invalid_event"].error or "")
    assert all(d.source_topic.endswith("voice.events") and d.role == "worker" for d in letters)
    # The calls keyed like the poison records (same partition, later offsets) were processed.
    for sc in scenarios[:2]:
        for oid in sc.outcomes:
            assert oid in clean_run["done"]["by_id"]
    offsets = {d.reason: d.offset for d in letters}
    assert min(offsets.values()) >= 0


async def test_kill9_one_worker_the_other_takes_over_with_the_same_outcomes(
    broker: LocalBroker, clean_run: dict[str, Any]
) -> None:
    settings = await fresh_settings(broker)
    scenarios, records = calls()
    half = len(records) // 2
    await produce(settings, "voice.events", [*poison(scenarios), *records[:half]])
    group = f"w-{uuid.uuid4().hex[:8]}"
    a = WorkerProcess(settings, group, "a")
    b = WorkerProcess(settings, group, "b")
    try:
        await wait_for(
            lambda: (
                (ra := a.ready()) and (rb := b.ready()) and ra["partitions"] and rb["partitions"]
            ),
            60,
            "both workers owning partitions",
        )
        # The victim is a worker that has applied events (whichever of the two got there
        # first: the other may own partitions whose records were all applied before it joined).
        await wait_for(
            lambda: max(w.metric("orchestrator_runtime_events_total") for w in (a, b)) > 0,
            30,
            "a worker to process events",
        )
        victim, survivor = (a, b) if a.metric("orchestrator_runtime_events_total") > 0 else (b, a)
        await wait_for(
            lambda: victim.metric("orchestrator_runtime_checkpoints_total") > 2, 30, "a checkpoint"
        )
        victim_parts = set(victim.ready()["partitions"])  # type: ignore[index]
        restored_before = survivor.metric("orchestrator_runtime_restore_records_total")
        victim.kill9()
        t_kill = time.monotonic()
        await produce(settings, "voice.events", records[half:])  # the stream goes on
        want = set(expected(scenarios))
        done = await wait_for(
            lambda: outcomes_complete(settings, want), 90, "all outcomes after the kill", every=1.0
        )
        takeover = time.monotonic() - t_kill
        ready = survivor.ready()
        assert ready is not None and set(ready["partitions"]) == {0, 1, 2}
        restored = survivor.metric("orchestrator_runtime_restore_records_total") - restored_before
        assert restored > 0, "the survivor restored the victim's partitions from voice.state"
        code, shutdown_s = survivor.terminate()
        assert code == 0
        print(f"\nkill -9 run: victim owned {sorted(victim_parts)}; survivor restored {restored:.0f} changelog "
              f"records; all outcomes {takeover:.1f}s after the kill (session timeout 6 s); "
              f"{done['repeats']} outcome(s) re-produced with the same id; SIGTERM->exit {shutdown_s:.2f}s")  # fmt: skip
    finally:
        a.stop()
        b.stop()
    # Same outcomes as the clean run: the same ids, dispositions and content; nothing lost.
    assert {i: o["disposition"] for i, o in done["by_id"].items()} == expected(scenarios)
    clean = clean_run["done"]["by_id"]
    assert done["by_id"].keys() == clean.keys()
    diff = [i for i in clean if clean[i] != done["by_id"][i]]
    assert diff == [], f"{len(diff)} outcomes differ from the clean run, e.g. {diff[:1]}"
    # Exactly one record per leg per DLQ cause too (a replay re-produces them with the same ids).
    dlq = await read_json(settings, "voice.dlq")
    assert {d["reason"] for d in dlq} == {"undecodable", "invalid_event"}
    assert len({d["id"] for d in dlq}) == 2


async def test_sigterm_under_load_drains_checkpoints_and_a_restart_resumes(
    broker: LocalBroker,
) -> None:
    settings = await fresh_settings(broker)
    scenarios, records = stream(random.Random(7), 5000, calls_per_s=200, jitter_s=1.5, dup_p=0.05)
    await produce(settings, "voice.events", records)
    group = f"w-{uuid.uuid4().hex[:8]}"
    first = WorkerProcess(settings, group, "first")
    try:
        await wait_for(
            lambda: first.metric("orchestrator_runtime_events_total") > 0, 60, "processing to start"
        )
        code, seconds = first.terminate()
        log = first.log()
        stopped = next(
            orjson.loads(line) for line in log.splitlines() if '"runtime stopped"' in line
        )
    finally:
        first.stop()
    assert code == 0, log[-2000:]
    assert '"runtime stopped"' in log and '"worker stopped"' in log
    # The contract (not a performance claim): SIGTERM -> exit 0 within 25 s.
    assert seconds < 25
    print(
        f"\nSIGTERM under load: exit code {code} after {seconds:.2f}s (budget 25 s); it had applied "
        f"{stopped['applied']} of {len(records)} records; the restarted worker did the rest"
    )
    second = WorkerProcess(settings, group, "second")
    try:
        want = set(expected(scenarios))
        done = await wait_for(
            lambda: outcomes_complete(settings, want),
            90,
            "all outcomes after the restart",
            every=1.0,
        )
    finally:
        second.stop()
    assert {i: o["disposition"] for i, o in done["by_id"].items()} == expected(scenarios)
    per_kind: dict[str, int] = defaultdict(int)
    for sc in scenarios:
        per_kind[sc.kind] += 1
    assert len(per_kind) >= 10  # the load covered the outcome kinds
