"""Declarative call flows (YAML): the model the ingress renders NCCOs from.

A flow is a set of named **steps**. A step plays NCCO actions (written exactly as in Vonage's NCCO
reference, ``action: talk`` ...) and then either waits for **input** and branches on the digits or
the speech result, or continues with another step (``goto``), or ends. See ``docs/flows.md``.

The model checks everything that can be checked without a call: names, that every ``goto`` target
exists, that every ``{{variable}}`` is declared, that no chain of ``goto`` loops without waiting for
input, that nothing follows an action after which Vonage never runs anything. Errors name the flow,
the step and the field, because a flow that breaks mid-call only shows up as a caller hearing
silence. (That each step renders to a valid NCCO is checked by ``handlers.flow.check_flow``.)

Webhook URLs are never written in a flow: the renderer fills every ``eventUrl`` so that it carries
the call's ``call_ref`` path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts._base import format_validation_error

__all__ = [
    "BUILTIN_VARIABLES",
    "FLOW_ACTIONS",
    "Branch",
    "Flow",
    "FlowError",
    "FlowSet",
    "InputSpec",
    "Retry",
    "Step",
    "normalise_number",
    "parse_flow",
    "template_names",
]

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_NAME = re.compile(NAME_PATTERN)
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

#: Variables every render knows, taken from the webhook being answered (never declared).
BUILTIN_VARIABLES = frozenset(
    {
        "call_ref",
        "flow",
        "step",
        "attempt",
        "to",
        "from",
        "uuid",
        "conversation_uuid",
        "digits",
        "speech",
    }
)

#: NCCO actions a step may play (``input`` is the step's own ``input:`` block).
FLOW_ACTIONS = frozenset({"talk", "stream", "connect", "conversation", "record", "notify", "wait"})
#: Fields the renderer owns: the webhook URLs must carry the call_ref path.
_RENDERER_FIELDS = frozenset({"eventUrl", "eventMethod", "eventType"})
#: Flow-only fields per action (removed before the action goes to Vonage).
_EXTRA_FIELDS = {
    "connect": frozenset({"on_failure"}),
    "conversation": frozenset({"role"}),
    "notify": frozenset({"goto"}),
}

StepName = Annotated[str, Field(pattern=NAME_PATTERN)]
VarValue = str | int | float | bool | None
InputType = Literal["dtmf", "speech"]


class FlowError(ValueError):
    """A flow file that cannot be used; the message names the flow, step and field."""


def template_names(value: Any) -> Iterator[str]:
    """Every ``{{name}}`` used in a (nested) value's strings."""
    if isinstance(value, str):
        for m in TEMPLATE.finditer(value):
            yield m.group(1)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from template_names(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from template_names(v)


def normalise_number(number: str) -> str:
    """``+44 20-7946 0000`` -> ``442079460000``; non-phone addresses (SIP URIs) are lower-cased."""
    text = str(number).strip()
    digits = re.sub(r"[\s().+-]", "", text)
    return digits if digits.isdigit() else text.lower()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Branch(_Strict):
    """One way out of a menu: the digits and/or the spoken words that choose ``goto``."""

    digits: list[str] = Field(
        default_factory=list, description="Exact digit strings ('1') or a variable ('{{pin}}')."
    )
    speech: list[str] = Field(
        default_factory=list, description="Words or phrases; matched case-insensitively."
    )
    goto: StepName

    @field_validator("digits", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, str | int) and not isinstance(v, bool):
            return [str(v)]
        if isinstance(v, list):
            return [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
        return v

    @field_validator("speech", mode="before")
    @classmethod
    def _speech_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("digits")
    @classmethod
    def _digits(cls, v: list[str]) -> list[str]:
        for d in v:
            if not re.fullmatch(r"[0-9*#]{1,20}", d) and not TEMPLATE.fullmatch(d):
                raise ValueError(
                    f"{d!r} is not a digit string (0-9, * and #) or a {{{{variable}}}}"
                )
        return v

    @model_validator(mode="after")
    def _something(self) -> Branch:
        if not self.digits and not self.speech:
            raise ValueError("a branch needs digits and/or speech to match")
        return self


class Retry(_Strict):
    """What happens when the caller gives nothing (timeout) or something no branch matches."""

    retries: int = Field(2, ge=0, le=10, description="Re-prompts before giving up.")
    say: str | None = Field(None, description="Said before each re-prompt.")
    goto: StepName | None = Field(None, description="Step after the retries are used up.")
    goodbye: str | None = Field(
        "Sorry, we could not understand. Goodbye.",
        description="Said when the retries are used up and there is no goto; the call then ends.",
    )

    @model_validator(mode="after")
    def _ends_somewhere(self) -> Retry:
        if self.goto is None and not self.goodbye:
            raise ValueError("give goto or goodbye (an NCCO cannot be empty)")
        return self


class InputSpec(_Strict):
    """The step's ``input`` action plus how to branch on its result."""

    type: list[InputType] = Field(default_factory=lambda: list[InputType](["dtmf"]))
    dtmf: dict[str, Any] | None = Field(None, description="NCCO dtmf settings (timeOut ...).")
    speech: dict[str, Any] | None = Field(None, description="NCCO speech settings.")
    branches: list[Branch] = Field(default_factory=list)
    default: StepName | None = Field(None, description="Any input that no branch matched.")
    capture: str | None = Field(
        None, description="Store the digits (or the speech text) in this variable."
    )
    on_timeout: Retry = Field(default_factory=Retry)
    on_no_match: Retry = Field(default_factory=Retry)

    @field_validator("type", mode="before")
    @classmethod
    def _type_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("capture")
    @classmethod
    def _capture_name(cls, v: str | None) -> str | None:
        if v is not None and not _VAR_NAME.fullmatch(v):
            raise ValueError(f"{v!r} is not a variable name")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> InputSpec:
        if self.speech is not None and "speech" not in self.type:
            raise ValueError("speech: given but type does not include 'speech'")
        if self.dtmf is not None and "dtmf" not in self.type:
            raise ValueError("dtmf: given but type does not include 'dtmf'")
        for b in self.branches:
            if b.digits and "dtmf" not in self.type:
                raise ValueError(f"branch to {b.goto!r} matches digits but type has no 'dtmf'")
            if b.speech and "speech" not in self.type:
                raise ValueError(f"branch to {b.goto!r} matches speech but type has no 'speech'")
        if not self.branches and self.default is None:
            raise ValueError("needs branches or a default step (otherwise input goes nowhere)")
        seen: dict[str, str] = {}
        for b in self.branches:
            for d in b.digits:
                if d in seen:
                    raise ValueError(f"digits {d!r} lead to both {seen[d]!r} and {b.goto!r}")
                seen[d] = b.goto
        return self

    def targets(self) -> Iterator[str]:
        for b in self.branches:
            yield b.goto
        for t in (self.default, self.on_timeout.goto, self.on_no_match.goto):
            if t is not None:
                yield t


class Step(_Strict):
    """NCCO actions, then ``input`` (branching), or ``goto`` (continue inline), or the end."""

    actions: list[dict[str, Any]] = Field(default_factory=list)
    input: InputSpec | None = None
    goto: StepName | None = None

    @field_validator("actions")
    @classmethod
    def _actions(cls, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, act in enumerate(actions):
            name = act.get("action")
            where = f"actions[{i}]"
            if name == "input":
                raise ValueError(
                    f"{where}: use the step's 'input:' block instead of an input action"
                )
            if name not in FLOW_ACTIONS:
                allowed = ", ".join(sorted(FLOW_ACTIONS))
                raise ValueError(f"{where}.action: {name!r} is not one of {allowed}")
            owned = _RENDERER_FIELDS & act.keys()
            if owned:
                raise ValueError(
                    f"{where} ({name}).{sorted(owned)[0]}: set by the renderer (webhook URLs must "
                    "carry the call_ref path); remove it"
                )
            role = act.get("role")
            if name == "conversation" and role not in (
                None,
                "moderator",
                "attendee",
                "participant",
            ):
                raise ValueError(f"{where} (conversation).role: moderator, attendee or participant")
            for key in ("on_failure", "goto"):
                target = act.get(key)
                if target is not None and (
                    key not in _EXTRA_FIELDS.get(name, ()) or not isinstance(target, str)
                ):
                    raise ValueError(f"{where} ({name}).{key}: not allowed here")
                if isinstance(target, str) and not _NAME.fullmatch(target):
                    raise ValueError(f"{where} ({name}).{key}: {target!r} is not a step name")
        # Actions after which Vonage runs nothing of this NCCO.
        for i, act in enumerate(actions[:-1]):
            if act.get("action") == "conversation":
                raise ValueError(
                    f"actions[{i + 1}]: never runs (a conversation lasts until the call ends)"
                )
            if act.get("action") == "notify" and act.get("goto"):
                raise ValueError(
                    f"actions[{i + 1}]: never runs (notify with goto replaces the rest of the NCCO)"
                )
        return actions

    @model_validator(mode="after")
    def _shape(self) -> Step:
        if self.input is not None and self.goto is not None:
            raise ValueError("give input or goto, not both")
        if not self.actions and self.input is None and self.goto is None:
            raise ValueError("a step needs actions, input or goto")
        if self.actions and self.ends_call_flow and (self.input is not None or self.goto):
            raise ValueError(
                f"{'input' if self.input else 'goto'}: never runs after a "
                f"{self.actions[-1].get('action')} that ends this NCCO"
            )
        return self

    @property
    def ends_call_flow(self) -> bool:
        """Whether the last action ends this NCCO (conversation, or notify that branches)."""
        if not self.actions:
            return False
        last = self.actions[-1]
        return last.get("action") == "conversation" or bool(
            last.get("action") == "notify" and last.get("goto")
        )

    def targets(self) -> Iterator[str]:
        if self.goto is not None:
            yield self.goto
        if self.input is not None:
            yield from self.input.targets()
        for act in self.actions:
            for key in ("on_failure", "goto"):
                if isinstance(act.get(key), str):
                    yield act[key]


class Flow(_Strict):
    """One declarative flow (one YAML file)."""

    name: StepName
    description: str | None = None
    numbers: list[str] = Field(
        default_factory=list, description="Called numbers (to) that select this flow."
    )
    default: bool = Field(False, description="Used when nothing else selects a flow.")
    variables: dict[str, VarValue] = Field(
        default_factory=dict, description="Per-call variables and their defaults."
    )
    start: StepName
    fallback: StepName | None = Field(
        None, description="Step answered on fallback_answer_url (default: start)."
    )
    steps: dict[StepName, Step]

    @field_validator("numbers", mode="before")
    @classmethod
    def _numbers(cls, v: Any) -> Any:
        if isinstance(v, str | int) and not isinstance(v, bool):
            v = [v]
        if isinstance(v, list):
            return [normalise_number(str(x)) for x in v]
        return v

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: dict[str, VarValue]) -> dict[str, VarValue]:
        for name in v:
            if not _VAR_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a variable name (letters, digits, _)")
            if name in BUILTIN_VARIABLES:
                raise ValueError(f"{name!r} is built in (taken from the webhook); rename it")
        return v

    @model_validator(mode="after")
    def _graph(self) -> Flow:
        for ref, what in ((self.start, "start"), (self.fallback, "fallback")):
            if ref is not None and ref not in self.steps:
                raise ValueError(f"{what}: no step named {ref!r}")
        known = BUILTIN_VARIABLES | self.variables.keys() | self.captures()
        for name, step in self.steps.items():
            for target in step.targets():
                if target not in self.steps:
                    raise ValueError(f"steps.{name}: goto target {target!r} is not a step")
            for var in template_names(step.model_dump()):
                if var not in known:
                    raise ValueError(
                        f"steps.{name}: {{{{{var}}}}} is not declared under 'variables'"
                    )
        for name in self.steps:
            self.chain(name)  # raises on a loop
        return self

    def captures(self) -> set[str]:
        return {s.input.capture for s in self.steps.values() if s.input and s.input.capture}

    def chain(self, step: str) -> list[str]:
        """The steps rendered together from ``step``: it and its ``goto`` successors."""
        seen: list[str] = []
        current: str | None = step
        while current is not None:
            if current in seen:
                loop = " -> ".join([*seen, current])
                raise ValueError(f"steps loop without waiting for input: {loop}")
            seen.append(current)
            current = self.steps[current].goto
        return seen

    def carried_variables(self) -> set[str]:
        """Variables whose per-call values travel in webhook URLs (declared and captured)."""
        return set(self.variables) | self.captures()


def _describe(err: ValidationError, flow: str) -> str:
    return f"flow {flow!r}: " + format_validation_error(
        err.errors(include_url=False, include_input=False)
    )


def parse_flow(data: Any, *, source: str = "<flow>") -> Flow:
    """Validate one flow from YAML text or parsed data; :class:`FlowError` names what is wrong."""
    if isinstance(data, bytes | str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as err:
            raise FlowError(f"{source}: not valid YAML ({err})") from None
    if not isinstance(data, Mapping):
        raise FlowError(f"{source}: a flow must be a mapping, not {type(data).__name__}")
    name = str(data.get("name", source))
    try:
        return Flow.model_validate(data)
    except ValidationError as err:
        raise FlowError(f"{source}: {_describe(err, name)}") from None


class FlowSet:
    """All loaded flows, and how a call picks one: explicit name, called number, or default."""

    def __init__(self, flows: Iterable[Flow] = ()) -> None:
        self.by_name: dict[str, Flow] = {}
        self.by_number: dict[str, Flow] = {}
        self.default: Flow | None = None
        for flow in flows:
            if flow.name in self.by_name:
                raise FlowError(f"flow {flow.name!r}: defined twice")
            self.by_name[flow.name] = flow
            for number in flow.numbers:
                other = self.by_number.get(number)
                if other is not None:
                    raise FlowError(
                        f"flow {flow.name!r}: number {number} is also claimed by {other.name!r}"
                    )
                self.by_number[number] = flow
            if flow.default:
                if self.default is not None:
                    raise FlowError(
                        f"flow {flow.name!r}: default: true, but {self.default.name!r} is the "
                        "default already"
                    )
                self.default = flow
        if self.default is None and "default" in self.by_name:
            self.default = self.by_name["default"]

    def __len__(self) -> int:
        return len(self.by_name)

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.by_name.values())

    def get(self, name: str) -> Flow | None:
        return self.by_name.get(name)

    def select(self, *, name: str | None = None, to: Any = None) -> Flow | None:
        """The flow for a call: the named one, else the called number's, else the default."""
        if name:
            flow = self.by_name.get(name)
            if flow is not None:
                return flow
        if isinstance(to, str | int) and not isinstance(to, bool) and str(to):
            flow = self.by_number.get(normalise_number(str(to)))
            if flow is not None:
                return flow
        return self.default
