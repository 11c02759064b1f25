"""The simulated platform's state: applications, calls, limits, ledger, and the clock they share.

Everything the HTTP layer and the call lifecycles read and change lives on one :class:`SimEngine`,
so the HTTP front, the in-process Python API and the lifecycles see the same state without
globals. The lifecycles themselves (one task per leg) are owned by
:class:`~orchestrator.sandbox.simulator.lifecycle.Legs`, which uses the engine; the engine knows
nothing of them, so the arrows point one way.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from typing import Any

import structlog

from orchestrator.sandbox.simulator import agents
from orchestrator.sandbox.simulator.applications import ApplicationStore
from orchestrator.sandbox.simulator.auth import JwtVerifier
from orchestrator.sandbox.simulator.calls import Call, CallStore, Hangup
from orchestrator.sandbox.simulator.clock import SimClock, iso
from orchestrator.sandbox.simulator.conversations import ConversationRegistry
from orchestrator.sandbox.simulator.ledger import Ledger
from orchestrator.sandbox.simulator.limits import RollingWindowLimiter
from orchestrator.sandbox.simulator.profile import OUTCOMES, Override, Profile
from orchestrator.sandbox.simulator.recordings import RecordingStore
from orchestrator.sandbox.simulator.webhooks import WebhookPoster

__all__ = ["SimEngine"]

log = structlog.get_logger("simulator")


class SimEngine:
    def __init__(
        self,
        *,
        profile: Profile,
        cps: float = 3.0,
        rps: float = 15.0,
        seed: int | None = None,
        time_scale: float = 1.0,
        api_key: str = "simkey01",
        api_secret: str = "sim-api-secret",
        signature_secret: str | None = "sim-signature-secret-for-local-testing",
        webhook_verify: bool | str | None = None,
    ) -> None:
        self.profile = profile
        self.clock = SimClock(time_scale)
        if seed is None:
            seed = profile.seed if profile.seed is not None else secrets.randbits(32)
        self.seed = seed
        self.cps = cps
        self.rps = rps
        self.api_key = api_key
        self.api_secret = api_secret
        self.signature_secret = signature_secret
        self.apps = ApplicationStore()
        self.calls = CallStore(profile.limits.max_calls)
        self.ledger = Ledger(profile.limits.max_requests)
        self.cps_limiter = RollingWindowLimiter(cps)
        self.rps_limiter = RollingWindowLimiter(rps)
        self.verifier = JwtVerifier(self.apps.public_key_of)
        self.conversations = ConversationRegistry(profile.limits.max_calls)
        self.recordings = RecordingStore()
        self.poster = WebhookPoster(
            clock=self.clock,
            policy=profile.webhooks,
            signature_secret=signature_secret,
            api_key=api_key,
            verify=profile.webhooks.verify_tls if webhook_verify is None else webhook_verify,
        )
        self.fault_rng = random.Random(f"{seed}:faults")
        self.base_url = ""
        self._dials: dict[str, int] = {}
        self.started_wall = self.clock.wall()

    # --- randomness -----------------------------------------------------------------------------
    def call_rng(self, to: str) -> random.Random:
        """Per-leg RNG from (seed, destination, n-th dial of it): replayable under any interleaving."""
        n = self._dials.get(to, 0)
        self._dials[to] = n + 1
        return random.Random(f"{self.seed}:{to}:{n}")

    def draw_outcome(self, rng: random.Random, to: str) -> tuple[str, Override | None]:
        override = self.profile.override_for(to) if self.profile.overrides else None
        if override is not None and override.outcome is not None:
            # Draw anyway so the RNG stream does not depend on overrides.
            rng.random()
            return override.outcome, override
        outcome = rng.choices(OUTCOMES, weights=self.profile.outcomes.weights())[0]
        return outcome, override

    # --- legs -------------------------------------------------------------------------------------
    def new_leg(
        self,
        *,
        app_id: str,
        to: dict[str, Any],
        from_: dict[str, Any],
        event_url: str | None,
        event_method: str,
        conversation_uuid: str | None = None,
        leg: str = "api",
        parent: Call | None = None,
        call_ref: str | None = None,
        now_mono: float | None = None,
    ) -> Call:
        mono = self.clock.mono() if now_mono is None else now_mono
        to_str = str(
            to.get("number") or to.get("uri") or to.get("user") or to.get("extension") or ""
        )
        n = self._dials.get(to_str, 0)
        rng = self.call_rng(to_str)
        agent = self.profile.agent_for(to_str) if self.profile.agents else None
        if agent is not None:
            outcome, override = agents.draw_outcome(rng, agent), None
        else:
            outcome, override = self.draw_outcome(rng, to_str)
        # Input answers draw from their own stream: the call's is shared with tasks (AMD, the
        # lifecycle) whose draws interleave with the NCCO's by timing, so the same seed could
        # press different digits from one run to the next.
        input_rng = random.Random(f"{self.seed}:{to_str}:{n}:input")
        call = Call(
            uuid=str(uuid.uuid4()),
            conversation_uuid=conversation_uuid or f"CON-{uuid.uuid4()}",
            app_id=app_id,
            to=to,
            from_=from_,
            event_url=event_url,
            event_method=event_method,
            outcome=outcome,
            rng=rng,
            input_rng=input_rng,
            created_mono=mono,
            created_wall=self.clock.wall(mono),
            created_sim=self.clock.sim(mono),
            leg=leg,
            parent_uuid=parent.uuid if parent is not None else None,
            call_ref=call_ref,
        )
        call.override = override
        call.agent = agent
        self.calls.add(call)
        return call

    # --- waiting inside a lifecycle ---------------------------------------------------------------
    async def pause(
        self,
        call: Call,
        sim_seconds: float | None,
        until: asyncio.Future[Any] | None = None,
    ) -> None:
        """Let simulated time pass for a leg.

        Returns when the time is up or ``until`` resolves; raises :class:`Interrupt` when the leg is
        hung up or transferred (REST), and :class:`Hangup` when its deadline (callee hangs up,
        ``length_timer``) passes first.
        """
        if call.pending:
            raise call.pending.pop(0)
        real = None if sim_seconds is None else self.clock.real_seconds(sim_seconds)
        deadline_hit = False
        if call.hangup_at is not None:
            left = call.hangup_at - self.clock.mono()
            if left <= 0:
                raise Hangup(call.deadline_by)
            if real is None or left < real:
                real = left
                deadline_hit = True
        if real is not None and real <= 0 and until is None:
            await asyncio.sleep(0)
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            call.waiter = waiter
            futs: set[asyncio.Future[Any]] = {waiter}
            if until is not None:
                futs.add(until)
            try:
                await asyncio.wait(futs, timeout=real, return_when=asyncio.FIRST_COMPLETED)
            finally:
                call.waiter = None
                if not waiter.done():
                    waiter.cancel()
        if call.pending:
            raise call.pending.pop(0)
        if until is not None and until.done():
            return
        if deadline_hit:
            raise Hangup(call.deadline_by)

    # --- control ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every call, request, limit window, conversation and recording (apps stay).

        Stop the leg lifecycles first (``Legs.cancel_all``): they would go on changing calls.
        """
        self.poster.cancel_background()
        self.calls.clear()
        self.ledger.clear()
        self.cps_limiter.reset()
        self.rps_limiter.reset()
        self.conversations.clear()
        self.recordings.clear()
        self._dials.clear()
        self.verifier.forget()

    async def close(self) -> None:
        self.reset()
        await self.poster.close()

    def snapshot(
        self, live_calls: int = 0, *, include_conversations: bool = True, **kw: Any
    ) -> dict[str, Any]:
        """The ledger document (``GET /_sim/ledger``); ``live_calls``: legs still running."""
        extra = {
            "base_url": self.base_url,
            "now": round(self.clock.wall(), 6),
            "sim_now": iso(self.clock.sim()),
            "started_at": round(self.started_wall, 6),
            "seed": self.seed,
            "time_scale": self.clock.time_scale,
            "cps": self.cps,
            "rps": self.rps,
            "live_calls": live_calls,
            "webhooks_sent": self.poster.sent,
            "webhooks_failed": self.poster.failed,
        }
        log = self.conversations.log if include_conversations else None
        return self.ledger.snapshot(self.calls, extra=extra, conversations=log, **kw)
