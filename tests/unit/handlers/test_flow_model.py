"""The declarative flow model: what a valid flow is, and that errors say where the problem is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contracts.flow import FlowError, FlowSet, normalise_number, parse_flow
from handlers.flow import check_flow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "flows"


def flow(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "f",
        "start": "a",
        "steps": {"a": {"actions": [{"action": "talk", "text": "hi"}]}},
    }
    base.update(over)
    return base


def error_of(data: Any) -> str:
    with pytest.raises(FlowError) as err:
        f = parse_flow(data, source="test.yaml")
        check_flow(f)
    return str(err.value)


def test_examples_load_and_render() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 3
    flows = []
    for path in files:
        f = parse_flow(path.read_text(), source=str(path))
        check_flow(f)
        flows.append(f)
    fs = FlowSet(flows)
    assert fs.default is not None and fs.default.name == "welcome"
    assert fs.select(to="447700900001").name == "ivr"  # type: ignore[union-attr]
    assert fs.select(to="+44 7700 900001").name == "ivr"  # type: ignore[union-attr]
    assert fs.select(to="1").name == "welcome"  # type: ignore[union-attr]
    assert fs.select(name="conference", to="447700900001").name == "conference"  # type: ignore[union-attr]
    assert fs.select(name="nope", to="447700900001").name == "ivr"  # type: ignore[union-attr]


def test_yaml_syntax_error_names_the_source() -> None:
    assert error_of("name: [unclosed").startswith("test.yaml: not valid YAML")
    assert "must be a mapping" in error_of("- a list")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (flow(start="zz"), "start: no step named 'zz'"),
        (flow(fallback="zz"), "fallback: no step named 'zz'"),
        (flow(steps={"a": {"goto": "b"}}), "goto target 'b' is not a step"),
        (
            flow(steps={"a": {"goto": "b"}, "b": {"goto": "a"}}),
            "steps loop without waiting for input: a -> b -> a",
        ),
        (
            flow(steps={"a": {"actions": [{"action": "talk", "text": "{{who}}"}]}}),
            "steps.a: {{who}} is not declared under 'variables'",
        ),
        (flow(variables={"to": "x"}), "'to' is built in"),
        (flow(steps={"a": {}}), "a step needs actions, input or goto"),
        (
            flow(steps={"a": {"actions": [{"action": "input", "type": ["dtmf"]}]}}),
            "use the step's 'input:' block",
        ),
        (
            flow(steps={"a": {"actions": [{"action": "dance"}]}}),
            "actions[0].action: 'dance' is not one of",
        ),
        (
            flow(
                steps={
                    "a": {
                        "actions": [
                            {"action": "talk", "text": "x", "eventUrl": ["https://evil.example"]}
                        ]
                    }
                }
            ),
            "eventUrl: set by the renderer",
        ),
        (
            flow(
                steps={
                    "a": {
                        "actions": [
                            {"action": "conversation", "name": "room"},
                            {"action": "talk", "text": "never"},
                        ]
                    }
                }
            ),
            "actions[1]: never runs",
        ),
        (
            flow(
                steps={
                    "a": {"actions": [{"action": "conversation", "name": "r"}], "goto": "b"},
                    "b": {"actions": [{"action": "talk", "text": "x"}]},
                }
            ),
            "goto: never runs after a conversation",
        ),
        (
            flow(steps={"a": {"input": {"type": ["dtmf"]}}}),
            "needs branches or a default step",
        ),
        (
            flow(
                steps={
                    "a": {
                        "input": {
                            "branches": [{"digits": "1", "goto": "a"}, {"digits": 1, "goto": "b"}]
                        }
                    },
                    "b": {"actions": [{"action": "talk", "text": "x"}]},
                }
            ),
            "digits '1' lead to both 'a' and 'b'",
        ),
        (
            flow(steps={"a": {"input": {"branches": [{"digits": "x1", "goto": "a"}]}}}),
            "'x1' is not a digit string",
        ),
        (
            flow(steps={"a": {"input": {"branches": [{"speech": ["yes"], "goto": "a"}]}}}),
            "matches speech but type has no 'speech'",
        ),
        (
            flow(steps={"a": {"actions": [{"action": "talk", "text": "x", "loop": -1}]}}),
            "step 'a': action[0] (talk).loop",
        ),
        (
            flow(
                steps={
                    "a": {
                        "input": {
                            "branches": [{"digits": "1", "goto": "a"}],
                            "dtmf": {"maxDigits": 99},
                        }
                    }
                }
            ),
            "maxDigits",
        ),
        (flow(typo=1), "typo: unknown field"),
    ],
)
def test_errors_name_the_problem(data: dict[str, Any], expected: str) -> None:
    message = error_of(data)
    assert expected in message, message
    assert message.startswith("test.yaml") or message.startswith("flow 'f'"), message


def test_flowset_conflicts() -> None:
    a = parse_flow(flow(name="a", numbers=["+1 555 0100"], default=True))
    b = parse_flow(flow(name="b", numbers=["15550100"]))
    with pytest.raises(FlowError, match="also claimed by 'a'"):
        FlowSet([a, b])
    c = parse_flow(flow(name="c", default=True))
    with pytest.raises(FlowError, match="is the default already"):
        FlowSet([a, c])
    with pytest.raises(FlowError, match="defined twice"):
        FlowSet([c, c])


def test_a_flow_named_default_is_the_default() -> None:
    fs = FlowSet([parse_flow(flow(name="default")), parse_flow(flow(name="other"))])
    assert fs.default is not None and fs.default.name == "default"
    assert FlowSet().select(to="1") is None


def test_normalise_number() -> None:
    assert normalise_number("+44 (20) 7946-0000") == "442079460000"
    assert normalise_number("sip:Bob@Example.com") == "sip:bob@example.com"
