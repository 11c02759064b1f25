"""``POST /v1/campaigns`` as ``multipart/form-data``: the spec, then its contact and DNC files.

Parts, in this order: ``spec`` (the campaign as JSON, or YAML by its Content-Type or a
``.yaml``/``.yml`` filename), then at most one ``contacts`` (CSV or JSONL, by filename or
Content-Type) and any number of ``dnc`` files (up to :data:`MAX_DNC_PARTS`). The spec comes
first because the files are parsed as they stream (its ``default_region`` normalises DNC numbers,
its name is checked before anything is written). Rows go to an :class:`UploadSink` as they are
parsed, so memory holds one chunk and what the sink keeps, never the file; the whole request is
capped at ``CONTACTS_UPLOAD_MAX_BYTES``. The sink is the only difference between a start and a
dry run, so both accept and refuse exactly the same bodies: a start writes the rows to
``campaign.uploads`` (:class:`~orchestrator.campaign.uploads.TopicSink`), a dry run holds them
for ``campaign validate`` (:class:`~orchestrator.campaign.upload_spool.UploadSpool`).

python-multipart (Starlette's own multipart parser) does the framing; Starlette's ``form()`` is
not used because it spools whole files to disk before the handler sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from contracts.campaign import CampaignSpec, Contact
from orchestrator.campaign.contacts import contact_from_row
from orchestrator.campaign.upload_rows import (
    CsvRows,
    DncRows,
    JsonlRows,
    LineSplitter,
    UploadRowError,
)
from orchestrator.config import Settings
from orchestrator.ingress.campaign_spec import YAML_TYPES, parse_spec, refuse
from orchestrator.web.body import BodyTooLarge, declared_too_large

__all__ = ["MAX_DNC_PARTS", "Upload", "UploadSink", "receive_upload"]

MAX_DNC_PARTS = 10
#: A part's headers (Content-Disposition, Content-Type) at most.
_MAX_PART_HEADER = 4096
_CSV_TYPES = ("text/csv", "application/csv")
_JSONL_TYPES = ("application/jsonl", "application/x-ndjson", "application/x-jsonlines")

Event = tuple[str, Any]


class UploadSink(Protocol):
    """Where an upload's rows go: :meth:`open` once the spec is known, before the first row;
    :meth:`place` after the last, returning the spec that names where they went."""

    async def open(self, spec: CampaignSpec) -> None: ...

    async def add_contact(self, row: dict[str, Any]) -> None: ...

    async def add_dnc(self, e164: str) -> None: ...

    async def place(self, spec: CampaignSpec) -> CampaignSpec: ...


@dataclass
class Upload:
    spec: CampaignSpec
    first: Contact | None
    notes: list[str] = field(default_factory=list)
    #: The spec part as sent (at most the spec limit), its name and whether it is YAML: what a
    #: dry run needs to name the line of a field.
    spec_text: bytes = b""
    spec_yaml: bool = False
    spec_name: str = "spec"
    #: The contacts part's file name, None without one.
    contacts_name: str | None = None


@dataclass
class _Part:
    name: str
    filename: str
    content_type: str
    splitter: LineSplitter = field(default_factory=LineSplitter)
    rows: CsvRows | JsonlRows | DncRows | None = None
    body: bytearray = field(default_factory=bytearray)


def _framing(request: Request) -> tuple[MultipartParser, list[Event]]:
    """The multipart parser; its callbacks only record events, handled between chunks."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise refuse(400, "multipart/form-data without a boundary", error="bad request")
    events: list[Event] = []
    name, value = bytearray(), bytearray()
    headers: dict[bytes, bytes] = {}

    def grow(buf: bytearray, data: bytes, start: int, end: int) -> None:
        buf.extend(data[start:end])
        if len(buf) > _MAX_PART_HEADER:
            raise refuse(400, f"a part header over {_MAX_PART_HEADER} bytes", error="bad request")

    def header_end() -> None:
        headers[bytes(name).lower()] = bytes(value)
        name.clear()
        value.clear()

    def headers_done() -> None:
        events.append(("part", dict(headers)))
        headers.clear()

    callbacks: Any = {
        "on_header_field": lambda d, s, e: grow(name, d, s, e),
        "on_header_value": lambda d, s, e: grow(value, d, s, e),
        "on_header_end": header_end,
        "on_headers_finished": headers_done,
        "on_part_data": lambda d, s, e: events.append(("data", bytes(d[s:e]))),
        "on_part_end": lambda: events.append(("end", None)),
    }
    return MultipartParser(boundary, callbacks), events


def _write(parser: MultipartParser, chunk: bytes | None) -> None:
    try:
        if chunk is None:
            parser.finalize()
        else:
            parser.write(chunk)
    except MultipartParseError:
        raise refuse(400, "not a multipart/form-data body", error="bad request") from None


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()


def _is_yaml(part: _Part) -> bool:
    return part.content_type in YAML_TYPES or part.filename.lower().endswith((".yaml", ".yml"))


class _Receiver:
    def __init__(
        self,
        spec_limit: int,
        check_name: Callable[[CampaignSpec], Awaitable[None]],
        sink: UploadSink,
    ) -> None:
        self.spec_limit = spec_limit
        self.check_name = check_name
        self.spec: CampaignSpec | None = None
        self.awaiting_contacts = False
        self.part: _Part | None = None
        self.sink = sink
        self.opened = False
        self.spec_part: _Part | None = None
        self.contacts_name: str | None = None
        self.seen: set[str] = set()
        self.dnc_parts = 0
        self.rows = 0
        self.first: Contact | None = None
        self.notes: list[str] = []

    # -- parts ---------------------------------------------------------------------------

    async def on_part(self, headers: dict[bytes, bytes]) -> None:
        _, params = parse_options_header(headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename", b"").decode("utf-8", "replace")
        ctype = _media(headers.get(b"content-type", b"").decode("latin-1"))
        if name not in ("spec", "contacts", "dnc"):
            raise refuse(422, f"part {name[:40]!r}: unknown (spec, contacts, dnc)")
        if self.spec is None and name != "spec":
            raise refuse(422, "spec: the spec part comes first (then contacts, dnc)")
        if name in self.seen and name != "dnc":
            raise refuse(422, f"{name}: more than one part")
        self.seen.add(name)
        part = _Part(name, filename, ctype)
        if name == "contacts":
            if not self.awaiting_contacts:
                raise refuse(422, "contacts: the spec names a source already; give one")
            part.rows = self._contact_format(filename, ctype)
            self.contacts_name = (filename or name)[:60]
        elif name == "dnc":
            self.dnc_parts += 1
            if self.dnc_parts > MAX_DNC_PARTS:
                raise refuse(422, f"dnc: more than {MAX_DNC_PARTS} parts")
            assert self.spec is not None
            part.rows = DncRows(self.spec.contacts.default_region)
        self.part = part

    def _contact_format(self, filename: str, ctype: str) -> CsvRows | JsonlRows:
        lower = filename.lower()
        if lower.endswith(".csv") or ctype in _CSV_TYPES:
            return CsvRows()
        if lower.endswith((".jsonl", ".ndjson")) or ctype in _JSONL_TYPES:
            return JsonlRows()
        raise refuse(
            422,
            "contacts: say the format with a filename ending .csv or .jsonl, or Content-Type "
            "text/csv or application/jsonl",
        )

    async def on_data(self, data: bytes) -> None:
        part = self.part
        assert part is not None
        if part.name == "spec":
            part.body.extend(data)
            if len(part.body) > self.spec_limit:
                raise BodyTooLarge(self.spec_limit)
            return
        await self._rows(part, self._lines(part, data))

    async def on_end(self) -> None:
        part, self.part = self.part, None
        assert part is not None
        if part.name == "spec":
            await self._spec(part)
            return
        await self._rows(part, self._lines(part, None))
        if isinstance(part.rows, CsvRows | JsonlRows):
            self._finish_rows(part, part.rows)
        elif isinstance(part.rows, DncRows):
            self._note_rejected(part, part.rows)

    def _lines(self, part: _Part, data: bytes | None) -> list[tuple[int, str]]:
        try:
            return part.splitter.finish() if data is None else part.splitter.feed(data)
        except UploadRowError as err:
            raise refuse(422, f"{part.name}: {err}") from None

    def _finish_rows(self, part: _Part, rows: CsvRows | JsonlRows) -> None:
        try:
            rows.finish()
        except UploadRowError as err:
            raise refuse(422, f"contacts: {err}") from None
        if self.rows == 0:
            raise refuse(422, "contacts: no rows")

    def _note_rejected(self, part: _Part, rows: DncRows) -> None:
        label = f"dnc upload {part.filename[:60]!r}" if part.filename else "dnc upload"
        for line in rows.rejected[:5]:
            self.notes.append(f"{label} line {line}: not a phone number, ignored")
        if len(rows.rejected) > 5:
            self.notes.append(f"... and {len(rows.rejected) - 5} more {label} lines ignored")

    async def _spec(self, part: _Part) -> None:
        self.spec_part = part
        as_yaml = _is_yaml(part)
        placeholder = {"topic": "pending", "partition": 0, "begin": 0, "end": 0, "key": "pending"}
        self.spec, self.awaiting_contacts = await parse_spec(
            bytes(part.body), as_yaml=as_yaml, where="spec", upload=placeholder
        )
        await self.check_name(self.spec)

    async def _sink(self) -> UploadSink:
        if not self.opened:
            assert self.spec is not None
            self.opened = True
            await self.sink.open(self.spec)
        return self.sink

    async def _rows(self, part: _Part, lines: list[tuple[int, str]]) -> None:
        if not lines:
            return
        assert part.rows is not None and self.spec is not None
        try:
            rows = part.rows.lines(lines)
        except UploadRowError as err:
            raise refuse(422, f"{part.name}: {err}") from None
        if not rows:
            return
        sink = await self._sink()
        if isinstance(part.rows, DncRows):
            for number in rows:
                assert isinstance(number, str)
                await sink.add_dnc(number)
            return
        for row in rows:
            assert isinstance(row, dict)
            if not row.get("id"):
                row["id"] = str(self.rows)  # the row number, as for a file
            if self.first is None:
                self.first = contact_from_row(0, row, self.spec.contacts.default_region)
            await sink.add_contact(row)
            self.rows += 1

    # -- the end -------------------------------------------------------------------------

    async def result(self) -> Upload:
        if self.part is not None:
            raise refuse(400, "the multipart body ends inside a part", error="bad request")
        if self.spec is None:
            raise refuse(422, "spec: missing (a part named spec, first)")
        if self.awaiting_contacts and "contacts" not in self.seen:
            raise refuse(
                422, "contacts: no source (upload a contacts part, or name csv/jsonl/topic)"
            )
        spec = await self.sink.place(self.spec)
        sent = self.spec_part
        assert sent is not None
        return Upload(
            spec,
            self.first,
            self.notes,
            spec_text=bytes(sent.body),
            spec_yaml=_is_yaml(sent),
            spec_name=(sent.filename or sent.name)[:60],
            contacts_name=self.contacts_name,
        )


async def receive_upload(
    request: Request,
    settings: Settings,
    *,
    spec_limit: int,
    check_name: Callable[[CampaignSpec], Awaitable[None]],
    sink: UploadSink,
) -> Upload:
    """The campaign from a multipart request, its files' rows given to ``sink`` as they came.

    Raises :class:`Refused` (4xx) or :class:`BodyTooLarge`, or what ``sink`` raises; the caller
    opened ``sink`` and closes it (rows a topic sink wrote before a refusal stay on
    ``campaign.uploads``, unreferenced, until retention removes them).
    """
    limit = settings.contacts_upload_max_bytes
    if declared_too_large(request.headers.get("content-length"), limit):
        raise BodyTooLarge(limit)
    parser, events = _framing(request)
    receiver = _Receiver(spec_limit, check_name, sink)
    handlers: dict[str, Callable[[Any], Awaitable[None]]] = {
        "part": receiver.on_part,
        "data": receiver.on_data,
        "end": lambda _: receiver.on_end(),
    }
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        _write(parser, chunk)
        for kind, value in events:
            await handlers[kind](value)
        events.clear()
        await asyncio.sleep(0)  # a chunk's rows done: let other requests in
    _write(parser, None)
    for kind, value in events:
        await handlers[kind](value)
    return await receiver.result()
