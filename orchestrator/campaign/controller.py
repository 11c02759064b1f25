"""The campaign controller as a runtime application: one state machine per campaign.

Input: ``campaign.control`` keyed by campaign name, carrying operator requests (start, pause,
resume, cancel), the dispatcher's results of the campaign's create-call commands (their
``reply_to``) and the outcomes of the campaign calls' legs (the worker writes them there too,
keyed by the campaign read from the call_ref): one campaign's whole story is in one partition
and one replica owns it. State: the campaign machine (calls in flight, contacts
waiting, read cursor, counters), in the runtime's store and its ``campaign.state`` changelog.
Outputs: ``create_call`` commands, one final result per contact on ``campaign.results``.

Agent campaigns (``mode: progressive | predictive``) also read the worker's AMD milestones and the
agent pool's notices from ``campaign.control``, and write to ``agents.control``: a ``demand`` when
the campaign starts (and again when the pool has been silent for a while, and ``active: false``
when it ends) and a ``reserve`` for each human answer (``contracts.agent_calls``).

The runtime confirms outputs before it writes the state that produced them, so a restored state
never refers to a command that was not sent; a replay re-emits the same deterministic ids.

Time is part of the input (:class:`~contracts.campaign.CampaignTick`): a due timer only writes the
clock's reading to ``campaign.control``, and the machine sees time move when that tick is read
back, in log order with the outcomes. A replay after a crash therefore makes the same decisions as
the first run (an attempt times out, or gets its outcome, exactly as it did before), so what it
emits again is the same, not merely under the same ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry, Histogram

from contracts.agent_calls import AgentCall, AgentNotice, LegMilestone
from contracts.campaign import (
    CampaignControl,
    CampaignSpec,
    CampaignTick,
    ControlAction,
)
from contracts.envelopes import CommandResult, Outcome, command_key, stable_id
from contracts.topics import (
    AGENTS_CONTROL,
    CAMPAIGN_CONTROL,
    CAMPAIGN_RESULTS,
    VOICE_COMMANDS,
    topic_name,
)
from handlers.campaign import (
    AgentOutcome,
    CampaignMachine,
    ContactTrack,
    DialRequest,
    DialResult,
    FinalResult,
    LegOutcome,
    Milestone,
    ReserveAgent,
    run_id,
)
from handlers.campaign import Output as MachineOutput
from handlers.campaign_dial import abandon_values, build_create_call
from handlers.flow_ctx import ctx_keys
from orchestrator.campaign.contacts import FileContactReader
from orchestrator.campaign.dnc import DncList, load_dnc
from orchestrator.campaign.metrics import CampaignMetrics
from orchestrator.campaign.topic_dnc import load_dnc_slices
from orchestrator.campaign.topic_source import TopicContactReader
from orchestrator.config import Settings
from orchestrator.runtime.app import App, Context, DecodeError, Output, Step
from orchestrator.tracing import call_traceparent

__all__ = ["CampaignState", "ControllerApp"]

log = structlog.get_logger("campaign")

Event = CampaignControl | CampaignTick | Outcome | CommandResult | LegMilestone | AgentNotice

#: An agent campaign re-sends its demand when the pool has said nothing for this long (the pool
#: reports at least every 10 s while it knows the campaign: silence means it forgot it).
DEMAND_RESEND_S = 30.0
ContactReader = FileContactReader | TopicContactReader


@dataclass(slots=True)
class CampaignState:
    spec: CampaignSpec
    machine: CampaignMachine
    start_id: str
    source_ranges: list[tuple[int, int, int]] | None = None
    #: Stream time: the campaign clock and the real clock of the last tick read (see module doc).
    updated_at: float = 0.0
    updated_wall: float = 0.0


class ControllerApp(App[CampaignState, Event]):
    name = "campaign-controller"
    state_type = "CampaignStateRecord"
    invalid_errors = (ValueError,)

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        max_tick_s: float = 0.25,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.commands_topic = topic_name(VOICE_COMMANDS, settings.topic_prefix)
        self.results_topic = topic_name(CAMPAIGN_RESULTS, settings.topic_prefix)
        self.control_topic = topic_name(CAMPAIGN_CONTROL, settings.topic_prefix)
        self.agents_topic = topic_name(AGENTS_CONTROL, settings.topic_prefix)
        self.clock = clock
        self.max_tick_s = max_tick_s
        secrets = settings.signature_secrets()
        #: Signs the contact's values in a named flow's answer URL (``handlers.flow_ctx``).
        self.ctx_key = ctx_keys(secrets)[0] if secrets else None
        #: A tick not read back after this long is written again (it is idempotent).
        self.tick_resend_s = 2.0
        self._wall = 0.0  # the stream's real time in the current step (pacing is in real seconds)
        self._readers: dict[str, ContactReader] = {}
        #: Real time a tick was written per campaign and not read back yet (memory only: after a
        #: takeover the new owner just writes another; a tick older than stream time is a no-op).
        self._tick_sent: dict[str, float] = {}
        #: Real time the next tick is wanted per campaign. Records that are not ticks may bring it
        #: forward, never push it back: a steady stream of outcomes would otherwise keep time
        #: from moving (each would re-arm the timer a little later).
        self._due: dict[str, float] = {}
        self._real = 0.0  # real time of the current call
        self.tick_lag = Histogram(
            "orchestrator_campaign_tick_lag_seconds",
            "Real time from writing a clock tick to reading it back (how stale decisions are).",
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self._dnc: dict[str, DncList] = {}
        self.metrics = CampaignMetrics(registry)
        self._dnc_loads: dict[str, asyncio.Task[None]] = {}

    # -- runtime hooks -----------------------------------------------------------------------

    def decode(self, key: bytes, value: bytes | None) -> Event:
        if value is None:
            raise DecodeError("tombstone on campaign.control")
        try:
            doc = orjson.loads(value)
            kind = doc.get("type") if isinstance(doc, dict) else None
            if kind == "campaign.control":
                return CampaignControl.model_validate(doc)
            if kind == "campaign.tick":
                return CampaignTick.model_validate(doc)
            if kind == "voice.outcome":
                return Outcome.model_validate(doc)
            if kind == "dispatcher.result":
                return CommandResult.model_validate(doc)
            if kind == "voice.milestone":
                return LegMilestone.model_validate(doc)
            if kind == "agent.notice":
                return AgentNotice.model_validate(doc)
        except (orjson.JSONDecodeError, ValueError) as err:
            raise DecodeError(str(err)[:300]) from None
        raise DecodeError(f"unexpected record type {kind!r}")

    def apply(
        self, key: str, state: CampaignState | None, event: Event, ctx: Context
    ) -> Step[CampaignState]:
        self._real = ctx.now or time.time()
        if state is None:
            if isinstance(event, CampaignControl) and event.action == ControlAction.START:
                # Nothing is decided before the first tick (written right away); until then the
                # stream time is the request's own (a cancel may come first).
                state = self._new_state(event)
                log.info("campaign.started", campaign=key, run=state.machine.run)
                return Step(state, [self._tick(key, self._real)], timer=self.tick_resend_s)
            if isinstance(event, CampaignControl):
                log.warning("campaign.unknown", campaign=key, action=event.action)
            return Step(None)
        now = self._stream_now(state)
        outs: list[MachineOutput] = []
        if isinstance(event, CampaignTick):
            if self._tick_sent.pop(key, None) is not None:  # ours, not a replayed one
                self.tick_lag.observe(max(0.0, self._real - event.wall))
                self._due.pop(key, None)  # time moved: the next due time is decided afresh
            first = state.updated_wall == 0.0
            if first or event.at.timestamp() > state.updated_at:
                state.updated_at = event.at.timestamp()
            state.updated_wall = max(state.updated_wall, event.wall)
            now = self._stream_now(state)
            state.machine.start(now)
        elif isinstance(event, CampaignControl):
            if event.action == ControlAction.START:
                log.info("campaign.start_ignored", campaign=key, reason="already started")
                return self._step(key, state, [], now)
            if event.action == ControlAction.PAUSE:
                state.machine.pause(now)
            elif event.action == ControlAction.RESUME:
                state.machine.resume(now)
            elif event.action == ControlAction.CANCEL:
                outs += state.machine.cancel(now)
        elif isinstance(event, LegMilestone):
            outs += state.machine.on_event(
                Milestone(
                    call_ref=event.call_ref,
                    status=event.status,
                    uuid=event.uuid,
                    seen_at=event.occurred_at.timestamp(),
                    region_url=event.region_url,
                ),
                now,
                self._wall,
            )
        elif isinstance(event, AgentNotice):
            if event.kind == "load":
                assert event.load is not None
                state.machine.on_agent_load(event.load, self._wall)
            elif event.call_ref is not None and event.wait_s is not None:
                outs += state.machine.on_event(
                    AgentOutcome(event.call_ref, event.kind, event.wait_s, event.agent_id),
                    now,
                    self._wall,
                )
        elif isinstance(event, CommandResult):
            if event.call_ref is None or event.kind != "create_call":
                return self._step(key, state, [], now)
            error = event.error or {}
            outs += state.machine.on_event(
                DialResult(
                    call_ref=event.call_ref,
                    status=str(event.status),
                    at=event.occurred_at,
                    uuid=event.call_uuid,
                    detail=str(error.get("reason") or f"http_{event.http_status}")[:80]
                    if event.status == "failed"
                    else None,
                ),
                now,
            )
        else:
            if event.call_ref is None or event.scope != "leg":
                # Keep the timer armed: a Step without one would cancel the campaign's ticks.
                return self._step(key, state, [], now)
            ev = LegOutcome(
                call_ref=event.call_ref,
                disposition=event.disposition,
                at=event.end_time or event.occurred_at,
                uuid=event.uuid,
                amd=event.amd,
                detail=event.detail,
                duration_s=event.duration_s,
                to=event.to,
                captures=event.captures,
            )
            outs += state.machine.on_event(ev, now)
        return self._step(key, state, outs, now)

    def on_timer(self, key: str, state: CampaignState, ctx: Context) -> Step[CampaignState]:
        """Write the clock's reading to the log; the decisions happen when it is read back."""
        wall = ctx.now or time.time()
        sent = self._tick_sent.get(key)
        if sent is not None and wall - sent < self.tick_resend_s:
            # One tick in flight per campaign; reading it back re-arms the timer.
            self._due[key] = sent + self.tick_resend_s
            return Step(state, (), timer=self.tick_resend_s - (wall - sent))
        self._due[key] = wall + self.tick_resend_s
        return Step(state, [self._tick(key, wall)], timer=self.tick_resend_s)

    def _tick(self, key: str, wall: float) -> Output:
        self._tick_sent[key] = wall
        tick = CampaignTick(campaign=key, at=self._clock_now(wall), wall=wall)
        return Output(
            self.control_topic,
            key.encode(),
            tick.to_bytes(),
            record_type="CampaignTick",
        )

    def dump_state(self, state: CampaignState) -> Any:
        m = state.machine
        now = datetime.fromtimestamp(state.updated_at or 0, UTC)
        return {
            "spec": state.spec.to_json(),
            "start_id": state.start_id,
            "source_ranges": state.source_ranges,
            "meta": m.meta_json(),
            "tracks": [t.to_json() for t in m.tracks()],
            "progress": m.progress(now, state.updated_wall or None).model_dump(mode="json"),
            "clock": {"at": state.updated_at, "wall": state.updated_wall},
        }

    def load_state(self, raw: Any) -> CampaignState:
        spec = CampaignSpec.model_validate(raw["spec"])
        machine = CampaignMachine.restore(
            spec,
            raw["meta"],
            [ContactTrack.from_json(t) for t in raw["tracks"]],
            cps_limit=self._cps(spec),
            dnc=self._dnc_for(spec),
        )
        ranges = raw.get("source_ranges")
        clock = raw.get("clock") or {}
        return CampaignState(
            spec,
            machine,
            raw["start_id"],
            [tuple(r) for r in ranges] if ranges else None,
            # A state written before ticks existed: start from the clock (the next tick corrects).
            updated_at=float(clock.get("at") or time.time()),
            updated_wall=float(clock.get("wall") or time.time()),
        )

    # -- internals ---------------------------------------------------------------------------

    def _clock_now(self, wall: float) -> datetime:
        """The campaign clock now (a test may run it faster than real time); only ticks read it."""
        return datetime.fromtimestamp(self.clock() if self.clock is not None else wall, UTC)

    def _stream_now(self, state: CampaignState) -> datetime:
        """The time of the last tick read: what every decision of a step uses."""
        self._wall = state.updated_wall
        return datetime.fromtimestamp(state.updated_at, UTC)

    def _cps(self, spec: CampaignSpec) -> float:
        return self.settings.vonage_cps * spec.pacing.cps_share

    def _dnc_for(self, spec: CampaignSpec) -> DncList:
        dnc = self._dnc.get(spec.name)
        if dnc is None:
            dnc = load_dnc(spec.dnc, spec.contacts.default_region)
            self._dnc[spec.name] = dnc
            if spec.dnc_uploads:
                self._load_uploaded_dnc(spec, dnc)
        return dnc

    def _load_uploaded_dnc(self, spec: CampaignSpec, dnc: DncList) -> None:
        """Fill ``dnc`` from the campaign's uploaded lists in the background (see _dnc_ready)."""
        task = asyncio.get_running_loop().create_task(
            load_dnc_slices(self.settings, list(spec.dnc_uploads), dnc),
            name=f"dnc-{spec.name}",
        )
        self._dnc_loads[spec.name] = task

    def _dnc_ready(self, spec: CampaignSpec) -> bool:
        """No contact is read before the campaign's uploaded DNC numbers are all in its list."""
        task = self._dnc_loads.get(spec.name)
        if task is None:
            return True
        if not task.done():
            return False
        if task.cancelled() or task.exception() is not None:
            err = None if task.cancelled() else task.exception()
            log.warning("campaign.dnc_load_failed", campaign=spec.name, error=repr(err))
            self._load_uploaded_dnc(spec, self._dnc[spec.name])  # again; contacts wait
            return False
        del self._dnc_loads[spec.name]
        return True

    def _new_state(self, ctrl: CampaignControl) -> CampaignState:
        spec = ctrl.spec
        assert spec is not None
        machine = CampaignMachine(
            spec, run=run_id(ctrl.id), cps_limit=self._cps(spec), dnc=self._dnc_for(spec)
        )
        machine.contacts_total = ctrl.contacts_total
        self._readers.pop(spec.name, None)
        # Stream time starts at the request's time; the first tick replaces it (wall 0 = no
        # tick read yet).
        return CampaignState(
            spec, machine, ctrl.id, ctrl.source_ranges, updated_at=ctrl.occurred_at.timestamp()
        )

    def _reader(self, state: CampaignState) -> ContactReader:
        m = state.machine
        spec = state.spec
        reader = self._readers.get(spec.name)
        if reader is None or reader.position != m.cursor:
            if reader is not None:
                reader.close()
            if spec.contacts.upload is not None:
                up = spec.contacts.upload
                reader = TopicContactReader(
                    self.settings,
                    up.topic,
                    [(up.partition, up.begin, up.end)],
                    start=m.cursor,
                    default_region=spec.contacts.default_region,
                    key=up.key.encode(),
                )
            elif spec.contacts.kind == "topic":
                reader = TopicContactReader(
                    self.settings,
                    spec.contacts.location,
                    state.source_ranges or [],
                    start=m.cursor,
                    default_region=spec.contacts.default_region,
                )
            else:
                reader = FileContactReader(spec.contacts, start=m.cursor)
            self._readers[spec.name] = reader
        return reader

    def _advance(self, state: CampaignState, now: datetime) -> list[MachineOutput]:
        m = state.machine
        outs: list[MachineOutput] = []
        for _ in range(8):  # bounded work per call keeps the partition responsive
            want = m.wants()
            if want > 0 and not m.eof and self._dnc_ready(state.spec):
                reader = self._reader(state)
                outs += m.add_contacts(reader.read(want), reader.eof, now)
            outs += m.tick(now, self._wall)
            if m.wants() == 0 or m.eof:
                break
        return outs

    def _step(
        self, key: str, state: CampaignState, outs: list[MachineOutput], now: datetime
    ) -> Step[CampaignState]:
        m = state.machine
        if m.active:
            outs = outs + self._advance(state, now)
        m.forget_changes()  # the whole state goes to campaign.state (dump_state), not changes
        records: list[Output] = []
        account = state.spec.account or self.settings.vonage_account
        for o in outs:
            if isinstance(o, DialRequest):
                cmd = build_create_call(
                    state.spec,
                    o.contact,
                    o.call_ref,
                    public_base=self.settings.public_base,
                    account=account,
                    at=o.at,
                    ctx_key=self.ctx_key,
                )
                records.append(
                    Output(
                        self.commands_topic,
                        command_key(cmd),
                        cmd.to_bytes(),
                        record_type="CommandEnvelope",
                        schema_version=cmd.schema_version,
                        # The call's own trace: the dial starts the trace of the call it makes.
                        traceparent=call_traceparent(o.call_ref),
                    )
                )
            elif isinstance(o, ReserveAgent):
                records.append(self._reserve(state.spec, o, account))
            elif isinstance(o, FinalResult):
                r = o.result
                self.metrics.result(r.campaign, str(r.disposition))
                records.append(
                    Output(
                        self.results_topic,
                        f"{r.campaign}/{r.contact_id}".encode(),
                        r.to_bytes(),
                        record_type="ContactResult",
                        schema_version=r.schema_version,
                    )
                )
        side = m.agents
        if side is not None:
            if not m.active:
                if side.demand_wall is not None:  # once: the pool forgets the campaign
                    side.demand_wall = None
                    records.append(self._demand(state.spec, False, account))
            elif side.demand_wall is None or (
                self._wall - max(side.demand_wall, side.load_wall or 0.0) >= DEMAND_RESEND_S
            ):
                side.demand_wall = self._wall
                records.append(self._demand(state.spec, True, account))
        if self.metrics.due(key, self._real, finished=not m.active):
            if side is not None and side.last_room is not None:
                seen, allowed = side.last_room
                plan = m.agents.predictive.plan if m.agents and m.agents.predictive else None
                log.debug(
                    "campaign.pacing",
                    campaign=key,
                    phase=side.phase,
                    available=seen.available,
                    busy=seen.busy,
                    ringing=seen.ringing,
                    waiting=seen.waiting,
                    allowed=allowed,
                    in_flight=len(m.in_flight),
                    plan=plan.to_json() if plan is not None else None,
                )
            cap = state.spec.agent_rules.abandon_cap if side is not None else None
            self.metrics.observe(m.progress(now, state.updated_wall or None), self._real, cap)
        if not m.active:
            reader = self._readers.pop(key, None)
            if reader is not None:
                reader.close()
            log.info("campaign.finished", campaign=key, status=str(m.status))
            self._due.pop(key, None)
            self._tick_sent.pop(key, None)
            return Step(state, records, timer=None, finished=True)
        due = min(self._due.get(key, float("inf")), self._real + self._timer(m, now))
        self._due[key] = due
        return Step(state, records, timer=max(0.0, due - self._real))

    def _caller(self, spec: CampaignSpec) -> str | None:
        numbers = spec.from_.numbers
        return None if spec.from_.random_from_number or not numbers else numbers[0]

    def _demand(self, spec: CampaignSpec, active: bool, account: str) -> Output:
        """Tell the pool this campaign wants agents (and whom, and its abandon rules), or not."""
        rules = spec.agent_rules
        rec = AgentCall(
            id=stable_id("agd", spec.name, repr(self._wall), str(active)),
            occurred_at=datetime.fromtimestamp(self._wall or self._real, UTC),
            kind="demand",
            campaign=spec.name,
            active=active,
            need=rules.need if active else None,
            connect_within=rules.connect_within if active else None,
            abandon_message=rules.abandon_message if active else None,
            account=account,
            caller=self._caller(spec) if active else None,
        )
        return Output(
            self.agents_topic, spec.name.encode(), rec.to_bytes(), record_type="AgentCall"
        )

    def _reserve(self, spec: CampaignSpec, o: ReserveAgent, account: str) -> Output:
        """A person answered: ask the pool for an agent (keyed by the call, like its legs)."""
        rules = spec.agent_rules
        rec = AgentCall(
            id=stable_id("agr", o.call_ref),
            occurred_at=o.at,
            kind="reserve",
            campaign=spec.name,
            call_ref=o.call_ref,
            uuid=o.uuid,
            region_url=o.region_url,
            detected_at=o.seen_at,
            need=rules.need,
            connect_within=rules.connect_within,
            account=account,
            caller=self._caller(spec),
            values=abandon_values(spec, o.contact) or None,
        )
        return Output(
            self.agents_topic,
            o.call_ref.encode(),
            rec.to_bytes(),
            record_type="AgentCall",
            traceparent=call_traceparent(o.call_ref),
        )

    def _timer(self, m: CampaignMachine, now: datetime) -> float:
        wait = m.next_wakeup(now, self._wall)
        if wait is None:
            return self.max_tick_s
        return min(self.max_tick_s, max(0.005, wait))
