"""The product's HTTP answers: JSON bodies, and one error body for every API (RFC 9457).

Every refusal of the ingress (webhooks, the control API, campaigns, a request head too large)
is a problem document, ``application/problem+json``::

    {"type": "urn:voice-orchestrator:problem:invalid-webhook", "title": "invalid webhook",
     "status": 422, "detail": "...", "reason": "..."}

``type`` names the kind of problem and ``title`` says it in words (the short label earlier
versions answered as ``error``); ``detail`` says what was wrong with this request. ``reason`` repeats ``detail``: it is the member earlier versions answered with
(``{"error", "reason"}``), kept so their clients keep working. A refused campaign adds ``fields``
(each invalid field of the spec). Vonage answers in the same RFC 9457 shape (``type``,
``title``, ``detail``, ``instance``), so one parser reads both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, Field
from starlette.responses import Response

__all__ = [
    "PROBLEM_JSON",
    "FieldProblem",
    "Problem",
    "json_response",
    "problem",
    "problem_bytes",
    "too_large",
]

PROBLEM_JSON = "application/problem+json"
#: Problem types are URNs (RFC 9457 allows URIs that are not meant to be dereferenced).
TYPE_BASE = "urn:voice-orchestrator:problem:"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error answer of the product's APIs (RFC 9457 problem details)."""

    type: str = Field(description="The kind of problem (a URN).")
    title: str = Field(description="The kind of problem, in words.")
    status: int
    detail: str = Field(description="What was wrong with this request.")
    reason: str = Field(description="The same as detail (the member earlier versions used).")
    fields: list[FieldProblem] | None = Field(
        None, description="A refused campaign: each invalid field of the spec."
    )


def _body(
    status: int, title: str, detail: str, fields: list[FieldProblem] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "reason": detail,
    }
    if fields is not None:
        body["fields"] = [f.model_dump() for f in fields]
    return body


def problem_bytes(
    status: int, title: str, detail: str, fields: list[FieldProblem] | None = None
) -> bytes:
    """The problem document itself (for answers written below the ASGI layer)."""
    return orjson.dumps(_body(status, title, detail, fields))


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    fields: list[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A refusal: ``title`` is the kind ("invalid webhook"), ``detail`` this request's reason."""
    return Response(
        problem_bytes(status, title, detail, fields),
        status,
        headers=dict(headers) if headers else None,
        media_type=PROBLEM_JSON,
    )


def too_large(detail: str) -> Response:
    """413 for a body refused part-read: the connection closes instead of draining the rest."""
    return problem(413, "too large", detail, headers={"Connection": "close"})


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer (orjson)."""
    return Response(
        orjson.dumps(body),
        status,
        headers=dict(headers) if headers else None,
        media_type="application/json",
    )
