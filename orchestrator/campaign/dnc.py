"""Do-not-call lists: files of numbers, normalised to E.164 so any spelling matches.

A line holds one number (the first CSV column is used when there are commas); blank lines and
lines starting with ``#`` are skipped, and so is a header line without digits. Lines that are not
a possible phone number are counted and reported, never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.campaign.numbers import to_e164

__all__ = ["DncList", "load_dnc"]


@dataclass
class DncList:
    numbers: set[str] = field(default_factory=set)
    rejected: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, text)

    def __contains__(self, number: object) -> bool:
        return number in self.numbers

    def __len__(self) -> int:
        return len(self.numbers)


def load_dnc(paths: list[str], default_region: str | None = "US") -> DncList:
    dnc = DncList()
    for path in paths:
        with Path(path).open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                text = line.split(",", 1)[0].strip().strip('"')
                if not text or text.startswith("#"):
                    continue
                if not any(ch.isdigit() for ch in text):
                    continue  # a header such as "number"
                e164 = to_e164(text, default_region)
                if e164 is None:
                    dnc.rejected.append((path, lineno, text[:40]))
                else:
                    dnc.numbers.add(e164)
    return dnc
