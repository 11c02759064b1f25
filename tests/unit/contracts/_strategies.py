"""Hypothesis strategies for Vonage-shaped JSON: arbitrary values and near-valid NCCO actions.

The NCCO strategies draw canonical JSON types (ints for integers, booleans for flags) and values
on both sides of every documented limit, so a property sees accepted and rejected actions alike.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)

STATUSES = [
    "started",
    "ringing",
    "answered",
    "busy",
    "cancelled",
    "unanswered",
    "rejected",
    "failed",
    "timeout",
    "disconnected",
    "completed",
    "human",
    "machine",
    "input",
    "record",
    "recording",
    "transcribed",
    "transfer",
    "error",
    "success",
    "failure",
    "bogus",
]
uuids = (
    st.sampled_from(["", "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "CON-x", "leg-1"]) | json_scalars
)
times = (
    st.sampled_from(
        [
            "2020-01-01T12:00:00.000Z",
            "2020-01-01 12:00:00",
            "",
            "not a time",
            "2020-13-45T99:00:00Z",
        ]
    )
    | json_scalars
)
numbers_as_anything = st.sampled_from(["2", "0.0045", "", "x", "1e3", "-1"]) | json_scalars

webhook_like = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(STATUSES) | json_values,
        "type": st.sampled_from(["transfer", "record", "error", "input", "other"]) | json_scalars,
        "uuid": uuids,
        "call_uuid": uuids,
        "conversation_uuid": uuids,
        "conversation_uuid_from": uuids,
        "conversation_uuid_to": uuids,
        "timestamp": times,
        "start_time": times,
        "end_time": times,
        "duration": numbers_as_anything,
        "rate": numbers_as_anything,
        "price": numbers_as_anything,
        "size": numbers_as_anything,
        "direction": st.sampled_from(["inbound", "outbound", "sideways"]) | json_scalars,
        "dtmf": json_values,
        "speech": json_values,
        "recording_url": st.sampled_from(["https://api.nexmo.com/v1/files/x", ""]) | json_scalars,
        "recording_uuid": uuids,
        "transcription_url": st.sampled_from(["https://api.nexmo.com/v1/files/t"]) | json_scalars,
        "reason": json_scalars,
        "original_request": json_values,
        "custom_data": json_values,
        "headers": json_values,
        "from": json_scalars,
        "to": json_scalars,
    },
)

# ---------------------------------------------------------------- NCCO actions

URLS = ["https://example.org/a", "http://example.org/b.mp3", "/relative", "wss://example.org/ws"]
url_lists = st.lists(st.sampled_from(URLS), min_size=0, max_size=2)
methods = st.sampled_from(["GET", "POST", "PUT"])
texts = st.text(max_size=30) | st.sampled_from(["<speak>Hi <break time='1s'/></speak>", "<speak>x"])
levels = st.integers(-2, 2) | st.floats(-1.5, 1.5, allow_nan=False)
languages = st.sampled_from(["en-US", "en-GB", "cy-GB", "de-DE", "gu-IN", "no-NO", "xx-YY"])


def action(
    name: str, required: dict[str, Any], optional: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"action": st.just(name), **required}, optional=optional)


phone = st.fixed_dictionaries(
    {
        "type": st.just("phone"),
        "number": st.sampled_from(["447700900001", "14155550100", "123", "+4477009"]),
    },
    optional={"dtmfAnswer": st.sampled_from(["p*123#", "12x"])},
)
app = st.fixed_dictionaries({"type": st.just("app"), "user": st.sampled_from(["alice", ""])})
websocket = st.fixed_dictionaries(
    {
        "type": st.just("websocket"),
        "uri": st.sampled_from(["wss://example.org/s", "ws://example.org/s", "https://x"]),
        "content-type": st.sampled_from(
            ["audio/l16;rate=8000", "audio/l16;rate=16000", "audio/l16;rate=24000", "audio/x"]
        ),
    },
    optional={"headers": st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3)},
)
sip = st.fixed_dictionaries(
    {
        "type": st.just("sip"),
        "uri": st.sampled_from(["sip:bob@example.org", "sips:a@b.example", "tel:123"]),
    },
    optional={"headers": st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=2)},
)
vbc = st.fixed_dictionaries({"type": st.just("vbc"), "extension": st.sampled_from(["111", ""])})
endpoint = phone | app | websocket | sip | vbc

talk = action(
    "talk",
    {"text": texts},
    {
        "bargeIn": st.booleans(),
        "loop": st.integers(-1, 3),
        "level": levels,
        "language": languages,
        "style": st.integers(-1, 30),
        "premium": st.booleans(),
    },
)
stream = action(
    "stream",
    {"streamUrl": url_lists},
    {"bargeIn": st.booleans(), "loop": st.integers(-1, 3), "level": levels},
)
inp = action(
    "input",
    {},
    {
        "type": st.lists(st.sampled_from(["dtmf", "speech", "voice"]), max_size=3),
        "dtmf": st.fixed_dictionaries(
            {},
            optional={
                "timeOut": st.integers(-1, 12),
                "maxDigits": st.integers(-1, 22),
                "submitOnHash": st.booleans(),
            },
        ),
        "speech": st.fixed_dictionaries(
            {},
            optional={
                "endOnSilence": st.floats(0, 11, allow_nan=False),
                "language": languages,
                "context": st.lists(st.text(max_size=8), max_size=3),
                "startTimeout": st.integers(0, 61),
                "maxDuration": st.integers(0, 61),
                "saveAudio": st.booleans(),
                "sensitivity": st.integers(-1, 101),
            },
        ),
        "eventUrl": url_lists,
        "eventMethod": methods,
        "mode": st.sampled_from(["synchronous", "asynchronous", "sometimes"]),
    },
)
record = action(
    "record",
    {},
    {
        "format": st.sampled_from(["mp3", "wav", "ogg", "flac"]),
        "split": st.just("conversation"),
        "channels": st.integers(0, 33),
        "endOnSilence": st.integers(2, 11),
        "endOnKey": st.sampled_from(["#", "1", "*", "##"]),
        "timeOut": st.integers(2, 7201),
        "beepStart": st.booleans(),
        "eventUrl": url_lists,
        "eventMethod": methods,
    },
)
conversation = action(
    "conversation",
    {"name": st.sampled_from(["room-1", ""])},
    {
        "musicOnHoldUrl": url_lists,
        "startOnEnter": st.booleans(),
        "endOnExit": st.booleans(),
        "record": st.booleans(),
        "canSpeak": st.lists(st.sampled_from(["leg-a", "leg-b"]), max_size=2),
        "canHear": st.lists(st.sampled_from(["leg-a", "leg-b"]), max_size=2),
        "mute": st.booleans(),
        "eventUrl": url_lists,
    },
)
connect = action(
    "connect",
    {"endpoint": st.lists(endpoint, max_size=2)},
    {
        "from": st.sampled_from(["447700900000", ""]),
        "randomFromNumber": st.booleans(),
        "eventType": st.sampled_from(["synchronous", "async"]),
        "timeout": st.integers(0, 120),
        "limit": st.integers(0, 7201),
        "machineDetection": st.sampled_from(["continue", "hangup", "beep"]),
        "eventUrl": url_lists,
        "eventMethod": methods,
    },
)
notify = action(
    "notify",
    {
        "payload": st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
        "eventUrl": url_lists,
    },
    {"eventMethod": methods},
)
wait = action("wait", {}, {"timeout": st.floats(0, 7300, allow_nan=False) | st.integers(0, 7300)})
pay = action(
    "pay",
    {"amount": st.floats(-1, 100, allow_nan=False) | st.integers(-1, 100)},
    {"currency": st.sampled_from(["usd", "eur", "dollars"]), "eventUrl": url_lists},
)
transfer = action(
    "transfer",
    {"conversationId": st.sampled_from(["CON-1", ""])},
    {"mute": st.booleans(), "canHear": st.lists(st.just("leg-a"), max_size=1)},
)

any_action = talk | stream | inp | record | conversation | connect | notify | wait | pay | transfer
ncco_like = st.lists(any_action, min_size=0, max_size=5)

# ---------------------------------------------------------------- valid webhooks, then mutated

_LEG = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
_CONV = "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
_BASES: list[dict[str, Any]] = [
    {"uuid": _LEG, "conversation_uuid": _CONV, "status": s, "timestamp": "2020-01-01T12:00:00.000Z"}
    for s in [
        "started",
        "ringing",
        "answered",
        "busy",
        "cancelled",
        "unanswered",
        "rejected",
        "failed",
        "timeout",
        "disconnected",
        "completed",
        "success",
        "failure",
    ]
] + [
    {"call_uuid": _LEG, "conversation_uuid": _CONV, "status": "machine", "sub_state": "beep_start"},
    {"uuid": _LEG, "conversation_uuid": _CONV, "dtmf": {"digits": "1", "timed_out": False}},
    {
        "recording_url": "https://api.nexmo.com/v1/files/x",
        "recording_uuid": "r",
        "conversation_uuid": _CONV,
    },
    {
        "uuid": _LEG,
        "conversation_uuid_from": _CONV,
        "conversation_uuid_to": "CON-b",
        "type": "transfer",
    },
    {"reason": "boom", "conversation_uuid": _CONV},
    {
        "conversation_uuid": _CONV,
        "recording_uuid": "r",
        "status": "transcribed",
        "transcription_url": "https://x/t",
    },
]
_FIELDS = st.sampled_from(
    [
        "status",
        "uuid",
        "call_uuid",
        "conversation_uuid",
        "timestamp",
        "start_time",
        "end_time",
        "duration",
        "rate",
        "price",
        "size",
        "direction",
        "dtmf",
        "speech",
        "reason",
        "headers",
    ]
)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from(STATUSES) | json_scalars,
    "uuid": uuids,
    "call_uuid": uuids,
    "conversation_uuid": uuids,
    "timestamp": times,
    "start_time": times,
    "end_time": times,
    "duration": numbers_as_anything,
    "rate": numbers_as_anything,
    "price": numbers_as_anything,
    "size": numbers_as_anything,
    "direction": st.sampled_from(["inbound", "outbound", "sideways"]),
    "dtmf": json_values,
    "speech": json_values,
    "reason": json_scalars,
    "headers": json_values,
}


@st.composite
def webhook_mutants(draw: st.DrawFn) -> dict[str, Any]:
    body = dict(draw(st.sampled_from(_BASES)))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(_FIELDS)
        if draw(st.booleans()) and key in body:
            del body[key]
        else:
            body[key] = draw(_VALUES[key])
    return body
