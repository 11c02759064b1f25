"""Writing an uploaded contact list (and DNC lists) to ``campaign.uploads``, row by row.

The control API takes the files with the campaign, so a Kubernetes user needs no volume shared
by the ingress and the controller: the rows go to a topic, and the campaign names the slice of
it that holds them (:class:`~contracts.campaign.TopicSlice`). Every record of one upload goes
to one partition, in the file's order, keyed ``{upload}:contacts`` or ``{upload}:dnc``; the
controller reads them back like a topic source. Memory holds one batch of unacknowledged
records, whatever the size of the file. :class:`TopicSink` is what the multipart parser writes to
for a start; a dry run gives it :class:`~orchestrator.campaign.upload_spool.UploadSpool` instead.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from contracts.campaign import CampaignSpec, TopicSlice
from contracts.topics import CAMPAIGN_UPLOADS, topic_name
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_producer
from orchestrator.kafka.headers import Headers, record_headers

__all__ = ["TopicSink", "UploadWriter", "new_upload_id"]

#: Unacknowledged records at most; the writer waits for the broker beyond this.
_IN_FLIGHT = 2000


def new_upload_id(campaign: str) -> str:
    return f"{campaign}/{uuid.uuid4().hex[:12]}"


@dataclass
class _Kind:
    key: bytes
    headers: Headers
    rows: int = 0
    first: int | None = None
    last: int | None = None
    pending: list[asyncio.Future[Any]] = field(default_factory=list)


class UploadWriter:
    """One upload's records; :meth:`finish` returns the slices that hold them."""

    def __init__(self, settings: Settings, upload_id: str) -> None:
        self.settings = settings
        self.upload_id = upload_id
        self.topic = topic_name(CAMPAIGN_UPLOADS, settings.topic_prefix)
        self._producer: AIOKafkaProducer | None = None
        self._partition = 0
        self._kinds = {
            "contacts": _Kind(f"{upload_id}:contacts".encode(), record_headers("ContactRow", 1)),
            "dnc": _Kind(f"{upload_id}:dnc".encode(), record_headers("DncNumber", 1)),
        }

    async def start(self) -> None:
        producer = make_producer(self.settings, linger_ms=20)
        await producer.start()
        self._producer = producer
        parts = sorted(await producer.partitions_for(self.topic))
        if not parts:
            raise RuntimeError(f"topic {self.topic} has no partitions")
        self._partition = parts[zlib.crc32(self.upload_id.encode()) % len(parts)]

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def add_contact(self, row: dict[str, Any]) -> None:
        await self._send(self._kinds["contacts"], orjson.dumps(row))

    async def add_dnc(self, e164: str) -> None:
        await self._send(self._kinds["dnc"], e164.encode())

    async def _send(self, kind: _Kind, value: bytes) -> None:
        assert self._producer is not None
        fut = await self._producer.send(
            self.topic, value=value, key=kind.key, partition=self._partition, headers=kind.headers
        )
        kind.pending.append(fut)
        kind.rows += 1
        if len(kind.pending) >= _IN_FLIGHT:
            await self._settle(kind)

    async def _settle(self, kind: _Kind) -> None:
        pending, kind.pending = kind.pending, []
        for meta in await asyncio.gather(*pending):
            kind.first = meta.offset if kind.first is None else min(kind.first, meta.offset)
            kind.last = meta.offset if kind.last is None else max(kind.last, meta.offset)

    async def finish(self) -> tuple[TopicSlice | None, TopicSlice | None]:
        """Wait for every record; (contacts, dnc) slices, None for a kind with no rows."""
        out: list[TopicSlice | None] = []
        for kind in self._kinds.values():
            await self._settle(kind)
            if kind.first is None or kind.last is None:
                out.append(None)
                continue
            out.append(
                TopicSlice(
                    topic=self.topic,
                    partition=self._partition,
                    begin=kind.first,
                    end=kind.last + 1,
                    key=kind.key.decode(),
                    rows=kind.rows,
                )
            )
        return out[0], out[1]


class TopicSink:
    """An upload sink writing to ``campaign.uploads``; the producer starts with the first row.

    Its :meth:`place` names the slices in the spec. A context manager: the producer stops on exit,
    whatever happened (records written before a refusal stay, unreferenced, until retention).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer: UploadWriter | None = None

    async def __aenter__(self) -> TopicSink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            await self.writer.close()

    async def open(self, spec: CampaignSpec) -> None:
        self.writer = UploadWriter(self.settings, new_upload_id(spec.name))
        await self.writer.start()

    def _writer(self) -> UploadWriter:
        assert self.writer is not None, "open() first"
        return self.writer

    async def add_contact(self, row: dict[str, Any]) -> None:
        await self._writer().add_contact(row)

    async def add_dnc(self, e164: str) -> None:
        await self._writer().add_dnc(e164)

    async def place(self, spec: CampaignSpec) -> CampaignSpec:
        if self.writer is None:
            return spec
        contacts, dnc = await self.writer.finish()
        update: dict[str, Any] = {}
        if contacts is not None:
            update["contacts"] = spec.contacts.model_copy(update={"upload": contacts})
        if dnc is not None:
            update["dnc_uploads"] = [*spec.dnc_uploads, dnc]
        return spec.model_copy(update=update)
