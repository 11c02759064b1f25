"""Signed webhook delivery to the product, with Vonage's retry and fallback rules (DIGEST §4.4).

Two kinds of callback:
- *NCCO requests* (answer URL, ``input``/``notify`` event URLs, synchronous ``connect`` events):
  tried ``ncco_attempts`` times, but only on connect/read timeouts, closed connections and
  429/503/504; any other failure, or an invalid NCCO, goes straight to the application's
  ``fallback_answer_url`` (same rule), whose body gets ``reason`` and ``original_request``.
- *Notifications* (status events): the first attempt is made inline, so a call's events leave in
  order; a failure (network, 5xx, 429) is retried in the background with doubling backoff, so a
  retried event can arrive after later ones, as with the real platform.

One shared keep-alive client (:mod:`.hookclient`) serves every call.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from orchestrator.sandbox.simulator.auth import sign_webhook
from orchestrator.sandbox.simulator.calls import WebhookRecord
from orchestrator.sandbox.simulator.hookclient import HookClient, HookError, HookTimeout

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.applications import SimApplication
    from orchestrator.sandbox.simulator.calls import Call
    from orchestrator.sandbox.simulator.clock import SimClock
    from orchestrator.sandbox.simulator.profile import WebhookPolicy

__all__ = ["NccoReply", "WebhookPoster"]

log = structlog.get_logger("simulator.webhooks")

_RETRYABLE_STATUS = frozenset({429, 503, 504})


@dataclass(slots=True)
class NccoReply:
    """Outcome of an NCCO request: ``ok`` False means every URL (and the fallback) failed."""

    ok: bool
    ncco: list[Any] | None = None
    reason: str | None = None
    http_status: int | None = None
    invalid: bool = False  # the URL answered, but not with a valid NCCO


@dataclass(slots=True)
class _Attempt:
    status: int | None
    body: bytes
    error: str | None  # network-level failure reason
    retryable: bool


def _flatten(payload: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in payload.items():
        if v is None:
            continue
        if isinstance(v, dict | list):
            out[k] = orjson.dumps(v).decode()
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        else:
            out[k] = str(v)
    return out


class WebhookPoster:
    def __init__(
        self,
        *,
        clock: SimClock,
        policy: WebhookPolicy,
        signature_secret: str | None,
        api_key: str,
        verify: bool | str = True,
    ) -> None:
        self._clock = clock
        self.policy = policy
        self._secret = signature_secret
        self._api_key = api_key
        self._verify = verify
        self._client: HookClient | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    async def start(self) -> None:
        if self._client is None:
            verify: bool | ssl.SSLContext = (
                ssl.create_default_context(cafile=self._verify)
                if isinstance(self._verify, str)
                else self._verify
            )
            self._client = HookClient(verify=verify)

    def tls_context(self) -> ssl.SSLContext:
        """The same trust as webhooks, for the platform's other TLS clients (wss:// endpoints)."""
        if isinstance(self._verify, str):
            return ssl.create_default_context(cafile=self._verify)
        ctx = ssl.create_default_context()
        if not self._verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def close(self) -> None:
        self.cancel_background()
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def background(self) -> set[asyncio.Task[None]]:
        """Webhook retries still scheduled."""
        return set(self._background)

    def cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()
        self._background.clear()

    # --- one HTTP attempt ---------------------------------------------------------------------
    async def _attempt(
        self,
        url: str,
        method: str,
        payload: dict[str, Any],
        app: SimApplication | None,
        connect_timeout: float,
        read_timeout: float,
        record: WebhookRecord,
    ) -> _Attempt:
        client = self._client
        if client is None:
            await self.start()
            client = self._client
        assert client is not None
        headers: dict[str, str] = {}
        body = b""
        params: dict[str, str] | None = None
        if method == "GET":
            params = _flatten(payload)
        else:
            body = orjson.dumps(payload)
            headers["Content-Type"] = "application/json"
        signed = bool(self._secret) and self.policy.signed and (app is None or app.signed_callbacks)
        if signed:
            assert self._secret is not None
            token = sign_webhook(
                body, self._secret, api_key=self._api_key, application_id=app.id if app else None
            )
            headers["Authorization"] = f"Bearer {token}"
        record.signed = signed
        record.attempts += 1
        self.sent += 1
        try:
            resp = await client.request(
                method,
                url,
                body=body,
                params=params,
                headers=headers,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            )
        except HookTimeout as err:
            return _Attempt(None, b"", f"{err.phase} timeout", True)
        except HookError as err:
            return _Attempt(None, b"", str(err), True)
        record.http_status = resp.status
        return _Attempt(resp.status, resp.body, None, resp.status in _RETRYABLE_STATUS)

    def _timeouts(self, app: SimApplication | None, hook: str, ncco: bool) -> tuple[float, float]:
        pol = self.policy
        conn, read = pol.connect_timeout, pol.answer_timeout if ncco else pol.event_timeout
        if app is not None:
            c, r = app.webhook_timeouts(hook)
            conn = c if c is not None else conn
            read = r if r is not None else read
        return conn, read

    # --- notifications --------------------------------------------------------------------------
    async def notify(
        self,
        call: Call,
        app: SimApplication | None,
        payload: dict[str, Any],
        url: str | None,
        method: str = "POST",
        *,
        kind: str = "event",
        label: str | None = None,
        duplicate: bool = False,
    ) -> WebhookRecord | None:
        """Send one event; failures are retried in the background. Returns the ledger record."""
        if not url:
            return None
        record = WebhookRecord(self._clock.wall(), kind, label, url, duplicate)
        call.webhooks.append(record)
        conn, read = self._timeouts(app, "event_url", ncco=False)
        att = await self._attempt(url, method, payload, app, conn, read, record)
        if self._handle_notify_result(record, att):
            return record
        if record.attempts < self.policy.event_attempts and (
            att.retryable or (att.status or 0) >= 500
        ):
            task = asyncio.create_task(
                self._retry_notify(record, url, method, payload, app, conn, read)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            self._give_up(record, att)
        return record

    def _handle_notify_result(self, record: WebhookRecord, att: _Attempt) -> bool:
        if att.status is not None and 200 <= att.status < 300:
            record.ok = True
            return True
        log.warning(
            "webhook delivery failed",
            url=record.url,
            kind=record.kind,
            status=record.status,
            http_status=att.status,
            error=att.error,
            attempt=record.attempts,
        )
        return False

    def _give_up(self, record: WebhookRecord, att: _Attempt) -> None:
        self.failed += 1
        log.warning(
            "webhook dropped after retries",
            url=record.url,
            kind=record.kind,
            status=record.status,
            attempts=record.attempts,
            http_status=att.status,
            error=att.error,
        )

    async def _retry_notify(
        self,
        record: WebhookRecord,
        url: str,
        method: str,
        payload: dict[str, Any],
        app: SimApplication | None,
        conn: float,
        read: float,
    ) -> None:
        delay = self.policy.retry_backoff
        while True:
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay *= 2
            att = await self._attempt(url, method, payload, app, conn, read, record)
            if self._handle_notify_result(record, att):
                return
            if record.attempts >= self.policy.event_attempts or not (
                att.retryable or (att.status or 0) >= 500
            ):
                self._give_up(record, att)
                return

    # --- NCCO requests ---------------------------------------------------------------------------
    async def _fetch_one(
        self,
        call: Call,
        app: SimApplication | None,
        url: str,
        method: str,
        payload: dict[str, Any],
        kind: str,
        label: str | None,
        hook: str,
        validate: Callable[[Any], str | None],
        allow_empty: bool,
    ) -> NccoReply:
        record = WebhookRecord(self._clock.wall(), kind, label, url, False)
        call.webhooks.append(record)
        conn, read = self._timeouts(app, hook, ncco=True)
        reason = "unknown"
        status: int | None = None
        for attempt in range(self.policy.ncco_attempts):
            att = await self._attempt(url, method, payload, app, conn, read, record)
            status = att.status
            if att.status is not None and 200 <= att.status < 300:
                record.ok = True
                body = att.body.strip()
                if not body:
                    if allow_empty:
                        return NccoReply(True, None, None, att.status)
                    return NccoReply(False, None, "Empty NCCO", att.status, invalid=True)
                try:
                    parsed = orjson.loads(body)
                except orjson.JSONDecodeError:
                    return NccoReply(
                        False, None, "Invalid NCCO: response is not JSON", att.status, invalid=True
                    )
                if allow_empty and not isinstance(parsed, list):
                    # An input/notify endpoint may answer with any acknowledgement: no new NCCO.
                    return NccoReply(True, None, None, att.status)
                problem = validate(parsed)
                if problem is not None:
                    return NccoReply(False, None, problem, att.status, invalid=True)
                return NccoReply(True, parsed, None, att.status)
            reason = att.error or f"HTTP {att.status}"
            log.warning(
                "NCCO request failed",
                url=url,
                kind=kind,
                http_status=att.status,
                error=att.error,
                attempt=attempt + 1,
            )
            if not att.retryable:
                break
        return NccoReply(False, None, reason, status)

    async def request_ncco(
        self,
        call: Call,
        app: SimApplication | None,
        urls: list[str],
        method: str,
        payload: dict[str, Any],
        *,
        kind: str,
        label: str | None = None,
        hook: str = "answer_url",
        validate: Callable[[Any], str | None],
        allow_empty: bool = False,
    ) -> NccoReply:
        """Fetch an NCCO (answer/input/notify/connect event) with retries, then the fallback URL."""
        reply = NccoReply(False, None, "no URL")
        for url in urls[:1]:  # Vonage uses the first URL of the array.
            reply = await self._fetch_one(
                call, app, url, method, payload, kind, label, hook, validate, allow_empty
            )
            if reply.ok:
                return reply
        fallback = app.webhook_address("fallback_answer_url") if app is not None else None
        if fallback is None:
            return reply
        f_url, f_method = fallback
        f_payload = dict(payload)
        f_payload["reason"] = reply.reason or "unknown"
        f_payload["original_request"] = {"url": urls[0] if urls else "", "type": kind}
        f_reply = await self._fetch_one(
            call,
            app,
            f_url,
            f_method,
            f_payload,
            "fallback",
            label,
            "fallback_answer_url",
            validate,
            allow_empty,
        )
        return f_reply
