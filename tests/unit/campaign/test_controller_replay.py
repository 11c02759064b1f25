"""A controller that crashes and replays its input from an older state emits what it emitted before.

The runtime restores a campaign's state from its last checkpoint and replays the input records
after it. The outputs of the replay must be the *same* records as the first time (same ids and
same content), whatever the wall clock says at replay time: a contact's final result that came
out as ``unanswered`` must not come out again as ``failed``/``no_outcome`` because the replay
happens after the attempt timeout (CI found exactly that). Time reaches the machine only as
ticks in the log, so this holds for any crash point; hypothesis picks the schedules and points.

This drives :class:`ControllerApp` directly with a list standing in for ``campaign.control``
(no broker: the property is about the app's decisions, the runtime's replay is tested on Kafka in
``tests/integration/campaign``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.campaign import CampaignControl, ControlAction, parse_campaign_yaml
from contracts.envelopes import CommandEnvelope, CommandResult, Outcome, stable_id
from orchestrator.campaign.controller import CampaignState, ControllerApp
from orchestrator.runtime.app import Context
from tests.conftest import make_settings

T0 = datetime(2026, 3, 3, 13, 50, tzinfo=UTC)
N_CONTACTS = 24

SPEC = """\
name: replay
contacts: {{csv: {contacts}, default_region: GB}}
from: {{numbers: ["442079460000"]}}
flow: {{ncco: [{{action: talk, text: "Hello {{{{name}}}}"}}]}}
pacing: {{max_concurrent: 6}}
retry:
  busy: {{delay: 20s, max_attempts: 3}}
  unanswered: {{delay: 30s, max_attempts: 2}}
  failed: {{delay: 10s, max_attempts: 2}}
calling_hours: null
attempt_timeout: 90s
ringing_timer: 30
"""


@dataclass
class Run:
    """One controller process: its app, the clocks it reads, and what each input made it emit."""

    app: ControllerApp
    wall: float
    state: CampaignState | None = None
    timer_at: float | None = None
    #: input offset -> the records (topic, key, value) its apply produced, ticks excluded
    emitted: dict[int, list[tuple[str, bytes, bytes]]] = field(default_factory=dict)

    def ctx(self) -> Context:
        return Context(partition=0, offset=0, timestamp_ms=0, now=self.wall)


def _app(wall_ref: list[float]) -> ControllerApp:
    settings = make_settings("127.0.0.1:9", topic_prefix="r.")
    # The campaign clock runs 10x real time, as in the integration tests' simulated clock.
    return ControllerApp(settings, clock=lambda: T0.timestamp() + (wall_ref[0] - 1000.0) * 10)


def _split(
    app: ControllerApp, outputs: object
) -> tuple[list[bytes], list[tuple[str, bytes, bytes]]]:
    ticks, other = [], []
    for o in outputs:  # type: ignore[attr-defined]
        if o.topic == app.control_topic:
            ticks.append(o.value)
        else:
            other.append((o.topic, o.key, o.value))
    return ticks, other


def _call_events(cmd: CommandEnvelope, rnd: random.Random, at: datetime) -> list[bytes]:
    """What the dispatcher and the worker would write to campaign.control for one create_call."""
    ref = cmd.call_ref
    assert ref is not None
    uuid = stable_id("uuid", ref)
    res = CommandResult(
        id=CommandResult.make_id(cmd.id),
        occurred_at=at,
        flow_key=ref,
        command_id=cmd.id,
        kind="create_call",
        status="succeeded",
        call_ref=ref,
        http_status=201,
        call_uuid=uuid,
    )
    disposition = rnd.choice(["answered", "busy", "unanswered", "failed", "answered"])
    out = Outcome(
        id=Outcome.make_id("leg", ref, uuid),
        occurred_at=at,
        flow_key=ref,
        scope="leg",
        call_ref=ref,
        uuid=uuid,
        disposition=disposition,
        end_time=at,
    )
    return [res.to_bytes(), out.to_bytes()]


def _simulate(tmp: Path, seed: int) -> tuple[list[bytes], Run, list[CampaignState | None]]:
    """The first run: a log of inputs, interleaved timers, late and early outcomes."""
    contacts = tmp / "contacts.csv"
    contacts.write_text(
        "number,name\n" + "".join(f"+44 20 7946 {i:04d},P{i}\n" for i in range(N_CONTACTS))
    )
    spec = parse_campaign_yaml(SPEC.format(contacts=contacts))
    rnd = random.Random(seed)
    wall = [1000.0]
    run = Run(_app(wall), wall=wall[0])
    start = CampaignControl(
        id="start-1", occurred_at=T0, campaign="replay", action=ControlAction.START, spec=spec
    )
    log: list[bytes] = [start.to_bytes()]
    pending: list[tuple[float, bytes]] = []  # (real time it reaches the log, record)
    snapshots: list[CampaignState | None] = []  # state before applying log[i] (a checkpoint)
    i = 0
    for _ in range(20_000):
        # Records whose time has come reach the log (what the dispatcher and the worker wrote).
        pending.sort(key=lambda p: p[0])
        while pending and pending[0][0] <= wall[0]:
            log.append(pending.pop(0)[1])
        if i < len(log):
            snapshots.append(_copy(run.app, run.state))
            run.wall = wall[0]
            step = run.app.apply("replay", run.state, run.app.decode(b"replay", log[i]), run.ctx())
            run.state = step.state
            ticks, other = _split(run.app, step.outputs)
            log.extend(ticks)
            run.emitted[i] = other
            run.timer_at = None if step.timer is None else wall[0] + step.timer
            for topic, _, value in other:
                if topic.endswith("voice.commands"):
                    cmd = CommandEnvelope.model_validate_json(value)
                    at = datetime.fromtimestamp(run.app.clock(), UTC)  # type: ignore[misc]
                    # Most calls end within a few seconds; some only after the attempt timeout.
                    delay = rnd.choice([0.2, 0.5, 1.0, 2.0, 3.0, 12.0])
                    for k, rec in enumerate(_call_events(cmd, rnd, at)):
                        pending.append((wall[0] + (0.05 if k == 0 else delay), rec))
            i += 1
            if step.finished:
                break
            continue
        # Nothing to read: time passes and the timer fires.
        wall[0] += rnd.choice([0.01, 0.05, 0.1, 0.3])
        if run.state is not None and run.timer_at is not None and wall[0] >= run.timer_at:
            run.wall = wall[0]
            step = run.app.on_timer("replay", run.state, run.ctx())
            ticks, other = _split(run.app, step.outputs)
            assert not other, "a timer decided something; only ticks may leave a timer"
            log.extend(ticks)
            run.timer_at = None if step.timer is None else wall[0] + step.timer
    else:
        raise AssertionError("the campaign did not finish")
    return log[:i], run, snapshots


def _copy(app: ControllerApp, state: CampaignState | None) -> CampaignState | None:
    """The state as the changelog holds it (JSON round trip)."""
    if state is None:
        return None
    return app.load_state(orjson.loads(orjson.dumps(app.dump_state(state))))


def _results(run: Run) -> dict[str, set[bytes]]:
    by_contact: dict[str, set[bytes]] = defaultdict(set)
    for records in run.emitted.values():
        for topic, key, value in records:
            if topic.endswith("campaign.results"):
                by_contact[key.decode()].add(value)
    return by_contact


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), crash=st.floats(0.05, 0.95), late=st.floats(5.0, 500.0))
def test_replay_after_a_crash_emits_the_same_records(
    tmp_path: Path, seed: int, crash: float, late: float
) -> None:
    log, first, snapshots = _simulate(tmp_path, seed)
    results = _results(first)
    assert len(results) == N_CONTACTS, "every contact has a final result"
    assert all(len(v) == 1 for v in results.values())

    # A new process takes over from the checkpoint before record k, `late` seconds later (often
    # after every attempt timeout), and replays the rest of the log.
    k = max(1, int(len(log) * crash))
    wall = [first.wall + late]
    second = Run(_app(wall), wall=wall[0], state=_copy(first.app, snapshots[k]))
    for i in range(k, len(log)):
        step = second.app.apply(
            "replay", second.state, second.app.decode(b"replay", log[i]), second.ctx()
        )
        second.state = step.state
        second.emitted[i] = _split(second.app, step.outputs)[1]
        wall[0] += 0.01
        second.wall = wall[0]
        assert second.emitted[i] == first.emitted[i], f"record {i} of {len(log)} decided otherwise"


def test_timeout_is_a_decision_of_the_log_not_of_the_clock(tmp_path: Path) -> None:
    """An outcome read before the tick that would time its attempt out wins, however late."""
    log, first, _ = _simulate(tmp_path, seed=7)
    # Replay everything from the start two hours later: nothing may differ.
    wall = [first.wall + 7200.0]
    second = Run(_app(wall), wall=wall[0])
    for i, rec in enumerate(log):
        step = second.app.apply(
            "replay", second.state, second.app.decode(b"replay", rec), second.ctx()
        )
        second.state = step.state
        assert _split(second.app, step.outputs)[1] == first.emitted[i]
