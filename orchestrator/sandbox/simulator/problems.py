"""Vonage's error bodies as the simulator returns them (RFC 7807 style: type, title, detail, instance).

The common ones come from :mod:`contracts.errors` (the same builders the product's tests parse);
this module adds the few the simulator alone needs (Application API 401 wording, "too early",
list validation, injected 5xx).
"""

from __future__ import annotations

from typing import Any

from contracts.errors import (
    ERROR_TYPE_BASE,
    bad_request,
    content_type_header,
    forbidden,
    internal_error,
    invalid_json,
    not_found,
    payload_validation,
    problem,
    rate_limited,
    unauthorized,
    wrong_verb,
)

__all__ = [
    "application_list_validation",
    "bad_credentials",
    "bad_request",
    "content_type_header",
    "forbidden",
    "invalid_json",
    "not_found",
    "payload_validation",
    "rate_limited",
    "server_error",
    "too_early",
    "too_large",
    "unauthorized",
    "wrong_verb",
]


def bad_credentials() -> dict[str, Any]:
    """Application API 401 (``common_errors.yml`` BadCredentialsError wording)."""
    return problem(
        f"{ERROR_TYPE_BASE}#unauthorized",
        "Invalid credentials supplied",
        "You did not provide correct credentials.",
    )


def too_early() -> dict[str, Any]:
    """KB-400: the platform needs 1-2 s to set a call up before it accepts changes to it."""
    return bad_request("The call is not ready to be modified yet; wait and retry the request.")


def too_large(limit: int) -> dict[str, Any]:
    """413 for a body over the simulator's cap (Vonage's gateway refuses large bodies too)."""
    return problem(
        f"{ERROR_TYPE_BASE}#payload-too-large",
        "Payload Too Large",
        f"The request body is larger than {limit} bytes.",
    )


def application_list_validation(invalid: list[tuple[str, str]]) -> dict[str, Any]:
    return problem(
        f"{ERROR_TYPE_BASE}/application#list-validation",
        "Bad Request",
        "The request failed due to validation errors",
        invalid_parameters=invalid,
    )


_TITLES = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def server_error(status: int) -> dict[str, Any]:
    """An injected 5xx."""
    if status == 500:
        return internal_error()
    return problem(
        f"{ERROR_TYPE_BASE}#internal-error",
        _TITLES.get(status, "Server Error"),
        "The service is temporarily unavailable. Please retry.",
    )
