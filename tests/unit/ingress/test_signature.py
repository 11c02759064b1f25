"""Signed-webhook verification: every check, every reason, rotation, and the jti lifecycle."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from orchestrator.ingress.signature import (
    JtiCache,
    SignatureError,
    SignatureVerifier,
    payload_hash,
    sign_for_tests,
    sign_hs256,
)

NOW = 1_700_000_000.0
BODY = b'{"uuid":"u1","conversation_uuid":"CON-1","status":"started"}'


def verifier(*secrets: str, **kw: object) -> SignatureVerifier:
    return SignatureVerifier(list(secrets) or ["s3cret"], clock=lambda: NOW, **kw)  # type: ignore[arg-type]


def bearer(token: str) -> str:
    return f"Bearer {token}"


def reason_of(v: SignatureVerifier, auth: str | None, body: bytes = BODY, **kw: bool) -> str:
    with pytest.raises(SignatureError) as err:
        v.verify(auth, body, **kw)
    return err.value.reason


def test_genuine_token_verifies_and_exposes_claims() -> None:
    v = verifier()
    claims = v.verify(bearer(sign_for_tests("s3cret", BODY, iat=NOW, jti="j1")), BODY)
    assert claims.jti == "j1"
    assert claims.api_key == "local"
    assert claims.secret_index == 0


def test_tokens_minted_by_pyjwt_verify() -> None:
    # Interop: the same token format the Vonage SDKs (PyJWT) produce and check.
    secret = "a-signature-secret-of-32-chars-xx"
    claims = {"iat": int(NOW), "jti": "p1", "iss": "Vonage", "payload_hash": payload_hash(BODY)}
    token = jwt.encode(claims, secret, algorithm="HS256")
    assert verifier(secret).verify(bearer(token), BODY).jti == "p1"
    ours = sign_for_tests(secret, BODY, iat=NOW)
    assert jwt.decode(ours, secret, algorithms=["HS256"])["payload_hash"] == payload_hash(BODY)


def test_rotation_accepts_every_configured_secret() -> None:
    v = verifier("new", "old")
    assert v.verify(bearer(sign_for_tests("old", BODY, iat=NOW)), BODY).secret_index == 1
    assert v.verify(bearer(sign_for_tests("new", BODY, iat=NOW)), BODY).secret_index == 0


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Basic abc", "malformed"),
        ("Bearer ", "malformed"),
        ("Bearer not.a.jwt", "malformed"),
    ],
)
def test_missing_or_malformed_header(auth: str | None, reason: str) -> None:
    assert reason_of(verifier(), auth) == reason


def test_forged_signature() -> None:
    assert reason_of(verifier(), bearer(sign_for_tests("other", BODY, iat=NOW))) == "bad_signature"


def test_alg_none_and_other_algorithms_are_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    claims = {"iat": NOW, "jti": "x", "payload_hash": payload_hash(BODY)}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert reason_of(verifier(), bearer(f"{header}.{body}.")) == "bad_algorithm"
    hs512 = jwt.encode(claims, "s3cret" * 11, algorithm="HS512")
    assert reason_of(verifier(), bearer(hs512)) == "bad_algorithm"


def test_payload_hash_missing_and_mismatch() -> None:
    no_hash = sign_hs256({"iat": NOW, "jti": "a"}, "s3cret")
    assert reason_of(verifier(), bearer(no_hash)) == "payload_hash_missing"
    other = sign_for_tests("s3cret", b'{"other":1}', iat=NOW)
    assert reason_of(verifier(), bearer(other)) == "payload_hash_mismatch"


def test_get_binds_the_query_string_or_accepts_the_empty_body_hash() -> None:
    query = b"to=447700900000&uuid=u1&conversation_uuid=CON-1"
    v = verifier()
    v.verify(bearer(sign_for_tests("s3cret", query, iat=NOW)), query, is_get=True)
    v.verify(bearer(sign_for_tests("s3cret", b"", iat=NOW)), query, is_get=True)
    # The empty-body hash is accepted only for GET; a POST body must match exactly.
    assert reason_of(v, bearer(sign_for_tests("s3cret", b"", iat=NOW)), BODY) == (
        "payload_hash_mismatch"
    )
    tampered = sign_for_tests("s3cret", b"to=1", iat=NOW)
    assert reason_of(v, bearer(tampered), query, is_get=True) == "payload_hash_mismatch"


def test_iat_window() -> None:
    v = verifier(max_age=300, max_skew=60)
    assert reason_of(v, bearer(sign_for_tests("s3cret", BODY, iat=NOW - 301))) == "stale"
    assert reason_of(v, bearer(sign_for_tests("s3cret", BODY, iat=NOW + 61))) == "future"
    v.verify(bearer(sign_for_tests("s3cret", BODY, iat=NOW - 299)), BODY)
    v.verify(bearer(sign_for_tests("s3cret", BODY, iat=NOW + 59)), BODY)
    no_iat = sign_hs256({"jti": "a", "payload_hash": payload_hash(BODY)}, "s3cret")
    assert reason_of(v, bearer(no_iat)) == "iat_missing"


def test_jti_required_and_replay_refused_after_commit() -> None:
    v = verifier()
    no_jti = sign_hs256({"iat": NOW, "payload_hash": payload_hash(BODY)}, "s3cret")
    assert reason_of(v, bearer(no_jti)) == "jti_missing"
    token = bearer(sign_for_tests("s3cret", BODY, iat=NOW, jti="once"))
    claims = v.verify(token, BODY)
    assert reason_of(v, token) == "in_flight"  # a concurrent duplicate: retry later
    v.settle(claims, stored=True)
    assert reason_of(v, token) == "replayed"


def test_released_jti_can_be_retried_after_a_failed_store() -> None:
    v = verifier()
    token = bearer(sign_for_tests("s3cret", BODY, iat=NOW, jti="retry-me"))
    v.settle(v.verify(token, BODY), stored=False)  # e.g. the broker was down: 503
    v.settle(v.verify(token, BODY), stored=True)  # Vonage's retry with the same token is fine


def test_jti_cache_is_bounded_in_size_and_time() -> None:
    cache = JtiCache(ttl=10, max_entries=3)
    for i in range(5):
        cache.reserve(f"j{i}", now=100)
    assert len(cache) == 3
    cache.reserve("late", now=111)  # everything older than ttl expired
    assert len(cache) == 1


def test_error_messages_never_contain_the_secret() -> None:
    v = verifier("top-secret-value")
    for token in (sign_for_tests("wrong", BODY, iat=NOW), "x.y.z"):
        with pytest.raises(SignatureError) as err:
            v.verify(bearer(token), BODY)
        assert "top-secret-value" not in str(err.value)
