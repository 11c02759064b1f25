"""What to do after each attempt: a pure table from (command kind, outcome) to a decision.

Kept free of I/O so every row can be unit-tested and read in one place:

============================  ==============================  ===================================
outcome                       create_call                     every other kind
============================  ==============================  ===================================
2xx                           done                            done
429                           retry (Retry-After, else        same
                              capped full jitter); the
                              limiter ceiling is cut
503                           retry (refused, not processed)  retry
500, 502, 504                 **ambiguous**: may have been    retry
                              processed, never re-sent
connect error / pool timeout  retry (nothing was sent)        retry
timeout or dropped connection **ambiguous**                   retry
after sending
401                           new JWT once, then fail         same
400 on a call update within   n/a                             retry after a short delay
~2 s of the call's creation                                   (Vonage's documented "too early")
404 with a region_url we did  n/a                             retry at the call's region_url
not use yet
other 4xx, other 5xx          fail, error body in result      same
============================  ==============================  ===================================

Every kind also has a maximum number of attempts and a total deadline; running out of either
sends the command to ``voice.dlq`` with a failed result. "Ambiguous" means the dispatcher must
not decide: it records ``unknown`` in the dial ledger and resolves the attempt (see ``ledger``).
Why 500/502/504 are ambiguous for a create but 503 is not: 503 means the server refused to handle
the request, while a gateway error or an internal error may come after the call was placed, and
``POST /v1/calls`` is not idempotent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from contracts.envelopes import CALL_UPDATE_KINDS, CommandKind


class Action(StrEnum):
    DONE = "done"
    RETRY = "retry"
    REAUTH = "reauth"
    REROUTE = "reroute"
    FAIL = "fail"
    AMBIGUOUS = "ambiguous"


class Transport(StrEnum):
    """How an attempt ended when there was no HTTP response."""

    #: Nothing reached the server (connect refused/timeout, no pooled connection free).
    NOT_SENT = "not_sent"
    #: The request may have reached the server (read timeout, connection dropped after writing).
    MAYBE_SENT = "maybe_sent"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt produced, plus the context the table needs."""

    kind: CommandKind
    status: int | None = None
    transport: Transport | None = None
    retry_after: float | None = None
    #: A fresh JWT was already minted for this command after a 401.
    reauthed: bool = False
    #: The command carries a region_url, and whether this attempt already went there.
    region_url_known: bool = False
    at_region: bool = False
    #: Seconds since the target call was created, when known.
    since_create: float | None = None
    #: How many "too early" retries this command already had.
    too_early_retries: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    #: Seconds to wait before the next attempt (RETRY/REAUTH/REROUTE).
    delay: float = 0.0
    #: The attempt was refused for rate (count it, cut the limiter ceiling).
    throttled: bool = False
    #: The limiter should pause for ``delay`` (the server told us how long).
    honour_retry_after: bool = False


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
    And Jitter"): spreads retries of many commands instead of synchronising them on the limit."""

    base: float = 0.25
    cap: float = 8.0

    def delay(self, retry_number: int, rng: random.Random) -> float:
        """Delay before retry ``retry_number`` (1 = first retry)."""
        ceiling = min(self.cap, self.base * 2 ** max(0, retry_number - 1))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class KindPolicy:
    max_attempts: int
    #: Seconds from the first attempt after which no further attempt starts.
    deadline: float


#: How long after creation Vonage may answer a call update with 400 (KB-400 says 1-2 s).
TOO_EARLY_WINDOW = 2.5
#: The shortest wait before retrying a "too early" 400.
TOO_EARLY_MIN_DELAY = 0.3
#: When the call's age is unknown, retry a 400 on an update this many times at most.
TOO_EARLY_BLIND_RETRIES = 1

#: Kinds addressed to one call (``/v1/calls/{uuid}...``): region routing applies.
CALL_SCOPED_KINDS = CALL_UPDATE_KINDS | {CommandKind.GET_CALL}
APPLICATION_KINDS = frozenset(
    {
        CommandKind.APPLICATION_CREATE,
        CommandKind.APPLICATION_GET,
        CommandKind.APPLICATION_LIST,
        CommandKind.APPLICATION_UPDATE,
        CommandKind.APPLICATION_DELETE,
    }
)

_CONTROL = KindPolicy(max_attempts=6, deadline=30.0)
POLICIES: dict[CommandKind, KindPolicy] = {
    # A create may wait out long 429 storms: a late call is better than a dropped contact.
    CommandKind.CREATE_CALL: KindPolicy(max_attempts=10, deadline=180.0),
    CommandKind.GET_CALL: KindPolicy(max_attempts=5, deadline=30.0),
    CommandKind.LIST_CALLS: KindPolicy(max_attempts=5, deadline=30.0),
    **{k: _CONTROL for k in CALL_UPDATE_KINDS},
    **{k: KindPolicy(max_attempts=5, deadline=60.0) for k in APPLICATION_KINDS},
}

_CREATE_RETRYABLE_5XX = frozenset({503})
_CREATE_AMBIGUOUS_5XX = frozenset({500, 502, 504})
_RETRYABLE_5XX = frozenset({500, 502, 503, 504})


def classify(a: Attempt, backoff: Backoff, retry_number: int, rng: random.Random) -> Decision:
    """Decide what follows one attempt. ``retry_number`` is the number the next retry would have."""
    create = a.kind == CommandKind.CREATE_CALL
    status = a.status

    def retry(reason: str, **kw: bool) -> Decision:
        return Decision(Action.RETRY, reason, delay=backoff.delay(retry_number, rng), **kw)

    if status is None:
        if a.transport == Transport.NOT_SENT:
            return retry("connect_error")
        if create:
            return Decision(Action.AMBIGUOUS, "no_response_after_sending")
        return retry("no_response")
    if 200 <= status < 300:
        return Decision(Action.DONE, "ok")
    if status == 429:
        if a.retry_after is not None and a.retry_after >= 0:
            return Decision(
                Action.RETRY,
                "rate_limited",
                delay=a.retry_after,
                throttled=True,
                honour_retry_after=True,
            )
        return retry("rate_limited", throttled=True)
    if status >= 500:
        if create:
            if status in _CREATE_RETRYABLE_5XX:
                return retry(f"http_{status}")
            if status in _CREATE_AMBIGUOUS_5XX:
                return Decision(Action.AMBIGUOUS, f"http_{status}_after_sending")
            return Decision(Action.FAIL, f"http_{status}")
        if status in _RETRYABLE_5XX:
            return retry(f"http_{status}")
        return Decision(Action.FAIL, f"http_{status}")
    if status == 401:
        if a.reauthed:
            return Decision(Action.FAIL, "unauthorized")
        return Decision(Action.REAUTH, "unauthorized_new_jwt")
    if status == 400 and a.kind in CALL_UPDATE_KINDS:
        if a.since_create is not None:
            if a.since_create < TOO_EARLY_WINDOW:
                wait = max(TOO_EARLY_MIN_DELAY, TOO_EARLY_WINDOW - a.since_create)
                return Decision(Action.RETRY, "too_early", delay=wait)
        elif a.too_early_retries < TOO_EARLY_BLIND_RETRIES:
            return Decision(Action.RETRY, "too_early_maybe", delay=TOO_EARLY_WINDOW / 2)
        return Decision(Action.FAIL, "http_400")
    if status == 404 and a.kind in CALL_SCOPED_KINDS and a.region_url_known and not a.at_region:
        return Decision(Action.REROUTE, "wrong_region")
    return Decision(Action.FAIL, f"http_{status}")


def exhausted(kind: CommandKind, attempts: int, elapsed: float, next_delay: float) -> str | None:
    """Why no further attempt may start, or ``None`` when one may."""
    policy = POLICIES.get(kind, _CONTROL)
    if attempts >= policy.max_attempts:
        return "max_attempts"
    if elapsed + next_delay > policy.deadline:
        return "deadline"
    return None
