"""The campaign controller as a runtime application: one state machine per campaign.

Input: ``campaign.control`` keyed by campaign name, carrying operator requests (start, pause,
resume, cancel) and the leg outcomes of the campaign's calls (forwarded from ``voice.outcomes``
by :mod:`orchestrator.campaign.forward`, re-keyed by campaign, so one campaign's whole story is in
one partition and one replica owns it). State: the campaign machine (calls in flight, contacts
waiting, read cursor, counters), in the runtime's store and its ``campaign.state`` changelog.
Outputs: ``create_call`` commands, one final result per contact on ``campaign.results``.

The runtime confirms outputs before it writes the state that produced them, so a restored state
never refers to a command that was not sent; a replay re-emits the same deterministic ids.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from contracts.campaign import (
    CampaignControl,
    CampaignSpec,
    ControlAction,
)
from contracts.envelopes import CommandResult, Outcome, command_key
from contracts.topics import CAMPAIGN_RESULTS, VOICE_COMMANDS
from handlers.campaign import (
    CampaignMachine,
    ContactTrack,
    DialRequest,
    DialResult,
    FinalResult,
    LegOutcome,
    run_id,
)
from handlers.campaign import Output as MachineOutput
from handlers.campaign_dial import build_create_call
from orchestrator.campaign.contacts import FileContactReader
from orchestrator.campaign.dnc import DncList, load_dnc
from orchestrator.campaign.topic_source import TopicContactReader
from orchestrator.config import Settings
from orchestrator.runtime.app import App, Context, DecodeError, Output, Step

__all__ = ["CALL_REF_RE", "CampaignState", "ControllerApp", "campaign_of"]

log = structlog.get_logger("campaign")

#: ``{campaign}.{run}.{row}.{attempt}`` (see handlers.campaign.make_call_ref).
CALL_REF_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,47})\.([0-9a-f]{8})\.(\d+)\.(\d+)$")

Event = CampaignControl | Outcome | CommandResult
ContactReader = FileContactReader | TopicContactReader


def campaign_of(call_ref: str | None) -> str | None:
    """The campaign a call_ref belongs to, or None for calls not placed by a campaign."""
    if not call_ref:
        return None
    m = CALL_REF_RE.match(call_ref)
    return m.group(1) if m else None


@dataclass(slots=True)
class CampaignState:
    spec: CampaignSpec
    machine: CampaignMachine
    start_id: str
    source_ranges: list[tuple[int, int, int]] | None = None
    updated_at: float = 0.0
    updated_wall: float = 0.0


class ControllerApp(App[CampaignState, Event]):
    name = "campaign-controller"
    invalid_errors = (ValueError,)

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        max_tick_s: float = 0.25,
    ) -> None:
        self.settings = settings
        self.commands_topic = f"{settings.topic_prefix}{VOICE_COMMANDS.name}"
        self.results_topic = f"{settings.topic_prefix}{CAMPAIGN_RESULTS.name}"
        self.clock = clock
        self.max_tick_s = max_tick_s
        self._wall = time.time()  # real time of the current call (pacing is in real seconds)
        self._readers: dict[str, ContactReader] = {}
        self._dnc: dict[str, DncList] = {}

    # -- runtime hooks -----------------------------------------------------------------------

    def decode(self, key: bytes, value: bytes | None) -> Event:
        if value is None:
            raise DecodeError("tombstone on campaign.control")
        try:
            doc = orjson.loads(value)
            kind = doc.get("type") if isinstance(doc, dict) else None
            if kind == "campaign.control":
                return CampaignControl.model_validate(doc)
            if kind == "voice.outcome":
                return Outcome.model_validate(doc)
            if kind == "dispatcher.result":
                return CommandResult.model_validate(doc)
        except (orjson.JSONDecodeError, ValueError) as err:
            raise DecodeError(str(err)[:300]) from None
        raise DecodeError(f"unexpected record type {kind!r}")

    def apply(
        self, key: str, state: CampaignState | None, event: Event, ctx: Context
    ) -> Step[CampaignState]:
        now = self._now(ctx)
        outs: list[MachineOutput] = []
        if isinstance(event, CampaignControl):
            if event.action == ControlAction.START:
                if state is not None:
                    log.info("campaign.start_ignored", campaign=key, reason="already started")
                    return self._step(key, state, [], now)
                assert event.spec is not None
                state = self._new_state(event, now)
                log.info("campaign.started", campaign=key, run=state.machine.run)
            elif state is None:
                log.warning("campaign.unknown", campaign=key, action=event.action)
                return Step(None)
            elif event.action == ControlAction.PAUSE:
                state.machine.pause(now)
            elif event.action == ControlAction.RESUME:
                state.machine.resume(now)
            elif event.action == ControlAction.CANCEL:
                outs += state.machine.cancel(now)
        elif isinstance(event, CommandResult):
            if state is None:
                return Step(None)
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
            if state is None:
                return Step(None)
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
            )
            outs += state.machine.on_event(ev, now)
        return self._step(key, state, outs, now)

    def on_timer(self, key: str, state: CampaignState, ctx: Context) -> Step[CampaignState]:
        try:
            return self._step(key, state, [], self._now(ctx))
        except Exception as err:
            # The runtime drops a timer whose handler raised, which would stall the campaign
            # silently; keep ticking (and saying why) instead.
            log.error("campaign.tick_failed", campaign=key, error=f"{type(err).__name__}: {err}")
            return Step(state, (), timer=1.0)

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
        return CampaignState(
            spec, machine, raw["start_id"], [tuple(r) for r in ranges] if ranges else None
        )

    # -- internals ---------------------------------------------------------------------------

    def _now(self, ctx: Context) -> datetime:
        self._wall = ctx.now or time.time()
        t = self.clock() if self.clock is not None else self._wall
        return datetime.fromtimestamp(t, UTC)

    def _cps(self, spec: CampaignSpec) -> float:
        return self.settings.vonage_cps * spec.pacing.cps_share

    def _dnc_for(self, spec: CampaignSpec) -> DncList:
        dnc = self._dnc.get(spec.name)
        if dnc is None:
            dnc = load_dnc(spec.dnc, spec.contacts.default_region)
            self._dnc[spec.name] = dnc
        return dnc

    def _new_state(self, ctrl: CampaignControl, now: datetime) -> CampaignState:
        spec = ctrl.spec
        assert spec is not None
        machine = CampaignMachine(
            spec, run=run_id(ctrl.id), cps_limit=self._cps(spec), dnc=self._dnc_for(spec)
        )
        machine.contacts_total = ctrl.contacts_total
        machine.start(now)
        self._readers.pop(spec.name, None)
        return CampaignState(spec, machine, ctrl.id, ctrl.source_ranges)

    def _reader(self, state: CampaignState) -> ContactReader:
        m = state.machine
        spec = state.spec
        reader = self._readers.get(spec.name)
        if reader is None or reader.position != m.cursor:
            if reader is not None:
                reader.close()
            if spec.contacts.kind == "topic":
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
            if want > 0 and not m.eof:
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
        m.drain_changes()
        state.updated_at = now.timestamp()
        state.updated_wall = self._wall
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
                )
                records.append(Output(self.commands_topic, command_key(cmd), cmd.to_bytes()))
            elif isinstance(o, FinalResult):
                r = o.result
                records.append(
                    Output(
                        self.results_topic, f"{r.campaign}/{r.contact_id}".encode(), r.to_bytes()
                    )
                )
        if not m.active:
            reader = self._readers.pop(key, None)
            if reader is not None:
                reader.close()
            log.info("campaign.finished", campaign=key, status=str(m.status))
            return Step(state, records, timer=None, finished=True)
        return Step(state, records, timer=self._timer(m, now))

    def _timer(self, m: CampaignMachine, now: datetime) -> float:
        wait = m.next_wakeup(now, self._wall)
        if wait is None:
            return self.max_tick_s
        return min(self.max_tick_s, max(0.005, wait))
