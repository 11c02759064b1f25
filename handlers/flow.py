"""Rendering declarative flows (``contracts.flow``) into NCCOs: pure functions, no I/O, no clock.

The ingress must answer an NCCO request within Vonage's 5 s (we aim for milliseconds) without a
Kafka round trip, and it is stateless. So everything a later callback needs travels in the webhook
URLs the rendered NCCO hands to Vonage, in the path (query strings may be dropped)::

    {base}/webhooks/{kind}/{call_ref}[/{flow}/{step}[/{ctx}]]

``ctx`` is a compact base64url JSON ``{"a": attempt, "v": {variable: value}}`` holding the retry
counter and the per-call variables that differ from the flow's defaults, signed with ``ctx_key``
(``handlers.flow_ctx`` says why a URL is not trusted on its own).

Entry points, one per callback that expects an NCCO: :func:`render_answer`, :func:`render_input`,
:func:`render_notify`, :func:`render_event` (synchronous ``connect`` failover) and
:func:`render_fallback`. Each returns a :class:`Rendered` whose ``ncco`` is ``None`` when Vonage
should simply continue with the current NCCO.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.call_refs import is_call_ref
from contracts.flow import (
    BUILTIN_VARIABLES,
    TEMPLATE,
    Flow,
    FlowError,
    InputSpec,
    Retry,
    VarValue,
    normalise_number,
)
from contracts.ncco import NccoError, parse_ncco
from handlers.flow_ctx import (
    MAX_CTX_CHARS,
    START_STEP,
    FlowRenderError,
    ctx_keys,
    decode_ctx,
    encode_ctx,
)

__all__ = [
    "CONNECT_FAILURES",
    "MAX_CTX_CHARS",
    "START_STEP",
    "FlowRenderError",
    "Rendered",
    "check_flow",
    "ctx_keys",
    "decode_ctx",
    "encode_ctx",
    "initial_variables",
    "render_answer",
    "render_event",
    "render_fallback",
    "render_input",
    "render_notify",
    "render_step",
    "webhook_url",
]

#: Statuses of a synchronous ``connect`` leg for which Vonage runs an NCCO we return (DIGEST §4.3).
CONNECT_FAILURES = frozenset({"timeout", "failed", "rejected", "unanswered", "busy"})


@dataclass(frozen=True, slots=True)
class Rendered:
    """The answer to one NCCO request: ``ncco`` None means "no NCCO, carry on"."""

    ncco: list[dict[str, Any]] | None
    flow: str
    step: str | None
    reason: str
    variables: dict[str, VarValue] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# URLs and the ctx segment


def webhook_url(
    base_url: str,
    kind: str,
    call_ref: str,
    flow: str | None = None,
    step: str | None = None,
    ctx: str | None = None,
) -> str:
    """A webhook URL of this system; ``call_ref`` always in the path (design item 1)."""
    if not is_call_ref(call_ref):
        raise FlowRenderError(f"call_ref {call_ref[:40]!r} is not URL-path-safe")
    url = f"{base_url.rstrip('/')}/webhooks/{kind}/{call_ref}"
    if flow is not None:
        url += f"/{flow}"
        if step is not None:
            url += f"/{step}"
            if ctx:
                url += f"/{ctx}"
    return url


# --------------------------------------------------------------------------------------------
# variables


def initial_variables(
    flow: Flow,
    payload: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, VarValue]:
    """A call's variables at answer time: the flow's defaults, then ``custom_data`` from the
    answer webhook, then ``overrides`` (a campaign's per-contact values). Only declared names are
    taken; only scalar values."""
    values: dict[str, VarValue] = dict(flow.variables)
    carried = flow.carried_variables()
    sources: list[Mapping[str, Any]] = []
    custom = payload.get("custom_data") if payload else None
    if isinstance(custom, Mapping):
        sources.append(custom)
    if overrides:
        sources.append(overrides)
    for source in sources:
        for k, v in source.items():
            if k in carried and (isinstance(v, str | int | float | bool) or v is None):
                values[k] = v
    return values


def _speech_texts(payload: Mapping[str, Any]) -> list[str]:
    speech = payload.get("speech")
    if not isinstance(speech, Mapping):
        return []
    results = speech.get("results")
    if not isinstance(results, list):
        return []
    texts = [r.get("text") for r in results if isinstance(r, Mapping)]
    return [t for t in texts if isinstance(t, str) and t.strip()]


def _digits(payload: Mapping[str, Any]) -> str:
    dtmf = payload.get("dtmf")
    if isinstance(dtmf, Mapping):
        digits = dtmf.get("digits")
        if isinstance(digits, str | int) and not isinstance(digits, bool):
            return str(digits)
    return ""


def _builtins(
    payload: Mapping[str, Any], call_ref: str, flow: str, step: str, attempt: int
) -> dict[str, str]:
    texts = _speech_texts(payload)
    values = {
        "call_ref": call_ref,
        "flow": flow,
        "step": step,
        "attempt": str(attempt),
        "digits": _digits(payload),
        "speech": texts[0] if texts else "",
    }
    for name in ("to", "from", "uuid", "conversation_uuid"):
        v = payload.get(name)
        values[name] = str(v) if isinstance(v, str | int) and not isinstance(v, bool) else ""
    return values


def _text(value: VarValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _substitute(value: Any, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        if "{{" not in value:
            return value
        return TEMPLATE.sub(lambda m: names.get(m.group(1), ""), value)
    if isinstance(value, Mapping):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# rendering


@dataclass(frozen=True, slots=True)
class _Call:
    flow: Flow
    base_url: str
    call_ref: str
    payload: Mapping[str, Any]
    variables: Mapping[str, VarValue]
    key: bytes | None = None

    def names(self, step: str, attempt: int) -> dict[str, str]:
        names = {k: _text(v) for k, v in self.variables.items()}
        names.update(_builtins(self.payload, self.call_ref, self.flow.name, step, attempt))
        return names

    def url(self, kind: str, step: str | None = None, attempt: int = 0) -> str:
        if step is None:
            return webhook_url(self.base_url, kind, self.call_ref)
        ctx = encode_ctx(attempt, self.variables, self.flow, self.key)
        return webhook_url(self.base_url, kind, self.call_ref, self.flow.name, step, ctx)


def _action(call: _Call, raw: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    act: dict[str, Any] = _substitute(dict(raw), names)
    name = act["action"]
    if name == "connect":
        target = act.pop("on_failure", None)
        for ep in act.get("endpoint") or []:
            if isinstance(ep, dict) and ep.get("type", "phone") == "phone" and "number" in ep:
                ep["number"] = normalise_number(str(ep["number"]))
        if isinstance(act.get("from"), str | int):
            act["from"] = normalise_number(str(act["from"]))
        if target is not None:
            act["eventType"] = "synchronous"
            act["eventUrl"] = [call.url("event", target)]
        else:
            act["eventUrl"] = [call.url("event")]
        act["eventMethod"] = "POST"
    elif name == "conversation":
        role = act.pop("role", None)
        if role == "moderator":
            act.setdefault("startOnEnter", True)
            act.setdefault("endOnExit", True)
        elif role == "attendee":
            act.setdefault("startOnEnter", False)
        act["eventUrl"] = [call.url("event")]
        act["eventMethod"] = "POST"
    elif name == "record":
        act["eventUrl"] = [call.url("recording")]
        act["eventMethod"] = "POST"
        if isinstance(act.get("transcription"), dict):
            act["transcription"] = {
                **act["transcription"],
                "eventUrl": [call.url("recording")],
                "eventMethod": "POST",
            }
    elif name == "notify":
        target = act.pop("goto", None)
        act["eventUrl"] = [call.url("notify", target) if target else call.url("notify")]
        act["eventMethod"] = "POST"
    return act


def _input_action(call: _Call, step: str, spec: InputSpec, attempt: int) -> dict[str, Any]:
    act: dict[str, Any] = {"action": "input", "type": list(spec.type)}
    names = call.names(step, attempt)
    if spec.dtmf is not None:
        act["dtmf"] = _substitute(dict(spec.dtmf), names)
    if spec.speech is not None:
        act["speech"] = _substitute(dict(spec.speech), names)
    act["eventUrl"] = [call.url("input", step, attempt)]
    act["eventMethod"] = "POST"
    return act


def _render(
    call: _Call, step: str, attempt: int = 0, prefix: Sequence[str] = ()
) -> list[dict[str, Any]]:
    flow = call.flow
    if step not in flow.steps:
        raise FlowRenderError(f"flow {flow.name!r} has no step {step!r}")
    actions: list[dict[str, Any]] = []
    names = call.names(step, attempt)
    for text in prefix:
        actions.append({"action": "talk", "text": _substitute(text, names)})
    chain = flow.chain(step)
    for i, name in enumerate(chain):
        # Only the first step of a chain is a re-prompt; the steps it continues into start fresh.
        step_attempt = attempt if i == 0 else 0
        names = call.names(name, step_attempt)
        spec = flow.steps[name]
        actions.extend(_action(call, raw, names) for raw in spec.actions)
        if spec.input is not None:
            actions.append(_input_action(call, name, spec.input, step_attempt))
    if not actions:
        raise FlowRenderError(f"flow {flow.name!r} step {step!r} renders no action")
    try:
        return parse_ncco(actions).to_list()
    except NccoError as err:
        raise FlowRenderError(f"flow {flow.name!r} step {step!r}: {err}") from None


def render_step(
    flow: Flow,
    step: str,
    *,
    base_url: str,
    call_ref: str,
    variables: Mapping[str, VarValue] | None = None,
    payload: Mapping[str, Any] | None = None,
    attempt: int = 0,
    ctx_key: bytes | None = None,
) -> list[dict[str, Any]]:
    """The NCCO of ``step`` (and the steps it continues into). Campaigns use this to build an
    inline create-call NCCO with a contact's variables."""
    values = dict(variables) if variables is not None else dict(flow.variables)
    call = _Call(flow, base_url, call_ref, payload or {}, values, ctx_key)
    return _render(call, step, attempt)


def render_answer(
    flow: Flow,
    *,
    base_url: str,
    call_ref: str,
    payload: Mapping[str, Any],
    step: str | None = None,
    variables: Mapping[str, Any] | None = None,
    ctx_key: bytes | None = None,
) -> Rendered:
    """answer_url: the flow's start (or ``step``) with the call's initial variables.

    ``variables`` are values already known for the call (from the answer URL's ctx); custom_data
    from the payload fills what they do not give.
    """
    values = initial_variables(flow, payload, variables)
    target = step or flow.start
    call = _Call(flow, base_url, call_ref, payload, values, ctx_key)
    return Rendered(_render(call, target), flow.name, target, "start", values)


def _retry(call: _Call, step: str, rule: Retry, attempt: int, why: str) -> Rendered:
    flow = call.flow
    if attempt < rule.retries:
        prefix = [rule.say] if rule.say else []
        ncco = _render(call, step, attempt + 1, prefix)
        return Rendered(ncco, flow.name, step, f"{why}-retry", dict(call.variables))
    if rule.goto is not None:
        return Rendered(
            _render(call, rule.goto), flow.name, rule.goto, f"{why}-exhausted", dict(call.variables)
        )
    ncco = parse_ncco([{"action": "talk", "text": rule.goodbye}]).to_list()
    return Rendered(ncco, flow.name, None, f"{why}-goodbye", dict(call.variables))


def _matches(phrase: str, texts: Sequence[str]) -> bool:
    pattern = re.compile(r"\b" + re.escape(phrase.strip().lower()) + r"\b")
    return any(pattern.search(t.lower()) for t in texts)


def render_input(
    flow: Flow,
    step: str,
    *,
    base_url: str,
    call_ref: str,
    payload: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    attempt: int = 0,
    ctx_key: bytes | None = None,
) -> Rendered:
    """An input result for ``step``: branch by digits or speech, else retry or give up."""
    spec = flow.steps[step].input if step in flow.steps else None
    if spec is None:
        raise FlowRenderError(f"flow {flow.name!r} step {step!r} has no input")
    values: dict[str, VarValue] = dict(flow.variables)
    values.update({k: v for k, v in (variables or {}).items() if k in flow.carried_variables()})
    digits = _digits(payload)
    texts = _speech_texts(payload)
    call = _Call(flow, base_url, call_ref, payload, values, ctx_key)
    if not digits and not texts:
        return _retry(call, step, spec.on_timeout, attempt, "timeout")
    if spec.capture:
        values[spec.capture] = digits or texts[0]
    names = call.names(step, attempt)
    for branch in spec.branches:
        wanted = [_substitute(d, names) for d in branch.digits]
        if (digits and digits in wanted) or (
            texts and any(_matches(p, texts) for p in branch.speech)
        ):
            return Rendered(_render(call, branch.goto), flow.name, branch.goto, "branch", values)
    if spec.default is not None:
        return Rendered(_render(call, spec.default), flow.name, spec.default, "default", values)
    return _retry(call, step, spec.on_no_match, attempt, "no-match")


def render_notify(
    flow: Flow,
    step: str | None,
    *,
    base_url: str,
    call_ref: str,
    payload: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    ctx_key: bytes | None = None,
) -> Rendered:
    """A notify callback: the ``goto`` step it names, or carry on when it names none."""
    if step is None:
        return Rendered(None, flow.name, None, "continue")
    values: dict[str, VarValue] = dict(flow.variables)
    values.update({k: v for k, v in (variables or {}).items() if k in flow.carried_variables()})
    call = _Call(flow, base_url, call_ref, payload, values, ctx_key)
    return Rendered(_render(call, step), flow.name, step, "notify", values)


def render_event(
    flow: Flow,
    step: str | None,
    *,
    base_url: str,
    call_ref: str,
    payload: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    ctx_key: bytes | None = None,
) -> Rendered:
    """An event of a synchronous ``connect``: its ``on_failure`` step when the leg failed."""
    status = payload.get("status")
    if step is None or status not in CONNECT_FAILURES:
        return Rendered(None, flow.name, None, "continue")
    values: dict[str, VarValue] = dict(flow.variables)
    values.update({k: v for k, v in (variables or {}).items() if k in flow.carried_variables()})
    call = _Call(flow, base_url, call_ref, payload, values, ctx_key)
    return Rendered(_render(call, step), flow.name, step, f"connect-{status}", values)


def render_fallback(
    flow: Flow,
    *,
    base_url: str,
    call_ref: str,
    payload: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    ctx_key: bytes | None = None,
) -> Rendered:
    """fallback_answer_url: the flow's ``fallback`` step; else, when the answer URL failed, the
    start; for a failed in-call request without a fallback step, carry on."""
    original = payload.get("original_request")
    kind = original.get("type") if isinstance(original, Mapping) else None
    if flow.fallback is None and kind not in (None, "answer"):
        return Rendered(None, flow.name, None, "continue")
    values = initial_variables(flow, payload, variables)
    target = flow.fallback or flow.start
    call = _Call(flow, base_url, call_ref, payload, values, ctx_key)
    return Rendered(_render(call, target), flow.name, target, "fallback", values)


# --------------------------------------------------------------------------------------------
# load-time check


_SAMPLE_PAYLOAD = {
    "to": "447700900000",
    "from": "447700900001",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "conversation_uuid": "CON-00000000-0000-0000-0000-000000000000",
}


def check_flow(flow: Flow, base_url: str = "https://example.invalid") -> None:
    """Render every step (and every retry path) with sample values: a flow whose NCCO Vonage
    would reject fails at load time, with the step named, not mid-call."""
    values: dict[str, VarValue] = {
        k: (v if v is not None else "1234567") for k, v in flow.variables.items()
    }
    for name in flow.captures():
        values.setdefault(name, "1234567")
    for var in BUILTIN_VARIABLES:
        values.pop(var, None)
    call = _Call(flow, base_url, "check-ref", _SAMPLE_PAYLOAD, values)
    for name, step in flow.steps.items():
        try:
            _render(call, name)
            if step.input is not None:
                for rule, why in (
                    (step.input.on_timeout, "timeout"),
                    (step.input.on_no_match, "nm"),
                ):
                    _retry(call, name, rule, 0, why)
                    _retry(call, name, rule, rule.retries, why)
        except FlowRenderError as err:
            raise FlowError(str(err)) from None
