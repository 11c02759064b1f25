"""(e) NCCO limits (DIGEST §5): each violation fails at construction, naming index and field."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.ncco import (
    ConnectAction,
    InputAction,
    Ncco,
    NccoError,
    PhoneEndpoint,
    TalkAction,
    parse_ncco,
    talk_length,
)

URL = ["https://example.org/hook"]
PHONE = {"type": "phone", "number": "447700900001"}
TALK = {"action": "talk", "text": "Hello"}


def one(action: dict[str, Any]) -> list[dict[str, Any]]:
    """The action at index 1, after a harmless talk, so the index in messages is checked."""
    return [TALK, action]


CASES: list[tuple[str, list[dict[str, Any]], str]] = [
    (
        "talk text too long",
        one({"action": "talk", "text": "a" * 1501}),
        "action[1] (talk).text: must be at most 1500",
    ),
    ("talk empty text", one({"action": "talk", "text": ""}), "action[1] (talk).text"),
    (
        "ssml not closed",
        one({"action": "talk", "text": "<speak>hi"}),
        "action[1] (talk).text: SSML",
    ),
    (
        "talk level > 1",
        one({"action": "talk", "text": "x", "level": 1.5}),
        "action[1] (talk).level: must be <= 1",
    ),
    (
        "talk level < -1",
        one({"action": "talk", "text": "x", "level": -2}),
        "action[1] (talk).level: must be >= -1",
    ),
    (
        "talk loop negative",
        one({"action": "talk", "text": "x", "loop": -1}),
        "action[1] (talk).loop: must be >= 0",
    ),
    ("talk loop bool", one({"action": "talk", "text": "x", "loop": True}), "action[1] (talk).loop"),
    (
        "talk unknown language",
        one({"action": "talk", "text": "x", "language": "en-XX"}),
        "action[1] (talk).language: unknown TTS language",
    ),
    (
        "talk unknown style",
        one({"action": "talk", "text": "x", "language": "en-GB", "style": 8}),
        "action[1] (talk).style: style 8 does not exist",
    ),
    (
        "talk premium missing",
        one({"action": "talk", "text": "x", "language": "cy-GB", "premium": True}),
        "action[1] (talk).premium",
    ),
    (
        "talk unknown field",
        one({"action": "talk", "text": "x", "voice": "Amy"}),
        "action[1] (talk).voice: unknown field",
    ),
    (
        "bargeIn last",
        [{"action": "talk", "text": "x", "bargeIn": True}],
        "action[0] (talk).bargeIn: true must be followed by an input action, found nothing",
    ),
    (
        "bargeIn then connect",
        [
            TALK,
            {"action": "stream", "streamUrl": URL, "bargeIn": True},
            {"action": "talk", "text": "y"},
            {"action": "connect", "endpoint": [PHONE]},
        ],
        "action[1] (stream).bargeIn: true must be followed by an input action, found action[3] (connect)",
    ),
    (
        "input maxDigits 21",
        one({"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 21}}),
        "action[1] (input).dtmf.maxDigits: must be <= 20",
    ),
    (
        "input maxDigits 0",
        one({"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 0}}),
        "action[1] (input).dtmf.maxDigits: must be >= 1",
    ),
    (
        "input timeOut 11",
        one({"action": "input", "type": ["dtmf"], "dtmf": {"timeOut": 11}}),
        "action[1] (input).dtmf.timeOut: must be <= 10",
    ),
    (
        "input legacy maxDigits",
        one({"action": "input", "maxDigits": 25}),
        "action[1] (input).maxDigits: must be <= 20",
    ),
    ("input bad type", one({"action": "input", "type": ["voice"]}), "action[1] (input).type[0]"),
    ("input empty type", one({"action": "input", "type": []}), "action[1] (input).type"),
    (
        "input duplicate type",
        one({"action": "input", "type": ["dtmf", "dtmf"]}),
        "action[1] (input).type: must not repeat",
    ),
    (
        "speech without type",
        one({"action": "input", "speech": {"language": "en-GB"}}),
        "action[1] (input).type: is required",
    ),
    (
        "speech settings not enabled",
        one({"action": "input", "type": ["dtmf"], "speech": {}}),
        "action[1] (input).speech",
    ),
    (
        "endOnSilence small",
        one({"action": "input", "type": ["speech"], "speech": {"endOnSilence": 0.1}}),
        "action[1] (input).speech.endOnSilence: must be >= 0.4",
    ),
    (
        "startTimeout big",
        one({"action": "input", "type": ["speech"], "speech": {"startTimeout": 61}}),
        "action[1] (input).speech.startTimeout: must be <= 60",
    ),
    (
        "maxDuration big",
        one({"action": "input", "type": ["speech"], "speech": {"maxDuration": 61}}),
        "action[1] (input).speech.maxDuration: must be <= 60",
    ),
    (
        "sensitivity big",
        one({"action": "input", "type": ["speech"], "speech": {"sensitivity": 101}}),
        "action[1] (input).speech.sensitivity: must be <= 100",
    ),
    (
        "input bad url",
        one({"action": "input", "type": ["dtmf"], "eventUrl": ["/relative"]}),
        "action[1] (input).eventUrl[0]",
    ),
    (
        "input bad method",
        one({"action": "input", "type": ["dtmf"], "eventMethod": "PUT"}),
        "action[1] (input).eventMethod",
    ),
    (
        "connect no endpoint",
        one({"action": "connect", "endpoint": []}),
        "action[1] (connect).endpoint: must have at least 1",
    ),
    (
        "connect two endpoints",
        one({"action": "connect", "endpoint": [PHONE, PHONE]}),
        "action[1] (connect).endpoint: must have at most 1",
    ),
    (
        "connect missing endpoint",
        one({"action": "connect"}),
        "action[1] (connect).endpoint: is required",
    ),
    (
        "connect short number",
        one({"action": "connect", "endpoint": [{"type": "phone", "number": "12345"}]}),
        "action[1] (connect).endpoint[0].number",
    ),
    (
        "connect plus in number",
        one({"action": "connect", "endpoint": [{"type": "phone", "number": "+447700900001"}]}),
        "action[1] (connect).endpoint[0].number",
    ),
    (
        "connect bad dtmfAnswer",
        one({"action": "connect", "endpoint": [{**PHONE, "dtmfAnswer": "12x"}]}),
        "action[1] (connect).endpoint[0].dtmfAnswer",
    ),
    (
        "connect unknown endpoint",
        one({"action": "connect", "endpoint": [{"type": "fax", "number": "1"}]}),
        "action[1] (connect).endpoint[0]",
    ),
    (
        "connect limit",
        one({"action": "connect", "endpoint": [PHONE], "limit": 7201}),
        "action[1] (connect).limit: must be <= 7200",
    ),
    (
        "connect from and random",
        one(
            {
                "action": "connect",
                "endpoint": [PHONE],
                "from": "447700900009",
                "randomFromNumber": True,
            }
        ),
        "action[1] (connect).from: not allowed together with randomFromNumber",
    ),
    (
        "connect eventType",
        one({"action": "connect", "endpoint": [PHONE], "eventType": "asynchronous"}),
        "action[1] (connect).eventType",
    ),
    (
        "connect machineDetection",
        one({"action": "connect", "endpoint": [PHONE], "machineDetection": "voicemail"}),
        "action[1] (connect).machineDetection",
    ),
    (
        "amd beep_timeout",
        one(
            {
                "action": "connect",
                "endpoint": [PHONE],
                "advancedMachineDetection": {"beep_timeout": 10},
            }
        ),
        "action[1] (connect).advancedMachineDetection.beep_timeout: must be >= 30",
    ),
    (
        "websocket content-type",
        one(
            {
                "action": "connect",
                "endpoint": [
                    {
                        "type": "websocket",
                        "uri": "wss://x.example/s",
                        "content-type": "audio/l16;rate=44100",
                    }
                ],
            }
        ),
        "action[1] (connect).endpoint[0].content-type",
    ),
    (
        "websocket scheme",
        one(
            {
                "action": "connect",
                "endpoint": [
                    {
                        "type": "websocket",
                        "uri": "https://x.example/s",
                        "content-type": "audio/l16;rate=8000",
                    }
                ],
            }
        ),
        "action[1] (connect).endpoint[0].uri",
    ),
    (
        "websocket headers size",
        one(
            {
                "action": "connect",
                "endpoint": [
                    {
                        "type": "websocket",
                        "uri": "wss://x.example/s",
                        "content-type": "audio/l16;rate=8000",
                        "headers": {"k": "v" * 600},
                    }
                ],
            }
        ),
        "action[1] (connect).endpoint[0].headers: must be at most 512 bytes",
    ),
    (
        "websocket custom auth",
        one(
            {
                "action": "connect",
                "endpoint": [
                    {
                        "type": "websocket",
                        "uri": "wss://x.example/s",
                        "content-type": "audio/l16;rate=8000",
                        "authorization": {"type": "custom"},
                    }
                ],
            }
        ),
        "action[1] (connect).endpoint[0].authorization.value: is required",
    ),
    (
        "sip uri too long",
        one(
            {
                "action": "connect",
                "endpoint": [{"type": "sip", "uri": "sip:" + "a" * 60 + "@x.example"}],
            }
        ),
        "action[1] (connect).endpoint[0].uri",
    ),
    (
        "sip without uri",
        one({"action": "connect", "endpoint": [{"type": "sip"}]}),
        "action[1] (connect).endpoint[0].uri: is required",
    ),
    (
        "app without user",
        one({"action": "connect", "endpoint": [{"type": "app"}]}),
        "action[1] (connect).endpoint[0].user: is required",
    ),
    (
        "record timeOut small",
        one({"action": "record", "timeOut": 2}),
        "action[1] (record).timeOut: must be >= 3",
    ),
    (
        "record timeOut big",
        one({"action": "record", "timeOut": 7201}),
        "action[1] (record).timeOut: must be <= 7200",
    ),
    (
        "record endOnSilence",
        one({"action": "record", "endOnSilence": 11}),
        "action[1] (record).endOnSilence: must be <= 10",
    ),
    ("record endOnKey", one({"action": "record", "endOnKey": "##"}), "action[1] (record).endOnKey"),
    (
        "record channels",
        one({"action": "record", "split": "conversation", "channels": 33}),
        "action[1] (record).channels: must be <= 32",
    ),
    (
        "record channels need split",
        one({"action": "record", "channels": 2}),
        "action[1] (record).channels: more than 1 needs split",
    ),
    ("record format", one({"action": "record", "format": "flac"}), "action[1] (record).format"),
    (
        "conversation no name",
        one({"action": "conversation"}),
        "action[1] (conversation).name: is required",
    ),
    (
        "conversation mute+canSpeak",
        one({"action": "conversation", "name": "c", "mute": True, "canSpeak": []}),
        "action[1] (conversation).mute: cannot be combined with canSpeak",
    ),
    (
        "conversation hold not list",
        one({"action": "conversation", "name": "c", "musicOnHoldUrl": "https://x.example/a.mp3"}),
        "action[1] (conversation).musicOnHoldUrl",
    ),
    (
        "stream two urls",
        one({"action": "stream", "streamUrl": URL + URL}),
        "action[1] (stream).streamUrl: must have at most 1",
    ),
    (
        "stream level",
        one({"action": "stream", "streamUrl": URL, "level": "loud"}),
        "action[1] (stream).level",
    ),
    (
        "notify needs payload",
        one({"action": "notify", "eventUrl": URL}),
        "action[1] (notify).payload: is required",
    ),
    (
        "notify needs url",
        one({"action": "notify", "payload": {}}),
        "action[1] (notify).eventUrl: is required",
    ),
    (
        "wait too long",
        one({"action": "wait", "timeout": 7201}),
        "action[1] (wait).timeout: must be <= 7200",
    ),
    (
        "wait too short",
        one({"action": "wait", "timeout": 0.01}),
        "action[1] (wait).timeout: must be >= 0.1",
    ),
    ("pay zero", one({"action": "pay", "amount": 0}), "action[1] (pay).amount: must be > 0"),
    (
        "pay prompt type",
        one({"action": "pay", "amount": 1, "prompts": [{"type": "Pin", "text": "x"}]}),
        "action[1] (pay).prompts[0].type",
    ),
    (
        "transfer no target",
        one({"action": "transfer"}),
        "action[1] (transfer).conversationId: is required",
    ),
    (
        "unknown action",
        one({"action": "dance"}),
        "action[1] (dance).action: unknown action 'dance'",
    ),
    ("missing action", one({"text": "hi"}), "action[1].action: is required"),
    ("action not an object", one("talk"), "action[1]"),  # type: ignore[arg-type]
    ("empty ncco", [], "ncco: must have at least 1"),
]


@pytest.mark.parametrize(("ncco", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_limit_violation_is_named(ncco: list[dict[str, Any]], needle: str) -> None:
    with pytest.raises(NccoError) as err:
        parse_ncco(ncco)
    assert needle in str(err.value), str(err.value)


@pytest.mark.parametrize("data", [{"action": "talk"}, "nope", b"{", 3, None])
def test_not_a_list(data: Any) -> None:
    with pytest.raises(NccoError, match="ncco"):
        parse_ncco(data)


def test_accepts_json_text_and_ncco() -> None:
    n = parse_ncco(b'[{"action":"talk","text":"hi"}]')
    assert parse_ncco(n) is n
    assert parse_ncco('[{"action":"talk","text":"hi"}]').to_list() == [
        {"action": "talk", "text": "hi"}
    ]


def test_ssml_tags_do_not_count() -> None:
    text = "<speak>" + "<break time='1s'/>" * 100 + "a" * 1400 + "</speak>"
    assert talk_length(text) == 1400
    assert parse_ncco([{"action": "talk", "text": text}])


def test_barge_in_chain_reaches_input() -> None:
    ncco = [
        {"action": "talk", "text": "a", "bargeIn": True},
        {"action": "stream", "streamUrl": URL},
        {"action": "talk", "text": "b", "bargeIn": False},
        {"action": "input", "type": ["dtmf"]},
    ]
    assert len(parse_ncco(ncco)) == 4


def test_to_list_does_not_add_defaults_and_keeps_wire_names() -> None:
    raw = [
        {
            "action": "connect",
            "from": "447700900000",
            "endpoint": [
                {
                    "type": "websocket",
                    "uri": "wss://a.example/s",
                    "content-type": "audio/l16;rate=8000",
                }
            ],
        }
    ]
    assert parse_ncco(raw).to_list() == raw


def test_built_in_python_dumps_action_and_type() -> None:
    ncco = Ncco.of(
        [
            TalkAction(text="Press 1", bargeIn=True),
            InputAction(type=["dtmf"]),
            ConnectAction(endpoint=[PhoneEndpoint(number="447700900001")]),
        ]
    )
    assert ncco.to_list() == [
        {"action": "talk", "text": "Press 1", "bargeIn": True},
        {"action": "input", "type": ["dtmf"]},
        {"action": "connect", "endpoint": [{"number": "447700900001", "type": "phone"}]},
    ]
    with pytest.raises(NccoError, match=r"action\[0\] \(talk\).bargeIn"):
        Ncco.of([TalkAction(text="x", bargeIn=True)])


def test_stringly_values_from_vonage_docs_are_normalised() -> None:
    n = parse_ncco(
        [
            {"action": "stream", "streamUrl": URL, "bargeIn": "true"},
            {"action": "input", "submitOnHash": "true", "eventUrl": URL},
            {"action": "connect", "timeout": "45", "endpoint": [PHONE]},
        ]
    )
    out = n.to_list()
    assert out[0]["bargeIn"] is True and out[1]["submitOnHash"] is True and out[2]["timeout"] == 45
