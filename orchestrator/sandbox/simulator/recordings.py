"""Recording files served at ``GET /v1/files/{id}`` (JWT of the recording's application only).

Files are tiny but real: a silent WAV (16-bit, 16 kHz mono) or a run of silent MPEG-1 Layer III
frames, so a client can download and even decode them. The store keeps the newest ``max_files``.
"""

from __future__ import annotations

import struct
import uuid
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Recording", "RecordingStore", "make_audio"]

_MAX_SECONDS = 2.0  # cap the bytes generated per file; the event still reports the real length


@dataclass(frozen=True, slots=True)
class Recording:
    id: str
    app_id: str
    content_type: str
    data: bytes


def _wav(seconds: float, rate: int = 16000) -> bytes:
    n = int(min(seconds, _MAX_SECONDS) * rate)
    data = b"\x00\x00" * n
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(data)) + data


def _mp3(seconds: float) -> bytes:
    # MPEG-1 Layer III, 32 kbps, 32 kHz, mono: 144 * 32000 / 32000 = 144-byte frames of 36 ms.
    header = bytes([0xFF, 0xFB, 0x18, 0xC4])
    frame = header + b"\x00" * (144 - len(header))
    frames = max(1, int(min(seconds, _MAX_SECONDS) / 0.036))
    return frame * frames


def make_audio(fmt: str, seconds: float) -> tuple[bytes, str]:
    if fmt == "wav":
        return _wav(seconds), "audio/wav"
    if fmt == "ogg":
        # Not a real Ogg encoder: serve WAV bytes, labelled honestly.
        return _wav(seconds), "audio/wav"
    return _mp3(seconds), "audio/mpeg"


class RecordingStore:
    def __init__(self, max_files: int = 5000) -> None:
        self._files: OrderedDict[str, Recording] = OrderedDict()
        self._max = max_files

    def __len__(self) -> int:
        return len(self._files)

    def add(self, app_id: str, fmt: str, seconds: float) -> Recording:
        data, ctype = make_audio(fmt, seconds)
        rec = Recording(str(uuid.uuid4()), app_id, ctype, data)
        self._files[rec.id] = rec
        while len(self._files) > self._max:
            self._files.popitem(last=False)
        return rec

    def get(self, file_id: str) -> Recording | None:
        return self._files.get(file_id)

    def clear(self) -> None:
        self._files.clear()
