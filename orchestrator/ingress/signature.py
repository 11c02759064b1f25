"""Verification of Vonage signed webhooks (HS256 JWT in ``Authorization: Bearer``).

The SDKs check only the HMAC (DIGEST §3). That is not enough for an ingress that stores events:
without ``payload_hash`` a captured token could be attached to any body, and without ``iat``/``jti``
checks a captured request could be replayed for ever. So this verifier checks all four:

1. the HS256 signature, against every configured secret (several are accepted during rotation);
2. ``payload_hash`` equals the hex SHA-256 of the payload (the raw POST body; for a GET, the raw
   query string, see :func:`payload_for_get`);
3. ``iat`` lies inside a window around now;
4. ``jti`` was not seen before (a bounded cache that only has to remember tokens inside the window,
   since older tokens fail check 3 anyway).

A ``jti`` is *reserved* while its request is being processed and *committed* only once the event is
stored. If storing fails (503), the reservation is released, so a retry that carries the very same
token is not refused as a replay: refusing it would lose a genuine event.

Every failure has a short, stable ``reason`` (used as a metric label and in the 401 body).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "REASONS",
    "Claims",
    "JtiCache",
    "SignatureError",
    "SignatureVerifier",
    "payload_hash",
    "sign_for_tests",
    "sign_hs256",
]

#: Every failure reason this module can give (stable metric label values).
REASONS = (
    "missing",
    "malformed",
    "bad_algorithm",
    "bad_signature",
    "payload_hash_missing",
    "payload_hash_mismatch",
    "iat_missing",
    "stale",
    "future",
    "jti_missing",
    "replayed",
    "in_flight",
)


class SignatureError(Exception):
    """The request is not a genuine, fresh Vonage webhook; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def payload_hash(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


_EMPTY_HASH = payload_hash(b"")


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified claims of one webhook token."""

    jti: str
    iat: float
    api_key: str | None
    application_id: str | None
    secret_index: int
    raw: dict[str, Any]


class JtiCache:
    """Seen token ids, bounded in size and in time.

    An entry only needs to live as long as its token could pass the ``iat`` check (``ttl``); after
    that the token is refused as stale anyway. ``max_entries`` bounds memory under a flood: when
    full, the oldest entry is dropped early. Size it above (webhook rate x ``ttl``); the default
    200,000 covers ~550 webhooks/s sustained over a 6-minute window.
    """

    def __init__(self, ttl: float, max_entries: int = 200_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # jti -> (expires_at, committed)
        self._entries: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        entries = self._entries
        # Insertion order is expiry order (expiry = insertion time + ttl).
        while entries:
            expires, _ = next(iter(entries.values()))
            if expires > now:
                break
            entries.popitem(last=False)

    def reserve(self, jti: str, now: float) -> None:
        """Claim ``jti`` for a request in progress; raise if it was used or is in use."""
        self._expire(now)
        found = self._entries.get(jti)
        if found is not None:
            raise SignatureError("replayed" if found[1] else "in_flight")
        self._entries[jti] = (now + self.ttl, False)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def commit(self, jti: str) -> None:
        found = self._entries.get(jti)
        if found is not None:
            self._entries[jti] = (found[0], True)

    def release(self, jti: str) -> None:
        found = self._entries.get(jti)
        if found is not None and not found[1]:
            del self._entries[jti]


class SignatureVerifier:
    """Checks one request's token; see the module docstring for what is checked and why.

    ``max_age`` is how old ``iat`` may be (Vonage retries within seconds, and the answer URL must
    answer within 5 s, so minutes are generous); ``max_skew`` how far in the future it may be
    (clock drift between Vonage and us).
    """

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        max_age: float = 300.0,
        max_skew: float = 60.0,
        jti_cache_size: int = 200_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("at least one signature secret is required")
        self._keys = [s.encode() for s in secrets]
        self.max_age = max_age
        self.max_skew = max_skew
        self.clock = clock
        self.jti = JtiCache(ttl=max_age + max_skew, max_entries=jti_cache_size)

    @staticmethod
    def bearer(authorization: str | None) -> str:
        if not authorization:
            raise SignatureError("missing", "no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SignatureError("malformed", "expected 'Authorization: Bearer <jwt>'")
        return token.strip()

    def _decode(self, token: str) -> tuple[dict[str, Any], int]:
        # JWS compact form checked by hand (RFC 7515): three base64url parts, HS256 over the first
        # two. Simpler to audit than a general JWT library, and a few microseconds per request.
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 8192:
            raise SignatureError("malformed", "not a JWT")
        try:
            header = orjson.loads(_b64decode(parts[0]))
            signature = _b64decode(parts[2])
        except (ValueError, binascii.Error):
            raise SignatureError("malformed", "not a JWT") from None
        if not isinstance(header, dict):
            raise SignatureError("malformed", "JWT header is not an object")
        if header.get("alg") != "HS256":
            raise SignatureError("bad_algorithm", f"alg must be HS256, got {header.get('alg')!r}")
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        index = next(
            (
                i
                for i, key in enumerate(self._keys)
                if hmac.compare_digest(
                    hmac.new(key, signing_input, hashlib.sha256).digest(), signature
                )
            ),
            None,
        )
        if index is None:
            raise SignatureError("bad_signature", "signature matches no configured secret")
        try:
            claims = orjson.loads(_b64decode(parts[1]))
        except (ValueError, binascii.Error):
            raise SignatureError("malformed", "JWT claims are not base64url JSON") from None
        if not isinstance(claims, dict):
            raise SignatureError("malformed", "JWT claims are not an object")
        return claims, index

    def verify(self, authorization: str | None, payload: bytes, *, is_get: bool = False) -> Claims:
        """Verify and *reserve* the token's ``jti``; call :meth:`settle` when the request ends."""
        token = self.bearer(authorization)
        claims, index = self._decode(token)

        expected = claims.get("payload_hash")
        if not isinstance(expected, str) or not expected:
            raise SignatureError("payload_hash_missing", "token has no payload_hash claim")
        actual = payload_hash(payload)
        if not hmac.compare_digest(expected.lower(), actual) and not (
            # GET: the request has no body. We bind the query string (our reading of "the request
            # payload"), but also accept the hash of the empty body, which is what a signer that
            # hashes the HTTP body produces; the token itself is still signed and single-use.
            is_get and hmac.compare_digest(expected.lower(), _EMPTY_HASH)
        ):
            raise SignatureError("payload_hash_mismatch", "payload_hash differs from the payload")

        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise SignatureError("iat_missing", "token has no numeric iat claim")
        now = self.clock()
        if iat < now - self.max_age:
            raise SignatureError("stale", f"iat is {int(now - iat)} s old")
        if iat > now + self.max_skew:
            raise SignatureError("future", f"iat is {int(iat - now)} s in the future")

        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise SignatureError("jti_missing", "token has no jti claim")
        self.jti.reserve(jti, now)

        api_key = claims.get("api_key")
        app_id = claims.get("application_id")
        return Claims(
            jti=jti,
            iat=float(iat),
            api_key=api_key if isinstance(api_key, str) else None,
            application_id=app_id if isinstance(app_id, str) else None,
            secret_index=index,
            raw=claims,
        )

    def settle(self, claims: Claims, *, stored: bool) -> None:
        """Commit the ``jti`` if the request's event was stored, else release it for a retry."""
        if stored:
            self.jti.commit(claims.jti)
        else:
            self.jti.release(claims.jti)


def sign_hs256(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWS compact token (the format Vonage signs webhooks with)."""
    header = _b64encode(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64encode(orjson.dumps(claims))
    sig = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64encode(sig)}"


def sign_for_tests(
    secret: str,
    payload: bytes,
    *,
    iat: float | None = None,
    jti: str | None = None,
    **extra: Any,
) -> str:
    """Mint a token the way Vonage does (tests and the benchmark use it)."""
    import uuid

    claims: dict[str, Any] = {
        "iat": int(time.time() if iat is None else iat),
        "jti": jti or str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": payload_hash(payload),
        "api_key": "local",
    }
    claims.update(extra)
    return sign_hs256(claims, secret)
