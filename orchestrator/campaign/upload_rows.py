"""Rows from an uploaded file as it streams in: lines, CSV records, JSONL objects, DNC numbers.

Uploads arrive in chunks of any size; these parsers take the bytes as they come, keep at most
one unfinished line (or one CSV record whose quoted field spans lines), and refuse one longer
than :data:`MAX_LINE_BYTES`. Errors name the line and nothing of its text: the reason goes back
over HTTP, and whatever a file holds is not the refusal's to repeat.
"""

from __future__ import annotations

import csv
from typing import Any

from orchestrator.campaign.contacts import ContactFileError, csv_columns, csv_row, jsonl_row
from orchestrator.campaign.dnc import dnc_candidate
from orchestrator.campaign.numbers import to_e164

__all__ = [
    "MAX_LINE_BYTES",
    "CsvRows",
    "DncRows",
    "JsonlRows",
    "LineSplitter",
    "UploadRowError",
]

#: One line (or one CSV record) at most; a contact row is a few hundred bytes.
MAX_LINE_BYTES = 64 * 1024

Line = tuple[int, str]


class UploadRowError(ValueError):
    """A line that cannot be used; the message names its number only."""


class LineSplitter:
    """Bytes in, numbered UTF-8 lines out (each with its line break, as ``csv`` wants)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._rest = b""
        self._lineno = 0

    def feed(self, data: bytes) -> list[Line]:
        parts = (self._rest + data).split(b"\n")
        self._rest = parts.pop()
        if len(self._rest) > self.max_line:
            raise UploadRowError(f"line {self._lineno + 1}: longer than {self.max_line} bytes")
        return [self._line(p + b"\n") for p in parts]

    def finish(self) -> list[Line]:
        rest, self._rest = self._rest, b""
        return [self._line(rest)] if rest else []

    def _line(self, raw: bytes) -> Line:
        self._lineno += 1
        if len(raw) > self.max_line + 1:
            raise UploadRowError(f"line {self._lineno}: longer than {self.max_line} bytes")
        try:
            text = raw.decode("utf-8-sig" if self._lineno == 1 else "utf-8")
        except UnicodeDecodeError:
            raise UploadRowError(f"line {self._lineno}: not UTF-8 text") from None
        return self._lineno, text


class CsvRows:
    """A CSV contact list: the header's columns, then one dict per data row.

    A record ends at a line break outside quotes (RFC 4180 doubles quotes inside a quoted
    field, so an odd count of ``"`` so far means the field goes on into the next line).
    """

    def __init__(self, max_record: int = MAX_LINE_BYTES) -> None:
        self.max_record = max_record
        self.names: list[str] | None = None
        self._record: list[str] = []
        self._size = 0
        self._quotes = 0
        self._start = 0

    def lines(self, lines: list[Line]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for lineno, text in lines:
            if not self._record:
                self._start = lineno
            self._record.append(text)
            self._size += len(text)
            self._quotes += text.count('"')
            if self._size > self.max_record:
                raise UploadRowError(f"line {self._start}: a row over {self.max_record} bytes")
            if self._quotes % 2:
                continue
            record, self._record, self._size, self._quotes = self._record, [], 0, 0
            try:
                values = next(csv.reader(record), [])
            except csv.Error as err:
                raise UploadRowError(f"line {self._start}: not CSV ({err})") from None
            if self.names is None:
                try:
                    self.names = csv_columns(values)
                except ContactFileError as err:
                    raise UploadRowError(str(err)) from None
            elif values:
                out.append(csv_row(self.names, values))
        return out

    def finish(self) -> None:
        if self._record:
            raise UploadRowError(f"line {self._start}: a quoted field is never closed")
        if self.names is None:
            raise UploadRowError("line 1: no header (an empty file)")


class JsonlRows:
    """A JSONL contact list: one JSON object per non-blank line."""

    def lines(self, lines: list[Line]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for lineno, text in lines:
            if not text.strip():
                continue
            try:
                out.append(jsonl_row(text))
            except ValueError as err:
                raise UploadRowError(f"line {lineno}: {err}") from None
        return out

    def finish(self) -> None:
        return None


class DncRows:
    """A DNC list: E.164 numbers out; lines that are no number are kept by number only."""

    def __init__(self, default_region: str | None) -> None:
        self.default_region = default_region
        self.rejected: list[int] = []

    def lines(self, lines: list[Line]) -> list[str]:
        out: list[str] = []
        for lineno, text in lines:
            candidate = dnc_candidate(text)
            if candidate is None:
                continue
            e164 = to_e164(candidate, self.default_region)
            if e164 is None:
                self.rejected.append(lineno)
            else:
                out.append(e164)
        return out
