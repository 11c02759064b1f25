"""Lazy contact readers: rows are read in small batches as the campaign needs them.

Memory holds one batch, never the list, so a 10-million-row file costs the same as a 10-row one.
A reader starts at any row (``start``): a restored controller continues at its saved cursor.
Row numbers (0-based, data rows only) are the contacts' ``index``; ``id`` defaults to it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from contracts.campaign import Contact, ContactsSource
from orchestrator.campaign.numbers import to_e164

__all__ = ["ContactFileError", "FileContactReader", "contact_from_row", "iter_contacts"]

_NUMBER_KEYS = ("number", "phone", "to", "msisdn")
_KNOWN = frozenset({*_NUMBER_KEYS, "name", "timezone", "id", "variables"})


class ContactFileError(ValueError):
    """A contact file that cannot be read; names the file and row."""


def contact_from_row(index: int, row: Mapping[str, Any], default_region: str | None) -> Contact:
    raw = next((str(row[k]) for k in _NUMBER_KEYS if row.get(k) not in (None, "")), "")
    e164 = to_e164(raw, default_region)
    variables = {str(k): str(v) for k, v in row.items() if k not in _KNOWN and v is not None}
    nested = row.get("variables")
    if isinstance(nested, Mapping):
        variables.update({str(k): str(v) for k, v in nested.items()})
    contact_id = str(row.get("id") or index)
    return Contact(
        index=index,
        contact_id=contact_id,
        number=e164 or raw,
        valid=e164 is not None,
        name=(str(row["name"]) if row.get("name") not in (None, "") else None),
        timezone=(str(row["timezone"]) if row.get("timezone") else None),
        variables=variables,
    )


def _csv_rows(fh: IO[str]) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(fh)
    if reader.fieldnames is None:
        return
    names = [n.strip().lower() for n in reader.fieldnames]
    if not any(n in _NUMBER_KEYS for n in names):
        raise ContactFileError(f"no number column (one of {', '.join(_NUMBER_KEYS)}): {names}")
    reader.fieldnames = names
    for row in reader:
        yield {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}


def _jsonl_rows(fh: IO[str], path: str) -> Iterator[dict[str, Any]]:
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            raise ContactFileError(f"{path}:{lineno}: not JSON ({err})") from None
        if not isinstance(row, dict):
            raise ContactFileError(f"{path}:{lineno}: a contact is a JSON object")
        yield row


def iter_contacts(source: ContactsSource, start: int = 0) -> Iterator[Contact]:
    """Contacts from a CSV/JSONL file, lazily, from data row ``start`` on."""
    path = source.location
    if source.kind == "topic":
        raise ContactFileError("topic sources are read by the controller, not from a file")
    with Path(path).open(encoding="utf-8", newline="") as fh:
        rows = _csv_rows(fh) if source.kind == "csv" else _jsonl_rows(fh, path)
        for index, row in enumerate(rows):
            if index < start:
                continue
            yield contact_from_row(index, row, source.default_region)


class FileContactReader:
    """Batches of contacts on demand; ``eof`` once the file is exhausted."""

    def __init__(self, source: ContactsSource, start: int = 0) -> None:
        self._it = iter_contacts(source, start)
        self.eof = False
        self.position = start  # index of the next row read() returns

    def read(self, n: int) -> list[Contact]:
        if self.eof or n <= 0:
            return []
        batch = list(islice(self._it, n))
        if batch:
            self.position = batch[-1].index + 1
        if len(batch) < n:
            self.eof = True
        return batch

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
