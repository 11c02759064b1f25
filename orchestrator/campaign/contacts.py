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

from contracts.bounded import load_json
from contracts.campaign import Contact, ContactsSource
from orchestrator.campaign.numbers import to_e164

__all__ = [
    "ContactFileError",
    "FileContactReader",
    "contact_from_row",
    "csv_columns",
    "csv_row",
    "iter_contacts",
    "jsonl_row",
]

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


def csv_columns(header: list[str]) -> list[str]:
    """The column names of a CSV header, normalised; refused without a number column.

    The refusal names the columns found and nothing else of the file: errors go back to
    whoever submitted the campaign, and must not carry a file's content to them.
    """
    names = [n.strip().lower() for n in header]
    if not any(n in _NUMBER_KEYS for n in names):
        found = ", ".join(repr(n[:40]) for n in names[:20])
        raise ContactFileError(
            f"line 1: no number column (one of {', '.join(_NUMBER_KEYS)}); columns found: {found}"
        )
    return names


def csv_row(names: list[str], values: list[str]) -> dict[str, Any]:
    """One data row as a dict of the header's columns (stripped; extra cells dropped)."""
    return {k: v.strip() for k, v in zip(names, values, strict=False) if k}


def _csv_rows(fh: IO[str], path: str) -> Iterator[dict[str, Any]]:
    reader = csv.reader(fh)
    try:
        header = next(reader, None)
        if header is None:
            return
        names = csv_columns(header)
        for values in reader:
            if values:
                yield csv_row(names, values)
    except csv.Error as err:
        raise ContactFileError(f"{path}:{reader.line_num}: not CSV ({err})") from None
    except UnicodeDecodeError:
        raise ContactFileError(f"{path}:{reader.line_num + 1}: not UTF-8 text") from None


def jsonl_row(line: str | bytes) -> dict[str, Any]:
    """One JSONL contact; ValueError (without the line's text) when it is not a JSON object."""
    try:
        row = load_json(line)
    except orjson.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg})") from None
    if not isinstance(row, dict):
        raise ValueError("a contact is a JSON object")
    return row


def _jsonl_rows(fh: IO[str], path: str) -> Iterator[dict[str, Any]]:
    lineno = 0
    try:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield jsonl_row(line)
            except ValueError as err:
                raise ContactFileError(f"{path}:{lineno}: {err}") from None
    except UnicodeDecodeError:
        raise ContactFileError(f"{path}:{lineno + 1}: not UTF-8 text") from None


def iter_contacts(source: ContactsSource, start: int = 0) -> Iterator[Contact]:
    """Contacts from a CSV/JSONL file, lazily, from data row ``start`` on."""
    path = source.location
    if source.kind in ("topic", "upload"):
        raise ContactFileError("topic sources are read by the controller, not from a file")
    with Path(path).open(encoding="utf-8", newline="") as fh:
        rows = _csv_rows(fh, path) if source.kind == "csv" else _jsonl_rows(fh, path)
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
