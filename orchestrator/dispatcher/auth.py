"""Credentials for outbound requests: an RS256 application JWT (Voice API) and Basic (Application API).

The Python SDK mints a fresh JWT for every request; an RSA signature costs ~1 ms of CPU, which at
hundreds of requests per second is a core's worth of waste. One token is reused until shortly
before it expires, and a 401 (clock skew, revoked token) forces a fresh one exactly once per
command (see ``retry``). The private key is parsed once and never logged.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

#: Vonage's default and the SDKs' choice: 15 minutes.
DEFAULT_TTL = 900
#: Mint a new token this long before the cached one expires (covers clock skew and slow requests).
REFRESH_BEFORE = 60


class JwtMinter:
    """Mints and caches the application's RS256 JWT (claims ``application_id, iat, jti, exp``)."""

    def __init__(
        self,
        application_id: str,
        private_key_pem: bytes | str,
        *,
        ttl: int = DEFAULT_TTL,
        refresh_before: int = REFRESH_BEFORE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= refresh_before:
            raise ValueError("ttl must exceed refresh_before")
        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        self._key: Any = serialization.load_pem_private_key(pem, password=None)
        self.application_id = application_id
        self._ttl = ttl
        self._refresh_before = refresh_before
        self._clock = clock
        self._token: str | None = None
        self._exp = 0.0
        self.minted = 0

    def __repr__(self) -> str:  # never show the key
        return f"JwtMinter(application_id={self.application_id!r})"

    def token(self) -> str:
        now = self._clock()
        if self._token is None or now >= self._exp - self._refresh_before:
            self._mint(now)
        assert self._token is not None
        return self._token

    def refresh(self, stale: str | None = None) -> str:
        """A new token, unless another request already replaced ``stale`` (then that one)."""
        if stale is None or stale == self._token:
            self._mint(self._clock())
        return self.token()

    def _mint(self, now: float) -> None:
        iat = int(now)
        claims = {
            "application_id": self.application_id,
            "iat": iat,
            "jti": str(uuid.uuid4()),
            "exp": iat + self._ttl,
        }
        self._token = jwt.encode(claims, self._key, algorithm="RS256", headers={"typ": "JWT"})
        self._exp = float(iat + self._ttl)
        self.minted += 1

    def header(self) -> str:
        return f"Bearer {self.token()}"


def basic_auth_header(api_key: str, api_secret: str) -> str:
    raw = f"{api_key}:{api_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")
