"""Do-not-call lists: files of numbers, normalised to E.164 so any spelling matches.

A line holds one number (the first CSV column is used when there are commas); blank lines and
lines starting with ``#`` are skipped, and so is a header line without digits. Lines that are not
a possible phone number are counted and reported by line number, never silently ignored, and
never quoted: a report must not carry a file's content back to whoever asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.campaign.numbers import to_e164

__all__ = ["DncList", "dnc_candidate", "load_dnc"]


@dataclass
class DncList:
    numbers: set[str] = field(default_factory=set)
    rejected: list[tuple[str, int]] = field(default_factory=list)  # (file, line)

    def __contains__(self, number: object) -> bool:
        return number in self.numbers

    def __len__(self) -> int:
        return len(self.numbers)


def dnc_candidate(line: str) -> str | None:
    """The text of a line that should be a number; None for blank, comment and header lines."""
    text = line.split(",", 1)[0].strip().strip('"')
    if not text or text.startswith("#"):
        return None
    if not any(ch.isdigit() for ch in text):
        return None  # a header such as "number"
    return text


def load_dnc(paths: list[str], default_region: str | None = "US") -> DncList:
    dnc = DncList()
    for path in paths:
        with Path(path).open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                text = dnc_candidate(line)
                if text is None:
                    continue
                e164 = to_e164(text, default_region)
                if e164 is None:
                    dnc.rejected.append((path, lineno))
                else:
                    dnc.numbers.add(e164)
    return dnc
