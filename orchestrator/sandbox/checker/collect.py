"""Fill a :class:`History` from the outside: the simulator's ledger and the product's topics.

Nothing here asks a role what it did. The simulator says what Vonage received and delivered
(requests, created calls, webhooks and the HTTP status the ingress answered); the topics, read
from the beginning to their end on every partition without a consumer group, say what the
product stored and concluded. A role that loses or doubles something cannot hide it, because its
own bookkeeping is never consulted.

Without a campaign controller (``contacts`` given explicitly, ``results`` empty), a contact's
final result is derived from the pipeline itself: the ``leg`` outcome of the call its
``call_ref`` created, or the final ``failed`` result of its create command. Either way a contact
must end with exactly one distinct final record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from contracts.topics import (
    CAMPAIGN_RESULTS,
    VOICE_DLQ,
    VOICE_EVENTS,
    VOICE_OUTCOMES,
    VOICE_STATE,
    topic_name,
)
from contracts.voice_state import upgrade_voice_state
from orchestrator.config import Settings
from orchestrator.sandbox.checker.checks import STATUS_RANK, ApiRequest, Delivery, Dial, History

__all__ = [
    "Record",
    "collect",
    "derived_results",
    "fetch_ledger",
    "history_from",
    "read_topic",
]


@dataclass(frozen=True, slots=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = 0


async def read_topic(settings: Settings, name: str, *, limit_s: float = 300.0) -> list[Record]:
    """Every record of ``name``, from the beginning to its end (the checker runs after every
    writer stopped, so the end listed now is the end)."""
    from aiokafka import ConsumerRecord, TopicPartition

    from orchestrator.kafka.clients import make_consumer
    from orchestrator.kafka.reading import partitions_of, read_to_end

    out: list[Record] = []

    def keep(tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        out.extend(Record(tp.partition, r.offset, r.key, r.value, r.timestamp) for r in records)

    consumer = make_consumer(settings, group_id=None, max_poll_records=5000)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, name)
        await read_to_end(consumer, tps, keep, within=limit_s)
    finally:
        await consumer.stop()
    return out


async def fetch_ledger(sim_url: str, *, limit_s: float = 120.0) -> dict[str, Any]:
    """``GET /_sim/ledger`` (requests, calls and their webhooks)."""
    import httpx

    async with httpx.AsyncClient(timeout=limit_s) as client:
        resp = await client.get(f"{sim_url.rstrip('/')}/_sim/ledger")
        resp.raise_for_status()
        data: dict[str, Any] = orjson.loads(resp.content)
        return data


def _json(values: Iterable[Record]) -> list[dict[str, Any]]:
    out = []
    for r in values:
        if r.value is None:
            continue
        try:
            doc = orjson.loads(r.value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def _iso_seconds(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _flow_key_from_url(url: str | None) -> str | None:
    # Design item 1: {PUBLIC_BASE_URL}/webhooks/{kind}/{call_ref}
    if not url or "/webhooks/" not in url:
        return None
    tail = url.split("/webhooks/", 1)[1].split("?", 1)[0].strip("/").split("/")
    return tail[1] if len(tail) >= 2 and tail[1] else None


def _dials_and_deliveries(
    ledger: dict[str, Any], time_scale: float
) -> tuple[list[Dial], list[Delivery]]:
    dials: list[Dial] = []
    deliveries: list[Delivery] = []
    for call in ledger.get("calls", []):
        uuid = str(call.get("uuid"))
        ref = call.get("call_ref")
        created_t = float(call.get("t") or 0.0)
        ended_t = call.get("ended_t")
        if ended_t is None:
            times = call.get("times") or {}
            c, e = _iso_seconds(times.get("created")), _iso_seconds(times.get("ended"))
            if c is not None and e is not None:
                ended_t = created_t + (e - c) / max(time_scale, 1e-9)
        if ref:
            dials.append(
                Dial(
                    call_ref=str(ref),
                    uuid=uuid,
                    to=str(call.get("to") or ""),
                    created_at=created_t,
                    ended_at=float(ended_t) if ended_t is not None else None,
                )
            )
        for hook in call.get("webhooks") or []:
            status = hook.get("status")
            if hook.get("kind") != "event" or status not in STATUS_RANK:
                continue
            flow_key = _flow_key_from_url(hook.get("url")) or ref or call.get("conversation_uuid")
            deliveries.append(
                Delivery(
                    flow_key=str(flow_key),
                    uuid=uuid,
                    event_type=str(status),
                    http_status=int(hook.get("http_status") or 0) if hook.get("ok") else 0,
                )
            )
    return dials, deliveries


def _requests(ledger: dict[str, Any]) -> list[ApiRequest]:
    # Only requests that took a slot of a limiter count against it; the rest (401s, injected
    # faults before the limiter, control endpoints) are marked 429 so the window check skips them.
    out = []
    for r in ledger.get("requests", []):
        limit = r.get("limit")
        status = int(r.get("status") or 0)
        out.append(ApiRequest(float(r["t"]), limit == "cps", status if limit else 429))
    return out


def _snapshots(state: list[Record]) -> list[tuple[str, dict[str, str]]]:
    """Per flow, the leg statuses each changelog record holds, in changelog order.

    A tombstone ends a generation: a flow re-created after eviction starts a fresh history, so
    it is not compared with the evicted one.
    """
    generation: dict[str, int] = defaultdict(int)
    out: list[tuple[str, dict[str, str]]] = []
    for rec in sorted(state, key=lambda r: (r.partition, r.offset)):
        key = rec.key.decode(errors="replace") if rec.key else ""
        if rec.value is None:
            generation[key] += 1
            continue
        try:
            doc = orjson.loads(rec.value)
        except orjson.JSONDecodeError:
            continue
        raw = doc.get("state") if isinstance(doc, dict) else None
        if not isinstance(raw, dict):
            continue
        # Read through the contract's upgrade, so a changelog an older worker wrote reads too.
        legs: Any = upgrade_voice_state(raw).get("legs")
        if not isinstance(legs, dict):
            continue
        statuses: dict[str, str] = {}
        for uuid, leg in legs.items():
            if not isinstance(leg, dict):
                continue
            seen = [*(leg.get("statuses") or {}), *(leg.get("amd") or {})]
            ranked = [s for s in seen if s in STATUS_RANK]
            if ranked:
                statuses[str(uuid)] = max(ranked, key=lambda s: (STATUS_RANK[s], s))
        if statuses:
            out.append((f"{key}#{generation[key]}", statuses))
    return out


def derived_results(
    events: list[dict[str, Any]], outcomes: list[dict[str, Any]], contacts: Iterable[str]
) -> list[dict[str, Any]]:
    """Final results per contact (= call_ref) when no campaign controller reports them.

    The worker reports every dial attempt of a flow as a ``leg`` outcome, including an attempt
    whose create failed, so a contact's results are its distinct leg outcomes (dedup on the
    outcome id: a re-delivered outcome is the same result). Only a contact with no outcome at all
    falls back to the final ``failed`` result of its create command.
    """
    wanted = set(contacts)
    finals: dict[str, set[str]] = defaultdict(set)
    for o in outcomes:
        ref = o.get("call_ref") or o.get("flow_key")
        if o.get("scope") == "leg" and ref in wanted:
            finals[str(ref)].add(str(o.get("id")))
    failed: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if (
            e.get("type") == "dispatcher.result"
            and e.get("kind") == "create_call"
            and e.get("status") == "failed"
            and e.get("call_ref") in wanted
        ):
            failed[str(e["call_ref"])].add(str(e.get("id")))
    for ref, ids in failed.items():
        if ref not in finals:
            finals[ref] = ids
    return [{"contact_id": ref, "id": rid} for ref, ids in finals.items() for rid in sorted(ids)]


def history_from(
    ledger: dict[str, Any],
    topics: dict[str, list[Record]],
    *,
    contacts: Iterable[str] = (),
    time_scale: float = 1.0,
) -> History:
    """A :class:`History` from a ledger document and raw topic records (keyed by base name)."""
    dials, deliveries = _dials_and_deliveries(ledger, time_scale)
    events = _json(topics.get(VOICE_EVENTS.name, []))
    outcomes = _json(topics.get(VOICE_OUTCOMES.name, []))
    contact_list = list(contacts)
    # A result re-sent after a crash carries the same id: the same result, counted once.
    results = list(
        {str(r.get("id")): r for r in _json(topics.get(CAMPAIGN_RESULTS.name, []))}.values()
    )
    if not results and contact_list:
        results = derived_results(events, outcomes, contact_list)
    return History(
        dials=dials,
        requests=_requests(ledger),
        deliveries=deliveries,
        events=events,
        outcomes=outcomes,
        results=results,
        contacts=contact_list,
        leg_status_snapshots=_snapshots(topics.get(VOICE_STATE.name, [])),
        dlq=_json(topics.get(VOICE_DLQ.name, [])),
    )


@dataclass
class Collected:
    history: History
    topic_counts: dict[str, int] = field(default_factory=dict)
    #: HTTP status -> number of Voice API requests the simulator answered with it.
    api_statuses: dict[int, int] = field(default_factory=dict)
    #: The simulator's own counters (faults injected, webhooks sent...).
    sim_counters: dict[str, int] = field(default_factory=dict)


async def collect(
    settings: Settings,
    sim_url: str,
    *,
    contacts: Iterable[str] = (),
    time_scale: float = 1.0,
) -> Collected:
    """Read the ledger and every topic the checks need, and build the history."""
    ledger = await fetch_ledger(sim_url)
    topics: dict[str, list[Record]] = {}
    for spec in (VOICE_EVENTS, VOICE_OUTCOMES, VOICE_STATE, CAMPAIGN_RESULTS, VOICE_DLQ):
        topics[spec.name] = await read_topic(settings, topic_name(spec, settings.topic_prefix))
    history = history_from(ledger, topics, contacts=contacts, time_scale=time_scale)
    statuses: dict[int, int] = defaultdict(int)
    for r in ledger.get("requests", []):
        statuses[int(r.get("status") or 0)] += 1
    return Collected(
        history,
        {name: len(recs) for name, recs in topics.items()},
        dict(sorted(statuses.items())),
        dict(ledger.get("counters") or {}),
    )
