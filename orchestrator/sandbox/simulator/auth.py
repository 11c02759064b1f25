"""Credentials, both directions: what the simulator checks and what it signs.

- Voice API requests carry ``Authorization: Bearer <JWT>``, RS256, signed with an application's
  private key; the ``application_id`` claim names the application whose public key verifies it.
- Application API requests carry HTTP Basic ``api_key:api_secret``.
- Webhooks to the product carry an HS256 JWT signed with the account's signature secret, with
  ``payload_hash`` = hex SHA-256 of the exact body bytes (DIGEST §3).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "AuthFailure",
    "JwtVerifier",
    "check_basic",
    "generate_key_pair",
    "load_public_key",
    "mint_application_jwt",
    "public_key_from_private",
    "sign_webhook",
]


class AuthFailure(Exception):
    """Why a credential was refused (the reason goes to the ledger, never to the client)."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    private_pem: str
    public_pem: str


def generate_key_pair(bits: int = 2048) -> KeyPair:
    """An RSA key pair as PEM text: PKCS#8 private key (the format the Vonage SDKs accept)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private, public)


def load_public_key(pem: str | bytes) -> Any:
    """Parse a PEM public key; raises ``ValueError`` with a short reason."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise ValueError("not a PEM public key") from err
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("only RSA public keys are supported")
    return key


def public_key_from_private(pem: str | bytes) -> str:
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def mint_application_jwt(
    application_id: str, private_key_pem: str | bytes, *, ttl: int = 900, **claims: Any
) -> str:
    """A Voice API JWT exactly like the SDKs mint it (tests and examples use this)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "application_id": application_id,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "exp": now + ttl,
    }
    payload.update(claims)
    return jwt.encode(payload, private_key_pem, algorithm="RS256", headers={"typ": "JWT"})


class JwtVerifier:
    """Verifies RS256 Voice API tokens against the issuing application's public key.

    Verified tokens are cached (bounded LRU) until their ``exp``: clients that reuse a token for
    many requests (as our dispatcher does) cost one dict lookup instead of an RSA verification.
    """

    def __init__(
        self,
        public_key_of: Callable[[str], Any | None],
        *,
        leeway: float = 5.0,
        cache_size: int = 4096,
    ) -> None:
        self._public_key_of = public_key_of
        self._leeway = leeway
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._cache_size = cache_size

    def forget(self) -> None:
        self._cache.clear()

    def verify(self, authorization: str | None, now: float | None = None) -> str:
        """The application id of a valid ``Bearer`` token; :class:`AuthFailure` otherwise."""
        if not authorization:
            raise AuthFailure("missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthFailure("not a Bearer token")
        token = token.strip()
        t = time.time() if now is None else now
        hit = self._cache.get(token)
        if hit is not None:
            cached_app, cached_exp = hit
            if t <= cached_exp + self._leeway and self._public_key_of(cached_app) is not None:
                self._cache.move_to_end(token)
                return cached_app
            del self._cache[token]
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise AuthFailure(f"malformed JWT: {err}") from None
        if header.get("alg") != "RS256":
            raise AuthFailure(f"alg must be RS256, got {header.get('alg')!r}")
        app_id = claims.get("application_id")
        if not isinstance(app_id, str) or not app_id:
            raise AuthFailure("no application_id claim")
        key = self._public_key_of(app_id)
        if key is None:
            raise AuthFailure("unknown application_id")
        try:
            verified = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                leeway=self._leeway,
                options={"require": ["iat", "jti"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("token expired") from None
        except jwt.PyJWTError as err:
            raise AuthFailure(f"invalid token: {err}") from None
        iat = verified.get("iat")
        if not isinstance(iat, int | float) or iat > t + self._leeway + 60:
            raise AuthFailure("iat in the future")
        exp = verified.get("exp")
        # No exp: Vonage accepts it; cache for the SDK default lifetime only.
        expiry = float(exp) if isinstance(exp, int | float) else float(iat) + 900
        self._cache[token] = (app_id, expiry)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return app_id


def check_basic(authorization: str | None, api_key: str, api_secret: str) -> None:
    """HTTP Basic ``api_key:api_secret`` (constant-time compare); :class:`AuthFailure` if not."""
    if not authorization:
        raise AuthFailure("missing Authorization header")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise AuthFailure("not Basic auth")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthFailure("malformed Basic credentials") from None
    key, sep, secret = decoded.partition(":")
    if not sep:
        raise AuthFailure("malformed Basic credentials")
    ok_key = hmac.compare_digest(key.encode(), api_key.encode())
    ok_secret = hmac.compare_digest(secret.encode(), api_secret.encode())
    if not (ok_key and ok_secret):
        raise AuthFailure("wrong api key or secret")


def sign_webhook(
    body: bytes,
    secret: str,
    *,
    api_key: str,
    application_id: str | None,
    now: float | None = None,
) -> str:
    """The HS256 JWT Vonage puts in ``Authorization: Bearer`` of a signed callback."""
    claims: dict[str, Any] = {
        "iat": int(time.time() if now is None else now),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": api_key,
    }
    if application_id:
        claims["application_id"] = application_id
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})
