"""The headers every record carries: ``type``, ``schema_version`` and W3C ``traceparent``.

A consumer can route, filter or skip a record by its type and schema version without parsing
the value, and the trace context travels with the record from role to role (and on to the
services that read the product's topics). The type is the record's model name, as the AsyncAPI
document and the JSON Schemas name it (``EventEnvelope``, ``CommandEnvelope``, ``Outcome``...).

Headers that come from outside (another service's records on the contacts topic, or anything
on ``voice.commands``) are read defensively: only a well-formed ``traceparent`` is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "SCHEMA_VERSION",
    "TRACEPARENT",
    "TYPE",
    "Headers",
    "record_headers",
    "traceparent_of",
    "valid_traceparent",
]

TYPE = "type"
SCHEMA_VERSION = "schema_version"
TRACEPARENT = "traceparent"

#: Kafka record headers as aiokafka takes and gives them.
Headers = list[tuple[str, bytes]]

_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
#: ``type`` and ``schema_version`` are the same for every record of a kind: encode them once.
_STATIC: dict[tuple[str, int], tuple[tuple[str, bytes], tuple[str, bytes]]] = {}


def valid_traceparent(value: str) -> bool:
    """Version 00 of W3C Trace Context, with non-zero trace and span ids."""
    return len(value) == 55 and _TRACEPARENT.fullmatch(value) is not None


def record_headers(record_type: str, version: int, traceparent: str | None = None) -> Headers:
    static = _STATIC.get((record_type, version))
    if static is None:
        static = _STATIC[(record_type, version)] = (
            (TYPE, record_type.encode()),
            (SCHEMA_VERSION, str(version).encode()),
        )
    headers = list(static)
    if traceparent is not None:
        headers.append((TRACEPARENT, traceparent.encode()))
    return headers


def traceparent_of(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    """The record's trace context, or None when it has none (or a malformed one)."""
    if not headers:
        return None
    for name, value in headers:
        if name == TRACEPARENT:
            if not isinstance(value, bytes) or len(value) != 55:
                return None
            text = value.decode("ascii", "replace")
            return text if valid_traceparent(text) else None
    return None
