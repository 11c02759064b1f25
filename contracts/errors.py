"""Vonage error bodies: RFC 7807 problem details (DIGEST §6), and builders the simulator uses.

Every member is optional in RFC 7807 and Vonage's bodies vary (a 500 without ``detail``, an old
``{"Error": "Bad Request"}``), so the model is tolerant and keeps unknown members.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts._base import VonageModel

__all__ = [
    "BY_STATUS",
    "ERROR_TYPE_BASE",
    "InvalidParameter",
    "ProblemDetails",
    "accept_header",
    "bad_request",
    "content_type_header",
    "forbidden",
    "internal_error",
    "invalid_json",
    "not_found",
    "parse_problem",
    "payload_validation",
    "problem",
    "rate_limited",
    "unauthorized",
    "wrong_verb",
]

ERROR_TYPE_BASE = "https://developer.nexmo.com/api-errors"
_VONAGE_TYPE_BASE = "https://developer.vonage.com/api-errors"


class InvalidParameter(VonageModel):
    name: str
    reason: str


class ProblemDetails(VonageModel):
    """A Vonage error response body."""

    type: str | None = None
    title: str | None = None
    detail: str | None = None
    instance: str | None = None
    invalid_parameters: list[InvalidParameter] | None = None

    @property
    def anchor(self) -> str | None:
        """``https://.../api-errors#rate-limit`` -> ``rate-limit``."""
        if self.type and "#" in self.type:
            return self.type.rsplit("#", 1)[1]
        return None


def _instance(instance: str | None) -> str:
    return instance if instance is not None else uuid.uuid4().hex


def problem(
    type_: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    invalid_parameters: list[tuple[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A JSON-ready problem body. ``instance`` defaults to a fresh random trace id."""
    body: dict[str, Any] = {"type": type_, "title": title}
    if detail is not None:
        body["detail"] = detail
    body["instance"] = _instance(instance)
    if invalid_parameters:
        body["invalid_parameters"] = [{"name": n, "reason": r} for n, r in invalid_parameters]
    body.update(extra)
    return body


def unauthorized(*, instance: str | None = None) -> dict[str, Any]:
    """401: missing/invalid credentials or a bad/expired JWT."""
    return problem(
        f"{ERROR_TYPE_BASE}#unauthorized",
        "Unauthorized",
        "You did not provide correct credentials.",
        instance=instance,
    )


def forbidden(*, instance: str | None = None) -> dict[str, Any]:
    """403."""
    return problem(
        f"{_VONAGE_TYPE_BASE}#forbidden",
        "Forbidden",
        "Your account does not have permission to perform this action.",
        instance=instance,
    )


def not_found(resource_id: str, *, instance: str | None = None) -> dict[str, Any]:
    """404: unknown id, no access, or (Voice) the call lives in another region."""
    return problem(
        f"{ERROR_TYPE_BASE}#not-found",
        "Not Found",
        f"ID '{resource_id}' does not exist, or you do not have access",
        instance=instance,
    )


def wrong_verb(method: str, *, instance: str | None = None) -> dict[str, Any]:
    """405."""
    return problem(
        f"{ERROR_TYPE_BASE}#wrong-verb",
        "Request method not allowed",
        f"Request method '{method}' not supported",
        instance=instance,
    )


def accept_header(*, instance: str | None = None) -> dict[str, Any]:
    """406."""
    return problem(
        f"{ERROR_TYPE_BASE}#accept-header",
        "Invalid Accept header",
        "Invalid Accept header provided. Must be one of the following: 'application/json'",
        instance=instance,
    )


def content_type_header(*, instance: str | None = None) -> dict[str, Any]:
    """415."""
    return problem(
        f"{ERROR_TYPE_BASE}#content-type-header",
        "Unsupported Content-Type header",
        "Unsupported Content-Type header provided. Must be one of the following: "
        "'application/json'",
        instance=instance,
    )


def rate_limited(*, instance: str | None = None) -> dict[str, Any]:
    """429 as seen in the Vonage SDK fixture; Vonage documents no Retry-After header."""
    return problem(
        f"{_VONAGE_TYPE_BASE}#rate-limit",
        "Rate Limit Hit",
        "Please wait, then retry your request",
        instance=instance,
    )


def invalid_json(detail: str = "The request body is not valid JSON", **kw: Any) -> dict[str, Any]:
    """400 for a body that does not parse."""
    return problem(f"{ERROR_TYPE_BASE}#invalid-json", "Invalid JSON", detail, **kw)


def bad_request(
    detail: str,
    *,
    invalid_parameters: list[tuple[str, str]] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """400: validation failure, or Voice's "too early" update right after create (KB-400)."""
    return problem(
        f"{ERROR_TYPE_BASE}#bad-request",
        "Bad Request",
        detail,
        instance=instance,
        invalid_parameters=invalid_parameters,
    )


def payload_validation(
    invalid_parameters: list[tuple[str, str]], *, instance: str | None = None
) -> dict[str, Any]:
    """400 from the Application API with ``invalid_parameters``."""
    return problem(
        f"{ERROR_TYPE_BASE}/application#payload-validation",
        "Bad Request",
        "The request failed due to validation errors",
        instance=instance,
        invalid_parameters=invalid_parameters,
    )


def internal_error(*, instance: str | None = None) -> dict[str, Any]:
    """500 (Vonage's own body carries no ``detail``)."""
    return problem(_VONAGE_TYPE_BASE, "Internal Server Error", instance=instance)


#: Builders by HTTP status, for the simulator's fault injection.
BY_STATUS: dict[int, Any] = {
    401: unauthorized,
    403: forbidden,
    405: lambda **kw: wrong_verb("TRACE", **kw),
    406: accept_header,
    415: content_type_header,
    429: rate_limited,
    500: internal_error,
}


def parse_problem(body: Any) -> ProblemDetails | None:
    """Best effort: a problem body from whatever an error response carried, else ``None``."""
    if not isinstance(body, dict):
        return None
    try:
        return ProblemDetails.model_validate(body)
    except ValueError:
        return None
