"""The ``ctx`` path segment of our webhook URLs: a call's flow variables, signed.

A named flow is rendered by the ingress from the answer webhook, and the ingress is stateless and
must answer within Vonage's 5 s without a Kafka round trip, so a contact's variables (its name,
its appointment date) travel in the answer URL the campaign hands Vonage, and later webhooks carry
them on in the URLs the rendered NCCO holds.

Why signed rather than looked up by ``call_ref``: a lookup needs state the ingress does not have
(the controller's, on another topic) on the answer's critical path. Why signed at all: Vonage's
webhook JWT covers the body (``payload_hash``), not the URL, so a URL is only as trustworthy as
whoever could put it in a create-call request or a rendered NCCO; what the callee hears must not
depend on that. An HMAC with a key derived from the signature secret (which the ingress must have
anyway, and which every role of one deployment shares) makes a variable we did not write fail
verification; a key of its own for this use (domain separation) means a ctx MAC can never be
replayed as anything else. Rotation: sign with the first secret, accept any.

Signed tokens are ``s`` + a 22-character MAC + the base64url JSON body; unsigned ones (a
deployment that accepts unsigned webhooks and has no secret) are the bare body, which always
starts with ``ey`` (base64 of ``{"``), so the two never collide.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from contracts.flow import Flow, VarValue

__all__ = [
    "MAX_CTX_CHARS",
    "START_STEP",
    "FlowRenderError",
    "ctx_keys",
    "decode_ctx",
    "encode_ctx",
    "pack_ctx",
]

#: Upper bound of the ``ctx`` body, to stay well inside URL length limits.
MAX_CTX_CHARS = 1800
#: The step segment that means "the flow's start" (the campaign does not load the flows).
START_STEP = "_"
_MAC_CHARS = 22
_PURPOSE = b"voice-orchestrator/flow-ctx/v1"


class FlowRenderError(ValueError):
    """A step could not be rendered for this call (bad per-call value, bad ctx, unknown step ...).

    Defined here, where the first of its causes (the ctx segment) is, so ``handlers.flow`` can
    import this module and not the other way round.
    """


def ctx_keys(secrets: Sequence[str]) -> list[bytes]:
    """The MAC keys for ``secrets`` (the signature secrets, first one signs)."""
    return [hmac.new(s.encode(), _PURPOSE, hashlib.sha256).digest() for s in secrets]


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:_MAC_CHARS]


def pack_ctx(attempt: int, variables: Mapping[str, VarValue], key: bytes | None) -> str | None:
    """The token for a retry counter and variables (None when there is nothing to carry)."""
    if not attempt and not variables:
        return None
    doc: dict[str, Any] = {}
    if attempt:
        doc["a"] = attempt
    if variables:
        doc["v"] = dict(variables)
    body = base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()
    if len(body) > MAX_CTX_CHARS:
        raise FlowRenderError(
            f"per-call variables take {len(body)} URL characters (max {MAX_CTX_CHARS}); "
            "carry less in flow variables"
        )
    return body if key is None else "s" + _mac(key, body) + body


def encode_ctx(
    attempt: int, variables: Mapping[str, VarValue], flow: Flow, key: bytes | None = None
) -> str | None:
    """The retry counter and the flow's carried variables that differ from its defaults."""
    carried = flow.carried_variables()
    changed = {
        k: v
        for k, v in variables.items()
        if k in carried and (k not in flow.variables or flow.variables[k] != v)
    }
    return pack_ctx(attempt, changed, key)


def decode_ctx(token: str | None, keys: Sequence[bytes] = ()) -> tuple[int, dict[str, VarValue]]:
    """Inverse of :func:`pack_ctx`. With ``keys``, only a token signed with one of them is
    accepted; without, a signed token is read unverified (nothing to verify it with)."""
    if not token:
        return 0, {}
    if len(token) > MAX_CTX_CHARS + 1 + _MAC_CHARS:
        raise FlowRenderError("ctx: too long")
    body = token
    if token.startswith("s"):
        mac, body = token[1 : 1 + _MAC_CHARS], token[1 + _MAC_CHARS :]
        if keys and not any(hmac.compare_digest(mac, _mac(k, body)) for k in keys):
            raise FlowRenderError("ctx: signature does not verify")
    elif keys:
        raise FlowRenderError("ctx: not signed")
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        raise FlowRenderError("ctx: not base64url JSON") from None
    if not isinstance(doc, dict):
        raise FlowRenderError("ctx: not an object")
    attempt = doc.get("a", 0)
    variables = doc.get("v", {})
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 0 <= attempt <= 100:
        raise FlowRenderError("ctx: bad attempt")
    if not isinstance(variables, dict) or not all(
        isinstance(v, str | int | float | bool) or v is None for v in variables.values()
    ):
        raise FlowRenderError("ctx: variables must be scalars")
    return attempt, variables
