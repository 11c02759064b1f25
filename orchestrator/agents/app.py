"""The agents app on the runtime: the whole agent pool as one state, fed by ``agents.control``.

Input: ``agents.control`` (one partition): agents' commands (key = agent id), the calls' records
(key = the callee's call_ref; a campaign's demand: the campaign), the results of this app's own
agent-leg commands (their ``reply_to``) and its clock ticks (key ``tick``). Every record maps to
one state key, ``pool`` (:meth:`AgentsApp.state_key`): the pool needs every agent in one state
to reserve the longest idle one, and the one partition gives it every record in one order. State:
:class:`~handlers.agent_desk.AgentDesk`, on ``agents.state`` as one record (bounded, see there).
Outputs: agent legs' ``create_call`` and abandon/hangup commands (``voice.commands``), notices
to the campaigns (``campaign.control``), ticks (``agents.control``).

**Why one state key and not the runtime's usual one state per Kafka key.** Reserving needs the
whole pool at once (who is free, who idled longest, who fits); states per agent would need a
second, cross-key step the runtime does not have. The price: every checkpoint that changed
anything writes the whole pool (up to the record limit: tens of kilobytes for a typical team,
at most about a megabyte, at most once per ``commit_interval_s``), and one process does all the
reserving. Both are bounded by the pool's caps (:mod:`handlers.agent_desk`); a larger operation
runs several deployments (``TOPIC_PREFIX``), one per team.

**Time** comes from the log: a record's own timestamp (capped at the wall clock plus a second, so
a producer with a clock far ahead cannot expire every deadline), and the app's ticks, written
when :meth:`~handlers.agent_desk.AgentDesk.next_due` says and decided on when read back. A replay
after a crash meets the same times in the same order and decides the same (the controller does
the same, :class:`~contracts.campaign.CampaignTick`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry

from contracts.agent_calls import AgentCall, AgentNotice, AgentsTick
from contracts.agents import AgentCommand
from contracts.call_refs import parse_agent_leg_ref
from contracts.envelopes import CommandEnvelope, CommandResult, command_key
from contracts.topics import AGENTS_CONTROL, CAMPAIGN_CONTROL, VOICE_COMMANDS, topic_name
from handlers.agent_desk import (
    Abandon,
    AgentDesk,
    DeskOutput,
    HangupLeg,
    LegCreated,
    PlaceLeg,
    abandon_command,
    agent_leg_command,
    hangup_command,
)
from orchestrator.agents.metrics import AgentsMetrics
from orchestrator.config import Settings
from orchestrator.runtime.app import App, Context, DecodeError, Output, Step
from orchestrator.tracing import call_traceparent

__all__ = ["POOL_KEY", "AgentsApp"]

log = structlog.get_logger("agents")

#: The one state key every record maps to.
POOL_KEY = "pool"
TICK_KEY = b"tick"

Event = AgentCommand | AgentCall | AgentsTick | CommandResult


class AgentsApp(App[AgentDesk, Event]):
    name = "agents"
    state_type = "AgentPoolRecord"
    invalid_errors = (ValueError,)

    def __init__(self, settings: Settings, *, registry: CollectorRegistry | None = None) -> None:
        p = settings.topic_prefix
        self.settings = settings
        self.commands_topic = topic_name(VOICE_COMMANDS, p)
        self.campaign_topic = topic_name(CAMPAIGN_CONTROL, p)
        self.control_topic = topic_name(AGENTS_CONTROL, p)
        self.metrics = AgentsMetrics(registry)
        #: A tick not read back after this long is written again (ticks are idempotent).
        self.tick_resend_s = 2.0
        #: Wall time of the tick in flight (memory only: a new owner just writes another).
        self._tick_sent: float | None = None

    # -- runtime hooks -----------------------------------------------------------------------

    def decode(self, key: bytes, value: bytes | None) -> Event:
        if value is None:
            raise DecodeError("tombstone on agents.control")
        try:
            doc = orjson.loads(value)
            kind = doc.get("type") if isinstance(doc, dict) else None
            if kind == "agent.command":
                return AgentCommand.model_validate(doc)
            if kind == "agent.call":
                return AgentCall.model_validate(doc)
            if kind == "agents.tick":
                return AgentsTick.model_validate(doc)
            if kind == "dispatcher.result":
                return CommandResult.model_validate(doc)
        except (orjson.JSONDecodeError, ValueError) as err:
            raise DecodeError(str(err)[:300]) from None
        raise DecodeError(f"unexpected record type {kind!r}")

    def state_key(self, key: str, event: Event) -> str:
        return POOL_KEY

    def apply(
        self, key: str, state: AgentDesk | None, event: Event, ctx: Context
    ) -> Step[AgentDesk]:
        desk = state if state is not None else AgentDesk()
        wall = ctx.now or time.time()
        stamp = ctx.timestamp_ms / 1000 if ctx.timestamp_ms else wall
        at = min(stamp, wall + 1.0)
        outs: list[DeskOutput]
        if isinstance(event, AgentsTick):
            self._tick_sent = None
            outs = desk.tick(at)
        elif isinstance(event, CommandResult):
            created = _leg_created(event)
            outs = desk.apply(created, at) if created is not None else []
        else:
            refused = len(desk.refused), (desk.refused[-1] if desk.refused else None)
            outs = desk.apply(event, at)
            if (len(desk.refused), (desk.refused[-1] if desk.refused else None)) != refused:
                self.metrics.refused.inc()
                log.warning("agents.login_refused", **desk.refused[-1])
        return self._step(desk, outs, wall)

    def on_timer(self, key: str, state: AgentDesk, ctx: Context) -> Step[AgentDesk]:
        """Write the clock's reading to the log; the decisions happen when it is read back."""
        wall = ctx.now or time.time()
        sent = self._tick_sent
        if sent is not None and wall - sent < self.tick_resend_s:
            return Step(state, (), timer=self.tick_resend_s - (wall - sent))
        self._tick_sent = wall
        tick = AgentsTick(wall=wall)
        out = Output(self.control_topic, TICK_KEY, tick.to_bytes(), record_type="AgentsTick")
        return Step(state, [out], timer=self.tick_resend_s)

    def dump_state(self, state: AgentDesk) -> Any:
        return state.dump()

    def load_state(self, raw: Any) -> AgentDesk:
        return AgentDesk.restore(raw)

    # -- internals ---------------------------------------------------------------------------

    def _step(self, desk: AgentDesk, outs: list[DeskOutput], wall: float) -> Step[AgentDesk]:
        records = [self._record(o) for o in outs]
        if outs:
            self.metrics.decided(outs)
            for o in outs:
                _log(o)
        self.metrics.observe(desk)
        due = desk.next_due()
        # Due times are stream times, and the stream follows the wall clock: a tick written at
        # wall time ``due`` is stamped ``due``.
        timer = None if due is None else max(0.005, due - wall)
        if self._tick_sent is not None and timer is not None:
            timer = max(timer, self._tick_sent + self.tick_resend_s - wall)
        return Step(desk, records, timer=timer)

    def _record(self, o: DeskOutput) -> Output:
        if isinstance(o, AgentNotice):
            return Output(
                self.campaign_topic,
                o.campaign.encode(),
                o.to_bytes(),
                record_type="AgentNotice",
                schema_version=o.schema_version,
                traceparent=call_traceparent(o.call_ref) if o.call_ref else None,
            )
        cmd: CommandEnvelope
        if isinstance(o, PlaceLeg):
            cmd = agent_leg_command(o, public_base=self.settings.public_base)
            trace = o.call_ref  # the agent's leg joins the callee's trace
        elif isinstance(o, Abandon):
            cmd = abandon_command(o)
            trace = o.call_ref
        else:
            cmd = hangup_command(o)
            trace = o.leg_ref
        return Output(
            self.commands_topic,
            command_key(cmd),
            cmd.to_bytes(),
            record_type="CommandEnvelope",
            schema_version=cmd.schema_version,
            traceparent=call_traceparent(trace),
        )


def _leg_created(result: CommandResult) -> LegCreated | None:
    """The result of an agent leg's create-call (other results need nothing of the pool)."""
    if result.kind != "create_call" or result.call_ref is None:
        return None
    leg = parse_agent_leg_ref(result.call_ref)
    if leg is None:
        return None
    error = result.error or {}
    return LegCreated(
        call_ref=leg.call_ref,
        leg_ref=result.call_ref,
        status=str(result.status),
        uuid=result.call_uuid,
        detail=str(error.get("reason") or f"http_{result.http_status}")[:80]
        if result.status == "failed"
        else None,
    )


def _log(o: DeskOutput) -> None:
    if isinstance(o, PlaceLeg):
        log.info(
            "agents.reserved",
            call_ref=o.call_ref,
            agent=o.agent_id,
            leg=o.leg_ref,
            replaces=o.replaces,
        )
    elif isinstance(o, Abandon):
        log.info("agents.abandoned", call_ref=o.call_ref, campaign=o.campaign)
    elif isinstance(o, HangupLeg):
        log.info("agents.leg_hung_up", leg=o.leg_ref)
    elif o.kind == "connected":
        log.info("agents.connected", call_ref=o.call_ref, agent=o.agent_id, wait_s=o.wait_s)
