"""JWT verification (RS256 per application), Basic auth, and webhook signing."""

from __future__ import annotations

import base64
import hashlib
import time

import jwt
import pytest

from orchestrator.sandbox.simulator.applications import ApplicationStore
from orchestrator.sandbox.simulator.auth import (
    AuthFailure,
    JwtVerifier,
    check_basic,
    generate_key_pair,
    mint_application_jwt,
    public_key_from_private,
    sign_webhook,
)


@pytest.fixture(scope="module")
def store() -> ApplicationStore:
    s = ApplicationStore()
    s.create("a", app_id="app-a")
    s.create("b", app_id="app-b")
    return s


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_valid_token_names_its_application(store: ApplicationStore) -> None:
    v = JwtVerifier(store.public_key_of)
    a = store.get("app-a")
    assert a is not None and a.private_key_pem
    assert v.verify(bearer(a.jwt())) == "app-a"
    token = a.jwt()
    assert v.verify(bearer(token)) == "app-a"
    assert v.verify(bearer(token)) == "app-a"  # cached path


def test_refusals(store: ApplicationStore) -> None:
    v = JwtVerifier(store.public_key_of)
    a, b = store.get("app-a"), store.get("app-b")
    assert a is not None and b is not None
    assert a.private_key_pem is not None and b.private_key_pem is not None
    now = int(time.time())
    cases = {
        "missing": None,
        "scheme": "Basic abc",
        "garbage": bearer("x.y.z"),
        "expired": bearer(a.jwt(ttl=-60)),
        "other key": bearer(mint_application_jwt("app-a", b.private_key_pem)),
        "unknown app": bearer(mint_application_jwt("app-zzz", a.private_key_pem)),
        "no app id": bearer(
            jwt.encode({"iat": now, "jti": "x"}, a.private_key_pem, algorithm="RS256")
        ),
        "no jti": bearer(
            jwt.encode(
                {"iat": now, "application_id": "app-a"}, a.private_key_pem, algorithm="RS256"
            )
        ),
        # alg confusion: HS256 keyed with the public key must not pass
        "hs256": bearer(
            jwt.encode(
                {"iat": now, "jti": "x", "application_id": "app-a"},
                a.public_key_pem[:64],
                algorithm="HS256",
            )
        ),
    }
    for name, header in cases.items():
        with pytest.raises(AuthFailure):
            v.verify(header)
        assert name


def test_deleted_application_invalidates_cached_token() -> None:
    s = ApplicationStore()
    app = s.create("x")
    v = JwtVerifier(s.public_key_of)
    token = app.jwt()
    assert v.verify(bearer(token)) == app.id
    s.delete(app.id)
    with pytest.raises(AuthFailure):
        v.verify(bearer(token))


def test_basic_auth() -> None:
    good = "Basic " + base64.b64encode(b"key1:secret1").decode()
    check_basic(good, "key1", "secret1")
    for header in (
        None,
        "Bearer x",
        "Basic !!!",
        "Basic " + base64.b64encode(b"key1:nope").decode(),
    ):
        with pytest.raises(AuthFailure):
            check_basic(header, "key1", "secret1")


def test_webhook_signature_claims() -> None:
    body = b'{"status":"started"}'
    token = sign_webhook(body, "s" * 32, api_key="k", application_id="app-a")
    claims = jwt.decode(token, "s" * 32, algorithms=["HS256"])
    assert claims["iss"] == "Vonage"
    assert claims["payload_hash"] == hashlib.sha256(body).hexdigest()
    assert claims["api_key"] == "k" and claims["application_id"] == "app-a"
    assert {"iat", "jti"} <= set(claims)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_key_pair_round_trip() -> None:
    pair = generate_key_pair()
    assert pair.private_pem.startswith("-----BEGIN " + "PRIVATE KEY-----")
    assert public_key_from_private(pair.private_pem) == pair.public_pem
