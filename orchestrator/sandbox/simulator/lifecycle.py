"""One call leg from creation to its last webhook: the outcome engine (one asyncio task per leg).

The outcome was drawn from the seeded profile when the leg was created; this module plays it out in
simulated time with Vonage's event sequence (DIGEST §7, KB-ORDER):

- ``started`` -> ``ringing`` (sometimes delivered swapped) -> ``answered`` [-> ``human``/``machine``]
  -> NCCO -> ``completed``;
- failures: ``busy``/``unanswered``/``timeout``/``failed``/``cancelled``, each followed by
  ``completed`` (sometimes delivered first); ``rejected`` is final, with no ``completed``.

A REST hangup before answer ends the leg as ``cancelled``; after answer, as ``completed``.

A websocket leg has no callee to draw: the simulator really connects (:mod:`.websocket_leg`), so
``started`` -> ``answered`` when the socket opens (no ringing, no AMD), ``failed`` when it cannot;
it lasts until the server closes the socket (``disconnected``, then ``completed``), the call ends
elsewhere or its ``limit`` passes (the simulator closes the socket).

An agent leg (:mod:`.agents`) rings for the agent's answer span and, once answered, hangs up
after its handle time (a websocket agent only if its profile entry says so).

:class:`Legs` owns the running lifecycles (one task per leg): it launches them (a created call,
an inbound call, a leg an NCCO ``connect`` adds), counts them and waits for them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from orchestrator.sandbox.simulator import agents
from orchestrator.sandbox.simulator.calls import Call, Hangup, Transfer, is_websocket
from orchestrator.sandbox.simulator.clock import iso
from orchestrator.sandbox.simulator.events import (
    NCCO_SYNTAX_ERROR,
    CallEvents,
    amd_payload,
    completed_payload,
    error_payload,
    price_of,
    status_payload,
)
from orchestrator.sandbox.simulator.ncco_runner import NccoRunner, validate_ncco
from orchestrator.sandbox.simulator.websocket_leg import WebSocketLeg

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.applications import SimApplication
    from orchestrator.sandbox.simulator.engine import SimEngine

__all__ = ["LegLifecycle", "Legs"]

log = structlog.get_logger("simulator.lifecycle")

_FAILURE_DETAIL = {"unanswered": "unavailable", "failed": "cannot_route"}
_REJECT_DETAILS = ("invalid_number", "restricted", "declined")
_SYNC_FAILURES = frozenset({"timeout", "failed", "rejected", "unanswered", "busy"})


class Legs:
    """The legs in progress: one asyncio task per leg, running its :class:`LegLifecycle`."""

    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine
        self._tasks: set[asyncio.Task[None]] = set()

    def launch(self, call: Call) -> None:
        task = asyncio.create_task(self._run(call))
        call.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: Call) -> None:
        engine = self.engine
        app = engine.apps.get(call.app_id)
        try:
            await LegLifecycle(engine, call, app, self.launch).run()
        except asyncio.CancelledError:
            self._mark_ended(call)
            raise
        except Exception:
            log.exception("call lifecycle failed", uuid=call.uuid)
            self._mark_ended(call)
        finally:
            call.changed()
            call.release()

    def _mark_ended(self, call: Call) -> None:
        if call.ended_mono is None:
            call.ended_mono = self.engine.clock.mono()
            call.end_sim = call.end_sim or self.engine.clock.sim()

    def start_inbound(self, caller: str, number: str, app_id: str | None = None) -> Call:
        """A person calls ``number``: the application's answer_url is fetched and its NCCO runs.

        Raises LookupError (no such application) or ValueError (it lacks answer/event URLs).
        """
        engine = self.engine
        app = engine.apps.get(app_id) if app_id else next(iter(engine.apps.all()), None)
        if app is None:
            raise LookupError(app_id or "application")
        answer = app.webhook_address("answer_url")
        event = app.webhook_address("event_url")
        if answer is None or event is None:
            raise ValueError("the application needs answer_url and event_url webhooks")
        call = engine.new_leg(
            app_id=app.id,
            to={"type": "phone", "number": number},
            from_={"type": "phone", "number": caller},
            event_url=event[0],
            event_method=event[1],
            leg="inbound",
        )
        call.direction = "inbound"
        call.outcome = "human"
        call.agent = None  # a person calling in, whatever the number
        call.answer_url, call.answer_method = [answer[0]], answer[1]
        self.launch(call)
        return call

    @property
    def live(self) -> int:
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Wait until no call lifecycle and no webhook retry is running.

        Bound it with ``asyncio.timeout``: with a long talk time this can take a while.
        """
        while True:
            pending = self._tasks | self.engine.poster.background
            if not pending:
                return
            await asyncio.wait(pending)

    def cancel_all(self) -> None:
        """Stop every lifecycle (a reset, or the simulator stopping)."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()


class LegLifecycle:
    """One leg from creation to its last webhook; ``launch`` starts the legs its NCCO connects."""

    def __init__(
        self,
        engine: SimEngine,
        call: Call,
        app: SimApplication | None,
        launch: Callable[[Call], None],
    ) -> None:
        self.engine = engine
        self.call = call
        self.app = app
        self.rng = call.rng
        self.profile = engine.profile
        self.events = CallEvents(engine, call, app)
        self.ncco = NccoRunner(engine, call, app, self.events, launch)
        self._amd_task: asyncio.Task[None] | None = None
        self.socket: WebSocketLeg | None = None  # an open websocket leg's connection

    def span(self, s: tuple[float, float]) -> float:
        return self.rng.uniform(*s)

    async def status(self, status: str, **extra: Any) -> None:
        await self.events.send(status_payload(self.engine, self.call, status, **extra), status)

    # --- before answer -------------------------------------------------------------------------
    async def run(self) -> None:
        if self.call.direction == "inbound":
            await self.inbound()
            return
        if is_websocket(self.call.to):
            await self.websocket()
            return
        call, engine, t = self.call, self.engine, self.profile.timing
        ov = call.override
        outcome = call.outcome
        will_ring = outcome not in ("rejected", "failed")
        setup = self.span(t.setup)
        try:
            if outcome == "rejected":
                await self.status("started")
                await engine.pause(call, setup)
                await self.final("rejected", self.rng.choice(_REJECT_DETAILS), completed=False)
                return
            swap = will_ring and self.rng.random() < self.profile.events.reorder_started_ringing
            if swap:
                # Both are created together; Vonage may deliver ringing first (KB-ORDER).
                await engine.pause(call, setup)
                self._ringing()
                await self.status("ringing")
                await self.status("started")
            else:
                await self.status("started")
                await engine.pause(call, setup)
                if will_ring:
                    self._ringing()
                    await self.status("ringing")
            timer = float(call.ringing_timer)
            if call.agent is not None and outcome == "human":
                ring = agents.answer_delay(self.rng, call.agent)
            elif outcome in ("human", "machine"):
                ring = self.span(ov.ring if ov is not None and ov.ring is not None else t.ring)
            elif outcome == "timeout":
                ring = timer
            else:
                ring = self.span(t.ring_fail)
            if will_ring and ring >= timer:
                ring, outcome = timer, "timeout"
                call.outcome = outcome
            await engine.pause(call, ring)
        except Hangup:
            await self.final("cancelled", None)
            return
        if outcome not in ("human", "machine"):
            await self.final(outcome, _FAILURE_DETAIL.get(outcome))
            return
        await self.answered()

    async def inbound(self) -> None:
        """A person calls one of the application's numbers: answer URL first, then the NCCO."""
        call, engine = self.call, self.engine
        try:
            await self.status("started")
            self._ringing()
            await self.status("ringing")
            await engine.pause(call, self.span(self.profile.timing.setup))
        except Hangup:
            await self.final("cancelled", None)
            return
        await self.answered()

    async def websocket(self) -> None:
        """The socket, not the profile's draw, decides: opened answers the leg, else it fails."""
        call, engine = self.call, self.engine
        sock = WebSocketLeg(engine, call)
        try:
            try:
                await self.status("started")
                opening = asyncio.create_task(sock.open())
                try:
                    await engine.pause(call, None, until=opening)
                finally:
                    if not opening.done():
                        opening.cancel()
                        await asyncio.gather(opening, return_exceptions=True)
            except Hangup:
                await self.final("cancelled", None)
                return
            if not opening.result():
                await self.final("failed", None)
                return
            call.outcome = "answered"
            self.socket = sock
            sock.start()
            await self.answered()
        finally:
            await sock.close()

    def _ringing(self) -> None:
        self.call.status = "ringing"
        self.call.ringing_sim = self.engine.clock.sim()
        self.call.changed()

    async def final(self, status: str, detail: str | None, *, completed: bool = True) -> None:
        """End an unanswered leg with a failure status (+ ``completed`` unless rejected)."""
        call, engine = self.call, self.engine
        call.status = status
        call.outcome = status
        call.detail = detail
        call.end_sim = engine.clock.sim()
        call.duration = 0
        call.rate = self.profile.pricing.rate
        call.price = price_of(call.rate, 0)
        call.disconnected_by = "platform"
        engine.ledger.count(f"outcome.{status}")
        extra = {"detail": detail} if detail else {}
        fail = status_payload(engine, call, status, **extra)
        completed_first = (
            completed and self.rng.random() < self.profile.events.reorder_final_completed
        )
        if completed_first:
            await self.events.send(completed_payload(engine, call), "completed")
        if call.sync_connect and status in _SYNC_FAILURES and call.event_url:
            # eventType synchronous: the connect's eventUrl may answer with an NCCO for the caller.
            reply = await engine.poster.request_ncco(
                call,
                self.app,
                [call.event_url],
                call.event_method,
                fail,
                kind="event",
                label=status,
                hook="event_url",
                validate=validate_ncco,
                allow_empty=True,
            )
            call.sync_reply = reply.ncco if reply.ok else None
        else:
            await self.events.send(fail, status)
        call.ended_mono = engine.clock.mono()
        call.changed()
        if completed and not completed_first:
            await self.events.send(completed_payload(engine, call), "completed")

    # --- answered ------------------------------------------------------------------------------
    async def answered(self) -> None:
        call, engine, t = self.call, self.engine, self.profile.timing
        ov = call.override
        human = call.outcome == "human"
        call.status = "answered"
        call.answered_sim = engine.clock.sim()
        call.network = self.profile.pricing.network
        call.rate = self.profile.pricing.rate
        agent = call.agent
        if agent is not None and (self.socket is None or agent.websocket_handle):
            talk = agents.handle_time(self.rng, agent)  # the agent hangs up when done
        elif self.socket is not None:
            talk = float(call.length_timer)  # the server decides when to hang up
        else:
            talk = self.span(
                ov.talk
                if ov is not None and ov.talk is not None
                else (t.talk if human else t.machine_talk)
            )
        if talk < call.length_timer:
            hold, call.deadline_by = talk, "user"
        else:
            hold, call.deadline_by = float(call.length_timer), "platform"
        call.hangup_at = engine.clock.mono() + engine.clock.real_seconds(hold)
        call.changed()
        await self.status("answered", start_time=None, rate=None, network=None)
        by = "platform"
        try:
            ncco: list[Any] | None = None
            try:
                if self.socket is None:
                    await self.amd()
                if call.leg == "connect":
                    await engine.pause(call, None)  # bridged until either side hangs up
                else:
                    ncco = await self.initial_ncco()
                    if ncco is None:
                        raise Hangup("platform")
            except Transfer as tr:
                ncco = await self.transfer_target(tr)
            if ncco is not None:
                await self.execute(ncco)
        except Hangup as h:
            by = h.by
        finally:
            if self._amd_task is not None:
                self._amd_task.cancel()
        call.disconnected_by = "user" if by == "user" else "platform"
        if self.socket is not None:
            await self.socket_ended()
        await self.complete()

    async def socket_ended(self) -> None:
        """Close the socket; if the server closed it, send ``disconnected`` (DIGEST §4.2, §4.3).

        A returned NCCO runs on the caller (the connect that made this leg takes it as the rest
        of its NCCO); a REST hangup or the other side ending raises no ``disconnected``.
        """
        call, engine, sock = self.call, self.engine, self.socket
        assert sock is not None
        await sock.close()
        if not sock.closed_by_server:
            return
        payload = status_payload(engine, call, "disconnected")
        if call.leg != "connect" or not call.event_url:
            await self.events.send(payload, "disconnected")
            return
        reply = await engine.poster.request_ncco(
            call,
            self.app,
            [call.event_url],
            call.event_method,
            payload,
            kind="event",
            label="disconnected",
            hook="event_url",
            validate=validate_ncco,
            allow_empty=True,
        )
        call.sync_reply = reply.ncco if reply.ok else None

    async def complete(self) -> None:
        call, engine = self.call, self.engine
        call.hangup_at = None
        for child in call.children:
            if not child.ended:
                child.interrupt(Hangup("platform"))
        await self.ncco.finish_recordings()
        call.end_sim = engine.clock.sim()
        call.duration = max(0, round(call.end_sim - (call.answered_sim or call.end_sim)))
        call.price = price_of(call.rate or self.profile.pricing.rate, call.duration)
        call.status = "completed"
        call.ended_mono = engine.clock.mono()
        call.changed()
        engine.ledger.count(f"outcome.{call.outcome}")
        await self.events.send(completed_payload(engine, call), "completed")

    async def execute(self, ncco: list[Any]) -> None:
        while True:
            try:
                await self.ncco.run(ncco)
                return
            except Transfer as tr:
                ncco = await self.transfer_target(tr)

    async def transfer_target(self, tr: Transfer) -> list[Any]:
        """The NCCO a REST transfer moves the leg to (fetched when given as URL)."""
        call, engine = self.call, self.engine
        new: list[Any] | None = tr.ncco
        if new is None and tr.urls:
            reply = await engine.poster.request_ncco(
                call,
                self.app,
                tr.urls,
                "GET",
                self._answer_payload(),
                kind="answer",
                label="transfer",
                hook="answer_url",
                validate=validate_ncco,
            )
            if not reply.ok or reply.ncco is None:
                await self._ncco_failed(reply.invalid, reply.reason, tr.urls[0])
                raise Hangup("platform")
            new = reply.ncco
        old = call.conversation_uuid
        call.conversation_uuid = f"CON-{uuid.uuid4()}"
        payload = {
            "conversation_uuid_from": old,
            "conversation_uuid_to": call.conversation_uuid,
            "uuid": call.uuid,
            "timestamp": iso(engine.clock.sim()),
        }
        await self.events.send(payload, "transfer")
        return new or []

    def _answer_payload(self) -> dict[str, Any]:
        call = self.call
        return {
            "to": call.to_str,
            "from": call.from_str,
            "uuid": call.uuid,
            "conversation_uuid": call.conversation_uuid,
            "region_url": self.engine.base_url,
        }

    async def _ncco_failed(self, invalid: bool, reason: str | None, url: str) -> None:
        call, engine = self.call, self.engine
        if invalid:
            call.detail = (reason or "")[:300]
            text = NCCO_SYNTAX_ERROR
        else:
            text = f"Unable to retrieve NCCO from {url}: {reason}"
            call.detail = text[:300]
        log.info("NCCO unavailable, hanging up", uuid=call.uuid, reason=reason)
        await self.events.send(error_payload(engine, call, text), "error")

    async def initial_ncco(self) -> list[Any] | None:
        call, engine = self.call, self.engine
        if call.ncco is not None:
            problem = validate_ncco(call.ncco)
            if problem is not None:
                await self._ncco_failed(True, problem, "")
                return None
            return call.ncco
        urls = call.answer_url or []
        reply = await engine.poster.request_ncco(
            call,
            self.app,
            urls,
            call.answer_method,
            self._answer_payload(),
            kind="answer",
            label="answer",
            hook="answer_url",
            validate=validate_ncco,
        )
        if not reply.ok or reply.ncco is None:
            await self._ncco_failed(reply.invalid, reply.reason, urls[0] if urls else "")
            return None
        return reply.ncco

    # --- answering machine detection -------------------------------------------------------------
    async def amd(self) -> None:
        call = self.call
        adv, std = call.amd, call.machine_detection
        if not adv and not std:
            return
        truth = call.outcome
        # An agent is a person by definition: its detector is never wrong (no agent "machine").
        right = call.agent is not None or self.rng.random() < self.profile.amd.accuracy
        detected = truth if right else ("machine" if truth == "human" else "human")
        behavior = str((adv.get("behavior") if adv else std) or "continue")
        mode = str(adv.get("mode") or "detect") if adv else "async"
        delay = self.span(self.profile.timing.amd)
        if mode in ("detect", "detect_beep"):
            await self.engine.pause(call, delay)
            await self._amd_result(detected, behavior, mode, adv or {}, sync=True)
        else:
            self._amd_task = asyncio.create_task(
                self._amd_async(delay, detected, behavior, mode, adv or {})
            )

    async def _amd_async(
        self, delay: float, detected: str, behavior: str, mode: str, adv: dict[str, Any]
    ) -> None:
        await asyncio.sleep(self.engine.clock.real_seconds(delay))
        if self.call.ended:
            return
        try:
            await self._amd_result(detected, behavior, mode, adv, sync=False)
        except Hangup as h:
            self.call.interrupt(h)

    async def _amd_result(
        self, detected: str, behavior: str, mode: str, adv: dict[str, Any], *, sync: bool
    ) -> None:
        call, engine = self.call, self.engine
        call.amd_result = detected
        if detected == "machine":
            call.status = "machine"
        await self.events.send(amd_payload(engine, call, detected), detected)
        if detected != "machine":
            return
        if behavior == "hangup":
            raise Hangup("platform")
        if mode == "detect_beep":
            beeps = self.rng.random() < self.profile.amd.beep_probability
            wait = self.rng.uniform(2.0, 6.0) if beeps else float(adv.get("beep_timeout") or 45)
            if sync:
                await engine.pause(call, wait)
            else:
                await asyncio.sleep(engine.clock.real_seconds(wait))
                if call.ended:
                    return
            sub = "beep_start" if beeps else "beep_timeout"
            await self.events.send(amd_payload(engine, call, "machine", sub), "machine")
