"""Executes an NCCO on an answered leg, action by action, in simulated time (DIGEST §5).

Validity is decided once by :func:`contracts.ncco.parse_ncco` (the product's own model, so the
simulator and the product agree on what Vonage accepts); execution then reads the validated raw
dicts. An NCCO returned by an ``input``/``notify``/synchronous ``connect`` callback replaces the
rest of the current one. ``conversation`` ends the NCCO (later actions are ignored, as on Vonage).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from contracts.ncco import NccoError, parse_ncco, talk_length
from orchestrator.sandbox.simulator import bridge
from orchestrator.sandbox.simulator.calls import Call, Hangup
from orchestrator.sandbox.simulator.clock import iso
from orchestrator.sandbox.simulator.events import (
    NCCO_SYNTAX_ERROR,
    CallEvents,
    error_payload,
    status_payload,
)
from orchestrator.sandbox.simulator.webhooks import NccoReply

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.applications import SimApplication
    from orchestrator.sandbox.simulator.engine import SimEngine

__all__ = ["NccoEnd", "NccoRunner", "validate_ncco"]

log = structlog.get_logger("simulator.ncco")

CPS_EXCEEDED = "Outbound call rate limit exceeded: too many calls per second (connect)."


class NccoEnd(Exception):
    """The NCCO cannot go on (invalid NCCO returned mid-call); the platform hangs up."""


def validate_ncco(data: Any) -> str | None:
    """``None`` if ``data`` is an NCCO Vonage would run, else the reason (for logs and ledger)."""
    try:
        parse_ncco(data)
    except NccoError as err:
        return str(err)
    return None


def _first(urls: Any) -> str | None:
    if isinstance(urls, list) and urls and isinstance(urls[0], str):
        return urls[0]
    if isinstance(urls, str):
        return urls
    return None


def _num(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class NccoRunner:
    """Runs NCCOs on one answered leg; ``launch`` starts the lifecycle of a leg it connects."""

    def __init__(
        self,
        engine: SimEngine,
        call: Call,
        app: SimApplication | None,
        events: CallEvents,
        launch: Callable[[Call], None],
    ) -> None:
        self.engine = engine
        self.call = call
        self.app = app
        self.events = events
        self.launch = launch
        self.rng = call.rng
        self.timing = engine.profile.timing

    def span(self, s: tuple[float, float]) -> float:
        return self.rng.uniform(*s)

    async def replacement(self, reply_ncco: list[Any] | None) -> list[Any] | None:
        return reply_ncco

    async def error(self, reason: str, detail: str | None = None) -> None:
        if detail:
            log.info("NCCO rejected", uuid=self.call.uuid, detail=detail)
            self.call.detail = detail[:300]
        await self.events.send(error_payload(self.engine, self.call, reason), "error")

    # --- actions -------------------------------------------------------------------------------
    async def talk(self, act: dict[str, Any], barge: bool) -> None:
        loop = int(_num(act.get("loop"), 1))
        per = talk_length(str(act.get("text", ""))) / self.timing.tts_chars_per_second
        if barge or _bool(act.get("bargeIn")):
            return  # plays while the following input listens
        await self.engine.pause(self.call, None if loop == 0 else per * max(1, loop))

    async def stream(self, act: dict[str, Any], barge: bool) -> None:
        loop = int(_num(act.get("loop"), 1))
        if barge or _bool(act.get("bargeIn")):
            return
        per = self.span(self.timing.stream)
        await self.engine.pause(self.call, None if loop == 0 else per * max(1, loop))

    async def wait(self, act: dict[str, Any]) -> None:
        await self.engine.pause(self.call, min(7200.0, max(0.1, _num(act.get("timeout"), 10.0))))

    def _dtmf_script(self) -> tuple[str, float]:
        ov = self.call.override
        scripts = self.engine.profile.input.dtmf
        rng = self.call.input_rng
        script = rng.choices(scripts, weights=[s.weight for s in scripts])[0] if scripts else None
        delay = rng.uniform(*script.delay) if script else 1.0
        digits = script.digits if script else ""
        if ov is not None and ov.dtmf is not None:
            digits = ov.dtmf
        return digits, delay

    async def input(self, act: dict[str, Any]) -> list[Any] | None:
        types = act.get("type") or ["dtmf"]
        dtmf_cfg = act.get("dtmf") or {}
        speech_cfg = act.get("speech") or {}
        body: dict[str, Any] = {
            "from": self.call.from_str,
            "to": self.call.to_str,
            "uuid": self.call.uuid,
            "conversation_uuid": self.call.conversation_uuid,
        }
        speech_result: dict[str, Any] = {"results": []}
        dtmf_result: dict[str, Any] = {"digits": "", "timed_out": False}
        if "dtmf" in types:
            digits, delay = self._dtmf_script()
            max_digits = int(_num(dtmf_cfg.get("maxDigits"), 4))
            timeout = _num(dtmf_cfg.get("timeOut"), 3.0)
            on_hash = _bool(dtmf_cfg.get("submitOnHash"))
            if on_hash and "#" in digits:
                digits = digits[: digits.index("#")]
                complete = True
            else:
                complete = len(digits) >= max_digits
                digits = digits[:max_digits]
            wait = delay if complete else delay + timeout
            if not digits:
                wait = timeout
            await self.engine.pause(self.call, wait)
            dtmf_result = {"digits": digits, "timed_out": not complete}
        if "speech" in types and not dtmf_result["digits"]:
            scripts = self.engine.profile.input.speech
            rng = self.call.input_rng
            script = (
                rng.choices(scripts, weights=[s.weight for s in scripts])[0] if scripts else None
            )
            if script is None or not script.text:
                await self.engine.pause(self.call, _num(speech_cfg.get("startTimeout"), 10.0))
                speech_result = {"timeout_reason": "start_timeout", "results": []}
            else:
                await self.engine.pause(self.call, self.span(script.delay))
                speech_result = {
                    "timeout_reason": "end_on_silence_timeout",
                    "results": [{"confidence": f"{script.confidence:.8f}", "text": script.text}],
                }
        body["speech"] = speech_result
        body["dtmf"] = dtmf_result
        body["timestamp"] = iso(self.engine.clock.sim())
        url = _first(act.get("eventUrl")) or self.call.event_url
        if not url:
            return None
        method = str(act.get("eventMethod") or "POST")
        reply = await self.engine.poster.request_ncco(
            self.call,
            self.app,
            [url],
            method,
            body,
            kind="input",
            label="input",
            hook="event_url",
            validate=validate_ncco,
            allow_empty=True,
        )
        return await self._mid_call_reply(reply)

    async def _mid_call_reply(self, reply: NccoReply) -> list[Any] | None:
        if reply.ok:
            return reply.ncco
        if reply.invalid:
            await self.error(NCCO_SYNTAX_ERROR, reply.reason)
        # Callback failed (and fallback too): the call flow continues (DIGEST §4.4).
        return None

    async def notify(self, act: dict[str, Any]) -> list[Any] | None:
        url = _first(act.get("eventUrl"))
        if not url:
            return None
        raw = act.get("payload")
        payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
        reply = await self.engine.poster.request_ncco(
            self.call,
            self.app,
            [url],
            str(act.get("eventMethod") or "POST"),
            dict(payload),
            kind="notify",
            label="notify",
            hook="event_url",
            validate=validate_ncco,
            allow_empty=True,
        )
        return await self._mid_call_reply(reply)

    async def record(self, act: dict[str, Any]) -> None:
        blocking = act.get("endOnSilence") is not None or act.get("endOnKey") is not None
        start = self.engine.clock.sim()
        if _bool(act.get("beepStart")):
            await self.engine.pause(self.call, 0.5)
            start = self.engine.clock.sim()
        if not blocking:
            # Records in the background until timeOut or the end of the call.
            self.call.recordings.append((start, act))
            return
        limit = _num(act.get("timeOut"), 7200.0)
        length = min(self.span(self.timing.record), limit)
        try:
            await self.engine.pause(self.call, length)
        finally:
            if not _cancelling():
                await self.record_event(act, start, self.engine.clock.sim())

    async def pay(self, act: dict[str, Any]) -> None:
        await self.engine.pause(self.call, 8.0)
        url = _first(act.get("eventUrl"))
        payload = status_payload(self.engine, self.call, "success")
        await self.events.send(payload, "payment", url=url)

    async def connect(self, act: dict[str, Any]) -> list[Any] | None:
        engine = self.engine
        call = self.call
        endpoints = act.get("endpoint") or []
        if not endpoints or not isinstance(endpoints[0], dict):
            return None
        endpoint = dict(endpoints[0])
        event_url = _first(act.get("eventUrl")) or call.event_url
        event_method = str(
            act.get("eventMethod") or ("POST" if act.get("eventUrl") else call.event_method)
        )
        now = engine.clock.mono()
        admitted = engine.cps_limiter.try_acquire(now)
        rec = engine.ledger.new_request(engine.clock.wall(now), "NCCO", "connect")
        rec.op = "connect"
        rec.auth_ok = True
        rec.app_id = call.app_id
        rec.call_uuid = call.uuid
        if not admitted:
            rec.status = 429
            rec.reason = "cps"
            engine.ledger.count("connect.rate_limited")
            await self.events.send(error_payload(engine, call, CPS_EXCEEDED), "error")
            return None
        rec.status = 201
        if act.get("from"):
            from_ep: dict[str, Any] = {"type": "phone", "number": str(act["from"])}
        else:
            from_ep = {
                "type": "phone",
                "number": call.to_str if call.to.get("type") == "phone" else "Unknown",
            }
        leg = engine.new_leg(
            app_id=call.app_id,
            to=endpoint,
            from_=from_ep,
            event_url=event_url,
            event_method=event_method,
            conversation_uuid=call.conversation_uuid,
            leg="connect",
            parent=call,
            call_ref=None if _first(act.get("eventUrl")) else call.call_ref,
            now_mono=now,
        )
        rec.call_uuid = leg.uuid
        rec.limit = "cps"
        leg.ringing_timer = int(_num(act.get("timeout"), 60))
        leg.length_timer = int(_num(act.get("limit"), 7200))
        leg.sync_connect = act.get("eventType") == "synchronous"
        if act.get("machineDetection"):
            leg.machine_detection = str(act["machineDetection"])
        if isinstance(act.get("advancedMachineDetection"), dict):
            leg.amd = dict(act["advancedMachineDetection"])
        call.children.append(leg)
        self.launch(leg)
        try:
            while not leg.ended:
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                leg.watchers.append(fut)
                await engine.pause(call, None, until=fut)
        except BaseException:
            if not leg.ended:
                leg.interrupt(Hangup("platform"))
            raise
        # Set by a synchronous connect's failure event, or a websocket's disconnected event.
        return leg.sync_reply

    async def conversation(self, act: dict[str, Any]) -> None:
        engine = self.engine
        call = self.call
        name = str(act.get("name", ""))
        start_on_enter = (
            act.get("startOnEnter", True) is not False and act.get("startOnEnter") != "false"
        )
        end_on_exit = _bool(act.get("endOnExit"))
        conv = engine.conversations.join(
            call.app_id,
            name,
            call,
            start_on_enter=start_on_enter,
            end_on_exit=end_on_exit,
            now_sim=engine.clock.sim(),
        )
        url = _first(act.get("eventUrl"))
        old = call.conversation_uuid
        call.conversation_uuid = conv.uuid
        call.conversation_name = name
        if _bool(act.get("record")) and conv.record is None:
            conv.record = act
            conv.record_call = call
        transfer = {
            "conversation_uuid_from": old,
            "conversation_uuid_to": conv.uuid,
            "uuid": call.uuid,
            "timestamp": iso(engine.clock.sim()),
        }
        member = conv.members[call.uuid]
        try:
            await self.events.send(transfer, "transfer", url=url)
            while not conv.is_ended:
                bridge.govern(engine, call, conv, member)
                assert conv.changed is not None
                await engine.pause(call, None, until=conv.changed)
            # The conversation ended under this leg (a moderator with endOnExit left).
            raise Hangup("platform")
        finally:
            bridge.restore(call, member)
            others = engine.conversations.leave(conv, call, now_sim=engine.clock.sim())
            for other in others:
                other.interrupt(Hangup("platform"))
            if (
                conv.is_ended
                and conv.record is not None
                and conv.record_call is not None
                and not _cancelling()
            ):
                rec_act = conv.record
                conv.record = None
                start = conv.started_sim or conv.created_sim
                if conv.started_sim is not None:
                    await self.record_event(rec_act, start, engine.clock.sim(), url=url)

    # --- loop ------------------------------------------------------------------------------------
    async def run(self, actions: list[Any]) -> None:
        i = 0
        barge = False
        while i < len(actions):
            act = actions[i]
            i += 1
            if not isinstance(act, dict):
                continue
            name = act.get("action")
            replacement: list[Any] | None = None
            if name == "talk":
                await self.talk(act, barge)
                barge = barge or _bool(act.get("bargeIn"))
            elif name == "stream":
                await self.stream(act, barge)
                barge = barge or _bool(act.get("bargeIn"))
            elif name == "input":
                barge = False
                replacement = await self.input(act)
            elif name == "record":
                await self.record(act)
            elif name == "connect":
                replacement = await self.connect(act)
            elif name == "conversation":
                await self.conversation(act)
                return  # conversation only ends with the call; later actions are ignored
            elif name == "notify":
                replacement = await self.notify(act)
            elif name == "wait":
                await self.wait(act)
            elif name == "pay":
                await self.pay(act)
            # transfer (JAVA-only) and unknown actions were refused by validation.
            if replacement is not None:
                actions = list(replacement)
                i = 0
                barge = False

    # --- recordings ------------------------------------------------------------------------------
    async def record_event(
        self,
        act: dict[str, Any],
        start_sim: float,
        end_sim: float,
        *,
        url: str | None = None,
    ) -> None:
        engine, call = self.engine, self.call
        seconds = max(0.0, end_sim - start_sim)
        fmt = str(act.get("format") or "mp3")
        rec = engine.recordings.add(call.app_id, fmt, seconds)
        payload = {
            "start_time": iso(start_sim),
            "recording_url": f"{engine.base_url}/v1/files/{rec.id}",
            "size": len(rec.data),
            "recording_uuid": rec.id,
            "end_time": iso(end_sim),
            "conversation_uuid": call.conversation_uuid,
            "timestamp": iso(engine.clock.sim()),
        }
        target = url or _first(act.get("eventUrl"))
        method = str(act.get("eventMethod") or "POST") if target else None
        await self.events.send(payload, "record", url=target, method=method)

    async def finish_recordings(self) -> None:
        """Background ``record`` actions end with the call (or at their ``timeOut``)."""
        call = self.call
        pending, call.recordings = call.recordings, []
        end = self.engine.clock.sim()
        for start, act in pending:
            limit = _num(act.get("timeOut"), 7200.0)
            await self.record_event(act, start, min(end, start + limit))
