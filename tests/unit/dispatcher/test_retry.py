"""The retry table, row by row, plus the backoff and the per-kind budgets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.envelopes import CommandKind
from orchestrator.dispatcher.retry import (
    CALL_UPDATE_KINDS,
    POLICIES,
    TOO_EARLY_WINDOW,
    Action,
    Attempt,
    Backoff,
    Transport,
    classify,
    exhausted,
)

RNG = random.Random(7)
B = Backoff(base=0.25, cap=8.0)
CREATE = CommandKind.CREATE_CALL
HANGUP = CommandKind.HANGUP
GET = CommandKind.GET_CALL


def decide(kind: CommandKind, status: int | None = None, **kw: object) -> Action:
    return classify(Attempt(kind, status=status, **kw), B, 1, RNG).action  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "status", "extra", "expected"),
    [
        # success
        (CREATE, 201, {}, Action.DONE),
        (HANGUP, 204, {}, Action.DONE),
        # 429 always retried (Vonage does not queue: nothing happened)
        (CREATE, 429, {}, Action.RETRY),
        (HANGUP, 429, {}, Action.RETRY),
        # 5xx: retried, except that a create answered 500/502/504 may have been placed
        (HANGUP, 502, {}, Action.RETRY),
        (HANGUP, 503, {}, Action.RETRY),
        (HANGUP, 504, {}, Action.RETRY),
        (GET, 500, {}, Action.RETRY),
        (CREATE, 503, {}, Action.RETRY),
        (CREATE, 502, {}, Action.AMBIGUOUS),
        (CREATE, 504, {}, Action.AMBIGUOUS),
        (CREATE, 500, {}, Action.AMBIGUOUS),
        (HANGUP, 501, {}, Action.FAIL),
        # transport
        (CREATE, None, {"transport": Transport.NOT_SENT}, Action.RETRY),
        (HANGUP, None, {"transport": Transport.NOT_SENT}, Action.RETRY),
        (CREATE, None, {"transport": Transport.MAYBE_SENT}, Action.AMBIGUOUS),
        (HANGUP, None, {"transport": Transport.MAYBE_SENT}, Action.RETRY),
        # 401: one fresh JWT, then give up
        (CREATE, 401, {}, Action.REAUTH),
        (HANGUP, 401, {}, Action.REAUTH),
        (CREATE, 401, {"reauthed": True}, Action.FAIL),
        # 400 too early on an update shortly after creation
        (HANGUP, 400, {"since_create": 0.5}, Action.RETRY),
        (CommandKind.TRANSFER, 400, {"since_create": 1.9}, Action.RETRY),
        (HANGUP, 400, {"since_create": 30.0}, Action.FAIL),
        (HANGUP, 400, {}, Action.RETRY),  # age unknown: one short retry
        (HANGUP, 400, {"too_early_retries": 1}, Action.FAIL),
        (CREATE, 400, {}, Action.FAIL),
        (GET, 400, {}, Action.FAIL),
        # 404: wrong region -> retry at region_url, once
        (HANGUP, 404, {"region_url_known": True}, Action.REROUTE),
        (GET, 404, {"region_url_known": True}, Action.REROUTE),
        (HANGUP, 404, {"region_url_known": True, "at_region": True}, Action.FAIL),
        (HANGUP, 404, {}, Action.FAIL),
        (CommandKind.APPLICATION_GET, 404, {"region_url_known": True}, Action.FAIL),
        # other 4xx: fail fast
        (CREATE, 403, {}, Action.FAIL),
        (HANGUP, 405, {}, Action.FAIL),
        (CREATE, 412, {}, Action.FAIL),
        (CommandKind.APPLICATION_CREATE, 415, {}, Action.FAIL),
        (CREATE, 422, {}, Action.FAIL),
    ],
)
def test_table(
    kind: CommandKind, status: int | None, extra: dict[str, object], expected: Action
) -> None:
    assert decide(kind, status, **extra) == expected


def test_429_is_throttled_and_honours_retry_after() -> None:
    d = classify(Attempt(CREATE, status=429, retry_after=3.0), B, 1, RNG)
    assert d.throttled and d.honour_retry_after and d.delay == 3.0
    d = classify(Attempt(CREATE, status=429), B, 1, RNG)
    assert d.throttled and not d.honour_retry_after and 0 <= d.delay <= B.base


def test_too_early_waits_until_the_window_has_passed() -> None:
    d = classify(Attempt(HANGUP, status=400, since_create=0.5), B, 1, RNG)
    assert d.delay == pytest.approx(TOO_EARLY_WINDOW - 0.5)
    assert all(k in CALL_UPDATE_KINDS for k in (HANGUP, CommandKind.TRANSFER, CommandKind.MUTE))


@given(n=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_full_jitter_is_capped_and_exponential(n: int, seed: int) -> None:
    d = B.delay(n, random.Random(seed))
    assert 0 <= d <= min(B.cap, B.base * 2 ** (n - 1))


def test_budgets_per_kind() -> None:
    create = POLICIES[CREATE]
    assert exhausted(CREATE, 1, 0.0, 1.0) is None
    assert exhausted(CREATE, create.max_attempts, 0.0, 0.0) == "max_attempts"
    assert exhausted(CREATE, 2, create.deadline - 0.5, 1.0) == "deadline"
    assert POLICIES[HANGUP].deadline < create.deadline  # a stale hangup is worthless
    assert set(POLICIES) == set(CommandKind)  # every kind has a budget
