"""Bad input never crashes the voice machines with anything but ``InvalidEvent``.

The worker dead-letters ``InvalidEvent`` with reason ``invalid_event``; any other exception would be
a bug (it is dead-lettered too, as ``handler_error``, but these tests make sure it does not happen).
"""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import voice
from handlers.voice import InvalidEvent
from orchestrator.sandbox.synthetic import KINDS, make_scenario

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

_TYPES = st.sampled_from(["vonage.webhook", "dispatcher.result", "x"])
_EVENT_TYPES = st.sampled_from(
    [
        "started",
        "ringing",
        "answered",
        "completed",
        "busy",
        "rejected",
        "human",
        "machine",
        "input",
        "record",
        "recording",
        "transcribed",
        "transfer",
        "answer",
        "error",
        "notify",
        "payment",
        "zzz",
    ]
)


def apply(flow: Any, event: Any) -> Any:
    try:
        flow, _ = voice.transition(flow, event)
    except InvalidEvent:
        return flow
    voice.settle(flow, 10**9)  # settling whatever was accepted never crashes either
    return flow


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_any_json_value(value: Any) -> None:
    apply(None, value)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {"type": _TYPES, "flow_key": st.just("k"), "event_type": _EVENT_TYPES},
        optional={
            "payload": st.dictionaries(
                st.sampled_from(
                    [
                        "uuid",
                        "call_uuid",
                        "conversation_uuid",
                        "status",
                        "timestamp",
                        "duration",
                        "price",
                        "rate",
                        "start_time",
                        "end_time",
                        "recording_uuid",
                        "recording_url",
                        "conversation_uuid_from",
                        "conversation_uuid_to",
                        "dtmf",
                        "speech",
                        "size",
                        "detail",
                        "sub_state",
                        "reason",
                        "transcription_url",
                        "sip_code",
                    ]
                ),
                json_values,
            ),
            "id": json_values,
            "call_ref": json_values,
            "command_id": json_values,
            "kind": st.sampled_from(["create_call", "hangup"]) | json_values,
            "status": st.sampled_from(["succeeded", "failed", "unknown"]) | json_values,
            "response": json_values,
            "hints": json_values,
            "error": json_values,
            "call_uuid": json_values,
            "occurred_at": json_values,
        },
    )
)
def test_envelope_shaped_junk(event: dict[str, Any]) -> None:
    apply(None, event)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 1000),
    data=st.data(),
)
def test_mutated_real_envelopes(kind: str, seed: int, data: st.DataObject) -> None:
    """Take a real flow, corrupt one field of one event (or delete it), and replay everything."""
    sc = make_scenario(random.Random(seed), f"call-{seed}", kind)
    envs = copy.deepcopy(sc.envelopes)
    victim = data.draw(st.integers(0, len(envs) - 1))
    path = data.draw(st.sampled_from(_paths(envs[victim])))
    parent = envs[victim]
    for part in path[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    flow = None
    for env in envs:
        flow = apply(flow, env)
