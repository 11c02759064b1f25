"""A dry run's uploaded rows, held for ``campaign validate`` instead of written to a topic.

A multipart start streams its rows to ``campaign.uploads`` (:mod:`orchestrator.campaign.uploads`);
a dry run gets the same rows from the same parser and keeps them here. They cannot be checked as
they stream: the DNC parts may come after the contacts (the order ``curl -F`` and the README send
them), and ``validate`` needs the whole DNC list before the first contact, because a contact on
it is counted and not checked, as the controller skips it (which is also why the controller reads
an upload's DNC slice first). So the rows wait, as on the topic, and are read back row by row
(:meth:`UploadSpool.contacts`) into the loop that checks a file's rows.

They wait in a temporary file: the first MiB in memory, the rest on disk (``tempfile``'s
directory), deleted on close. Memory then holds the DNC numbers and one row, as ``validate`` of a
file-based campaign does. A row is stored as its values, the column names once per change, so a
CSV takes about 1.3 times its own size. The caller caps the spool at twice what the request may
carry (``CONTACTS_UPLOAD_MAX_BYTES``), so a crafted file (empty cells, control characters: each a few
bytes more as JSON than in the file) gets :class:`SpoolFull` (413) instead of filling the disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import orjson

from contracts.campaign import CampaignSpec, Contact
from orchestrator.campaign.contacts import contact_from_row
from orchestrator.campaign.dnc import DncList

__all__ = ["SpoolFull", "UploadSpool"]

#: Held in memory before the spool moves to a file.
IN_MEMORY_BYTES = 1024 * 1024
_KEYS, _VALUES = b"k", b"v"


class SpoolFull(Exception):
    """The held rows passed the spool's cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the uploaded contacts take over {limit} bytes to hold for the check")
        self.limit = limit


class UploadSpool:
    """An upload sink that keeps rows for a check; a context manager (the file is removed on exit).

    The parser calls :meth:`open`, :meth:`add_contact`, :meth:`add_dnc` and :meth:`place` as it
    calls them on the topic writer; nothing here talks to Kafka.
    """

    def __init__(self, max_bytes: int, in_memory: int = IN_MEMORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self.dnc = DncList()
        self.rows = 0
        self._size = 0
        self._keys: list[str] | None = None
        self._file = tempfile.SpooledTemporaryFile(max_size=in_memory, mode="w+b")  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> UploadSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    async def open(self, spec: CampaignSpec) -> None:
        return None

    async def add_contact(self, row: dict[str, Any]) -> None:
        if row.get("id") == str(self.rows):
            row = {k: v for k, v in row.items() if k != "id"}  # the row number, as read back
        keys = list(row)
        if keys != self._keys:
            self._write(_KEYS, keys)
            self._keys = keys
        self._write(_VALUES, list(row.values()))
        self.rows += 1

    async def add_dnc(self, e164: str) -> None:
        self.dnc.numbers.add(e164)

    async def place(self, spec: CampaignSpec) -> CampaignSpec:
        return spec

    def _write(self, kind: bytes, value: list[Any]) -> None:
        line = kind + orjson.dumps(value) + b"\n"
        self._size += len(line)
        if self._size > self.max_bytes:
            raise SpoolFull(self.max_bytes)
        self._file.write(line)

    def contacts(self, default_region: str | None) -> Iterator[Contact]:
        """The held rows as contacts, in upload order, indexed as the controller indexes them."""
        self._file.seek(0)
        keys: list[str] = []
        index = 0
        for line in self._file:
            value = orjson.loads(line[1:])
            if line[:1] == _KEYS:
                keys = value
                continue
            yield contact_from_row(index, dict(zip(keys, value, strict=True)), default_region)
            index += 1
