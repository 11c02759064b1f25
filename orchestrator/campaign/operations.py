"""Operations on campaigns through Kafka: start/pause/resume/cancel, live state, results.

Used by the CLI and the control API. Everything goes through the topics (``campaign.control`` in,
``campaign.state`` and ``campaign.results`` out), so a client needs no connection to a controller.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition

from contracts.campaign import (
    CampaignControl,
    CampaignDocument,
    CampaignProgress,
    CampaignSpec,
    Contact,
    ContactResult,
    ControlAction,
)
from contracts.topics import CAMPAIGN_CONTROL, CAMPAIGN_RESULTS, CAMPAIGN_STATE, topic_name
from handlers.campaign_check import ncco_problems
from orchestrator.campaign.contacts import ContactFileError, iter_contacts
from orchestrator.campaign.dnc import load_dnc
from orchestrator.campaign.topic_source import topic_ranges
from orchestrator.clock import utc_now
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.kafka.headers import record_headers
from orchestrator.kafka.reading import partitions_of, read_to_end
from orchestrator.tracing import call_traceparent

__all__ = [
    "StartRefused",
    "Started",
    "StateWatcher",
    "check_campaign",
    "count_contacts",
    "existing_status",
    "list_campaigns",
    "neutralise_cell",
    "read_results",
    "results_csv",
    "results_jsonl",
    "send_control",
    "start_campaign",
    "write_results",
]


def count_contacts(spec: CampaignSpec) -> int | None:
    """Data rows in a file or an upload (a fast line count), or None for a topic source."""
    if spec.contacts.upload is not None:
        return spec.contacts.upload.rows
    if spec.contacts.kind == "topic":
        return None
    n = 0
    with Path(spec.contacts.location).open("rb") as fh:
        for line in fh:
            if line.strip():
                n += 1
    return max(0, n - 1) if spec.contacts.kind == "csv" else n


def check_campaign(spec: CampaignSpec, public_base: str, first: Contact | None = None) -> list[str]:
    """Problems worth a warning before starting (raises on ones that make the start useless).

    ``first`` is the first contact of an upload (files are read here for theirs). Warnings
    name lines, never their text.
    """
    notes: list[str] = []
    if spec.contacts.kind in ("csv", "jsonl"):
        path = Path(spec.contacts.location)
        if not path.is_file():
            raise ContactFileError(f"contacts file not found: {path}")
        first = next(iter_contacts(spec.contacts), None)
    if first is not None:
        # A template error shows now, not per call, named by its field (flow.ncco.0.text).
        problems = ncco_problems(CampaignDocument(spec, "campaign", {}), first, public_base)
        if problems:
            raise ValueError("; ".join(f"{p.field}: {p.message}" for p in problems))
    for p in spec.dnc:
        if not Path(p).is_file():
            raise ContactFileError(f"DNC file not found: {p}")
    dnc = load_dnc(spec.dnc, spec.contacts.default_region)
    for file, line in dnc.rejected[:5]:
        notes.append(f"{file}:{line}: not a phone number, ignored")
    if len(dnc.rejected) > 5:
        notes.append(f"... and {len(dnc.rejected) - 5} more DNC lines ignored")
    return notes


async def send_control(
    settings: Settings,
    campaign: str,
    action: ControlAction,
    *,
    spec: CampaignSpec | None = None,
    contacts_total: int | None = None,
    requested_by: str | None = None,
    source_ranges: list[tuple[int, int, int]] | None = None,
) -> CampaignControl:
    ctrl = CampaignControl(
        id=f"ctl-{uuid.uuid4().hex}",
        occurred_at=utc_now(),
        campaign=campaign,
        action=action,
        spec=spec,
        contacts_total=contacts_total,
        requested_by=requested_by,
        source_ranges=source_ranges,
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        topic = topic_name(CAMPAIGN_CONTROL, settings.topic_prefix)
        await producer.send_and_wait(
            topic,
            ctrl.to_bytes(),
            key=campaign.encode(),
            headers=record_headers(
                "CampaignControl", ctrl.schema_version, call_traceparent(campaign)
            ),
        )
    finally:
        await producer.stop()
    return ctrl


class StartRefused(ValueError):
    """The campaign cannot start; ``exists`` is the status of an earlier one of that name."""

    def __init__(self, reason: str, *, exists: str | None = None) -> None:
        super().__init__(reason)
        self.exists = exists


@dataclass(frozen=True)
class Started:
    control: CampaignControl
    contacts_total: int | None
    notes: list[str] = field(default_factory=list)


async def existing_status(settings: Settings, name: str) -> str | None:
    """The status of campaign ``name`` on campaign.state, or None when there is none."""
    async with StateWatcher(settings) as w:
        await w.refresh()
        p = w.progress(name)
    return None if p is None else str(p.status)


async def start_campaign(
    settings: Settings,
    spec: CampaignSpec,
    *,
    requested_by: str,
    status_of: Callable[[str], Awaitable[str | None]] | None = None,
    first: Contact | None = None,
) -> Started:
    """Check ``spec``, refuse a name used before, count the contacts and send START.

    The one start path of the CLI and the control API. Raises :class:`StartRefused` with a
    reason an operator can act on; ``notes`` are warnings (ignored DNC lines). ``first`` is
    the first uploaded contact, for the template check of an upload.
    """
    try:
        notes = await asyncio.to_thread(check_campaign, spec, settings.public_base, first)
        total = await asyncio.to_thread(count_contacts, spec)
    except ContactFileError as err:
        raise StartRefused(str(err)) from None
    except ValueError as err:  # the rendered create-call request is invalid
        raise StartRefused(str(err)) from None
    existing = await (status_of or (lambda n: existing_status(settings, n)))(spec.name)
    if existing is not None:
        raise StartRefused(
            f"campaign {spec.name!r} exists already (status {existing}); "
            "a campaign runs once: give the new one another name",
            exists=existing,
        )
    ranges = None
    if spec.contacts.kind == "topic":
        try:
            ranges = await topic_ranges(settings, spec.contacts.location)
        except ValueError as err:
            raise StartRefused(str(err)) from None
        total = sum(max(0, end - begin) for _, begin, end in ranges)
    ctrl = await send_control(
        settings,
        spec.name,
        ControlAction.START,
        spec=spec,
        contacts_total=total,
        requested_by=requested_by,
        source_ranges=ranges,
    )
    return Started(ctrl, total, notes)


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return make_consumer(settings, group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024)


async def _read_to_end(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    on: Callable[[bytes, bytes | None], None],
    within: float = 60.0,
    settle_s: float = 0.0,
    *,
    start: Literal["beginning", "current"] = "beginning",
) -> None:
    def each(_: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for m in records:
            if m.key is not None:
                on(m.key, m.value)

    await read_to_end(consumer, tps, each, within=within, start=start)
    # Optional: keep reading until the topics stay quiet for ``settle_s`` (a writer still busy).
    loop = asyncio.get_running_loop()
    quiet_until = loop.time() + settle_s
    while settle_s > 0 and loop.time() < quiet_until:
        batch = await consumer.getmany(*tps, timeout_ms=int(settle_s * 1000), max_records=5000)
        if batch:
            quiet_until = loop.time() + settle_s
        for tp, records in batch.items():
            each(tp, records)


class StateWatcher:
    """Follows ``campaign.state``: the latest progress of each campaign, read incrementally."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topic_name(CAMPAIGN_STATE, settings.topic_prefix)
        self.states: dict[str, dict[str, Any]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []

    async def __aenter__(self) -> StateWatcher:
        self._consumer = _consumer(self.settings)
        await self._consumer.start()
        self._tps = await partitions_of(self._consumer, self.topic)
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_beginning(*self._tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def _on(self, key: bytes, value: bytes | None) -> None:
        name = key.decode("utf-8", "replace")
        if value is None:
            self.states.pop(name, None)
            return
        try:
            doc = orjson.loads(value)
            self.states[name] = doc["state"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass

    async def refresh(self) -> None:
        assert self._consumer is not None
        await _read_to_end(self._consumer, self._tps, self._on, start="current")

    def progress(self, name: str) -> CampaignProgress | None:
        state = self.states.get(name)
        if state is None or "progress" not in state:
            return None
        return CampaignProgress.model_validate(state["progress"])


async def list_campaigns(settings: Settings) -> list[CampaignProgress]:
    """The latest progress of every campaign on campaign.state, newest start first."""
    async with StateWatcher(settings) as w:
        await w.refresh()
        found = [p for name in w.states if (p := w.progress(name)) is not None]
    return sorted(found, key=lambda p: (p.started_at is not None, p.started_at), reverse=True)


async def read_results(settings: Settings, campaign: str) -> list[ContactResult]:
    """Every final result of ``campaign``, one per contact (duplicates of a re-send dropped)."""
    topic = topic_name(CAMPAIGN_RESULTS, settings.topic_prefix)
    prefix = f"{campaign}/".encode()
    found: dict[str, ContactResult] = {}

    def on(key: bytes, value: bytes | None) -> None:
        if value is not None and key.startswith(prefix):
            r = ContactResult.model_validate_json(value)
            found.setdefault(r.id, r)

    consumer = _consumer(settings)
    await consumer.start()
    try:
        await _read_to_end(consumer, await partitions_of(consumer, topic), on)
    finally:
        await consumer.stop()
    return sorted(found.values(), key=lambda r: r.index)


_COLUMNS = [
    "contact_id",
    "index",
    "number",
    "name",
    "disposition",
    "detail",
    "attempts",
    "amd",
    "duration_s",
    "first_attempt_at",
    "last_attempt_at",
    "finished_at",
    "call_uuids",
    "call_refs",
]


def results_jsonl(results: Iterable[ContactResult]) -> Iterator[bytes]:
    """One JSON line per contact."""
    for r in results:
        yield r.to_bytes() + b"\n"


#: A spreadsheet runs a cell starting with one of these as a formula (OWASP: CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a leading ``'`` before any formula-starting character.

    Contact names and numbers come from uploaded lists, so ``=HYPERLINK(...)`` is someone's
    input, not ours. E.164 numbers start with ``+`` and get the quote too; spreadsheets show
    them as text, with the ``+``, instead of turning them into numbers.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _extra_columns(results: Sequence[ContactResult]) -> tuple[list[str], list[str]]:
    """The contact columns (first-seen order, as in the list) and the capture keys (sorted)."""
    contact: dict[str, None] = {}
    captured: set[str] = set()
    for r in results:
        for k in r.columns:
            contact.setdefault(k, None)
        captured.update(r.captures)
    return list(contact), sorted(captured)


def _contact_header(name: str) -> str:
    """A contact column keeps its name unless it is one of ours (then ``contact.`` + name)."""
    return f"contact.{name}" if name in _COLUMNS or name.startswith("capture.") else name


def results_csv(results: Iterable[ContactResult]) -> Iterator[str]:
    """A header, then one CSV row per contact (lists joined with ``;``; cells neutralised).

    After the fixed columns come the contact's own columns, passed through under their own
    names, then one ``capture.{key}`` column per capture any contact has (empty where another
    contact has none). The header needs every row's keys, so the results are read first; they
    are one small record per contact, already in memory wherever this is called.
    """
    rows = list(results)
    contact_cols, capture_cols = _extra_columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf)

    def flush() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    w.writerow(
        [
            *_COLUMNS,
            *(_contact_header(c) for c in contact_cols),
            *(f"capture.{k}" for k in capture_cols),
        ]
    )
    yield flush()
    for r in rows:
        d = r.model_dump(mode="json")
        cells: list[Any] = [
            ";".join(d[c]) if isinstance(d[c], list) else ("" if d[c] is None else d[c])
            for c in _COLUMNS
        ]
        cells += [r.columns.get(c, "") for c in contact_cols]
        cells += [r.captures.get(k, "") for k in capture_cols]
        w.writerow([neutralise_cell(v) for v in cells])
        yield flush()


def write_results(results: list[ContactResult], out: Path) -> None:
    """CSV or JSONL, chosen by the extension."""
    if out.suffix.lower() == ".jsonl":
        with out.open("wb") as fh:
            fh.writelines(results_jsonl(results))
        return
    with out.open("w", newline="", encoding="utf-8") as fh:
        fh.writelines(results_csv(results))


async def wait_until(predicate: Callable[[], bool], within: float, interval: float = 0.2) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(interval)
    return True
