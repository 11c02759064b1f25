"""The simulation profile: how the simulated callees and the simulated Vonage platform behave.

One YAML (or JSON) file, every key optional. It is seeded: with the same seed, the same contact
(destination number) gets the same outcome and timings on every run, whatever the interleaving of
concurrent requests, so a failing campaign test can be replayed. ``orchestrator simulate --help``
prints every key with its default (generated from this model by :func:`describe_profile`).

Times are in *simulated* seconds (divided by ``--time-scale`` in real time); HTTP timeouts and
latencies are in real time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "OPERATIONS",
    "OUTCOMES",
    "Agent",
    "DtmfScript",
    "EndpointFault",
    "Profile",
    "ProfileError",
    "describe_profile",
    "load_profile",
]

OUTCOMES = ("human", "machine", "busy", "unanswered", "rejected", "failed", "timeout", "cancelled")
Outcome = Literal[
    "human", "machine", "busy", "unanswered", "rejected", "failed", "timeout", "cancelled"
]

# Operation names used by fault injection and in the ledger (``op`` of each request).
OPERATIONS = (
    "create_call",
    "list_calls",
    "get_call",
    "update_call",
    "start_talk",
    "stop_talk",
    "start_stream",
    "stop_stream",
    "start_dtmf",
    "subscribe_dtmf",
    "unsubscribe_dtmf",
    "get_file",
    "list_applications",
    "create_application",
    "get_application",
    "update_application",
    "delete_application",
)


class ProfileError(ValueError):
    """The profile file is unreadable or invalid; the message names the key."""


def _span(value: Any) -> Any:
    # A single number means a fixed duration; [a, b] a uniform draw between them.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value), float(value))
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = (float(v) for v in value)
        if lo < 0 or hi < lo:
            raise ValueError("must be [min, max] with 0 <= min <= max")
        return (lo, hi)
    raise ValueError("must be a number or a [min, max] pair")


Span = Annotated[tuple[float, float], BeforeValidator(_span)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outcomes(_Model):
    """Relative weights of the outcome of each new call (normalised; need not sum to 100)."""

    human: float = Field(70.0, ge=0, description="Answered by a person.")
    machine: float = Field(10.0, ge=0, description="Answered by voicemail/answering machine.")
    busy: float = Field(5.0, ge=0, description="Busy, then completed.")
    unanswered: float = Field(
        5.0, ge=0, description="Rings out (detail: unavailable), then completed."
    )
    rejected: float = Field(2.0, ge=0, description="Rejected before ringing; final, no completed.")
    failed: float = Field(3.0, ge=0, description="Cannot route, then completed.")
    timeout: float = Field(3.0, ge=0, description="Rings until ringing_timer, then completed.")
    cancelled: float = Field(2.0, ge=0, description="Cancelled before answer, then completed.")

    @model_validator(mode="after")
    def _some_weight(self) -> Outcomes:
        if sum(getattr(self, k) for k in OUTCOMES) <= 0:
            raise ValueError("at least one outcome weight must be > 0")
        return self

    def weights(self) -> list[float]:
        return [float(getattr(self, k)) for k in OUTCOMES]


class Timing(_Model):
    """Durations in simulated seconds; a number or a [min, max] uniform range."""

    setup: Span = Field((0.1, 0.6), description="started -> ringing.")
    ring: Span = Field((2.0, 10.0), description="ringing -> answered (human/machine).")
    ring_fail: Span = Field((1.0, 6.0), description="ringing -> busy/unanswered/cancelled/failed.")
    talk: Span = Field((20.0, 90.0), description="How long a person stays on after answering.")
    machine_talk: Span = Field((15.0, 40.0), description="How long a voicemail stays on the line.")
    amd: Span = Field((1.5, 4.0), description="answered -> human/machine event (AMD requested).")
    tts_chars_per_second: float = Field(
        15.0, gt=0, description="Speed of talk actions (text length)."
    )
    stream: Span = Field((3.0, 10.0), description="Length of one play of a stream URL.")
    record: Span = Field((3.0, 10.0), description="Length of a record action ended by silence/key.")


class DtmfScript(_Model):
    """What a callee keys in at an ``input`` action (one script is drawn by weight per input)."""

    digits: str = Field("1", pattern=r"^[0-9*#]*$", description="Digits typed ('' = nothing).")
    weight: float = Field(1.0, ge=0, description="Relative weight of this script.")
    delay: Span = Field((1.0, 3.0), description="Seconds before the digits are complete.")


class SpeechScript(_Model):
    """What a callee says at a speech ``input`` action."""

    text: str = Field("yes", description="Recognised text ('' = silence: start_timeout).")
    confidence: float = Field(0.92, ge=0, le=1)
    weight: float = Field(1.0, ge=0)
    delay: Span = Field((1.0, 3.0))


class InputScripts(_Model):
    """Scripted callee input for ``input`` actions."""

    dtmf: tuple[DtmfScript, ...] = Field(
        (DtmfScript(),), description="List of {digits, weight, delay}."
    )
    speech: tuple[SpeechScript, ...] = Field(
        (SpeechScript(),), description="List of {text, confidence, weight, delay}."
    )


class Amd(_Model):
    """Answering-machine detection (only when the call asked for it)."""

    accuracy: Probability = Field(
        1.0, description="Probability the detector is right (else human<->machine swapped)."
    )
    beep_probability: Probability = Field(
        0.8, description="advanced AMD, detect_beep: chance a voicemail beeps (else beep_timeout)."
    )


class Events(_Model):
    """How webhook delivery deviates from the ideal order (as Vonage documents)."""

    reorder_started_ringing: Probability = Field(
        0.1, description="Probability 'ringing' is delivered before 'started'."
    )
    reorder_final_completed: Probability = Field(
        0.1, description="Probability 'completed' is delivered before the failure status."
    )
    duplicate: Probability = Field(
        0.01, description="Probability each event is delivered twice (re-signed)."
    )


class Pricing(_Model):
    """What ``completed`` reports (price = rate x duration / 60, 8 decimals)."""

    rate: str = Field("0.00450000", pattern=r"^\d+(\.\d+)?$", description="Per minute (EUR).")
    network: str = Field("23410", description="MCCMNC reported on answered/completed calls.")


class WebhookPolicy(_Model):
    """How the simulated platform calls the product's webhooks (real seconds)."""

    connect_timeout: float = Field(1.0, gt=0, description="TCP connect timeout.")
    answer_timeout: float = Field(5.0, gt=0, description="Read timeout for NCCO requests.")
    event_timeout: float = Field(10.0, gt=0, description="Read timeout for events.")
    ncco_attempts: int = Field(2, ge=1, le=5, description="Attempts per NCCO URL (then fallback).")
    event_attempts: int = Field(
        4, ge=1, le=20, description="Attempts for a plain event (retried on 5xx/429/network)."
    )
    retry_backoff: float = Field(
        1.0, ge=0, description="First retry delay for events; doubles per attempt."
    )
    signed: bool = Field(True, description="Sign webhooks (HS256 JWT) unless the app opts out.")
    verify_tls: bool = Field(True, description="Verify the product's TLS certificate.")


class WebSocketPolicy(_Model):
    """How the simulated platform connects websocket endpoints (real seconds and bytes)."""

    open_timeout: float = Field(
        3.0, gt=0, description="TCP connect + WebSocket handshake; past it the leg fails."
    )
    max_frames: int = Field(
        1500, ge=0, description="Audio frames (20 ms each) sent per leg at most, then silence."
    )
    max_message: int = Field(
        16384, ge=1024, description="Largest message read from the server (else it is closed)."
    )


class EndpointFault(_Model):
    """Faults for one API operation (or '*' for all)."""

    error_rate: Probability = Field(0.0, description="Probability of a 5xx instead of processing.")
    throttle_rate: Probability = Field(
        0.0,
        description=(
            "Probability of a 429 (the rate limiter's body) instead of processing; takes no "
            "limiter slot (Vonage's limits for other clients of the account, say)."
        ),
    )
    error_status: int = Field(503, ge=500, le=599, description="Status of injected errors.")
    drop_rate: Probability = Field(
        0.0,
        description="Probability the connection is closed AFTER processing (no response).",
    )
    latency_ms: float = Field(0.0, ge=0, description="Added latency before the response.")
    latency_jitter_ms: float = Field(0.0, ge=0, description="Uniform extra latency 0..jitter.")


def _check_ops(value: Any) -> Any:
    if isinstance(value, dict):
        for key in value:
            if key != "*" and key not in OPERATIONS:
                raise ValueError(f"unknown operation {key!r}; one of * {' '.join(OPERATIONS)}")
    return value


class Faults(_Model):
    """Fault injection per operation (ledger 'op': create_call, get_call, update_call, ...) or '*'."""

    endpoints: Annotated[dict[str, EndpointFault], BeforeValidator(_check_ops)] = Field(
        default_factory=dict,
        description=(
            "{op: {error_rate, error_status, throttle_rate, drop_rate, latency_ms, "
            "latency_jitter_ms}}."
        ),
    )


class Limits(_Model):
    """Platform rules and memory bounds (rates are --cps/--rps)."""

    too_early_seconds: float = Field(
        1.5, ge=0, description="PUT/DELETE on a call this soon after creation -> 400."
    )
    max_calls: int = Field(
        200_000, ge=100, description="Calls kept in memory/ledger (oldest ended ones dropped)."
    )
    max_requests: int = Field(200_000, ge=100, description="Requests kept in the ledger.")


class Override(_Model):
    """Per-destination behaviour: the first override whose regex matches 'to' applies."""

    match: str = Field(description="Regex searched in the destination number/URI.")
    outcome: Outcome | None = Field(None, description="Force this outcome.")
    ring: Span | None = None
    talk: Span | None = None
    dtmf: str | None = Field(None, pattern=r"^[0-9*#]*$", description="Digits for every input.")

    @model_validator(mode="after")
    def _regex(self) -> Override:
        try:
            re.compile(self.match)
        except re.error as err:
            raise ValueError(f"match: invalid regex: {err}") from None
        return self


class Agent(_Model):
    """An agent endpoint the product bridges callees to: matched destinations are agents, not callees.

    An agent never is a machine and never rejects at random: it is busy, unreachable or
    unanswered with its own probabilities, else answers after ``answer`` and hangs up after its
    handle time. A websocket agent is answered or failed by the socket itself, as any websocket
    leg; only ``handle`` can apply to it, and only with ``websocket_handle``.
    """

    match: str = Field(
        description="Regex searched in the destination (number, SIP URI, app user, ws URI)."
    )
    answer: Span = Field((1.0, 3.0), description="ringing -> answered.")
    handle: Span = Field((30.0, 90.0), description="answered -> the agent hangs up (uniform draw).")
    handle_mean: float | None = Field(
        None, gt=0, description="If set, the handle time is exponential with this mean instead."
    )
    busy: Probability = Field(0.0, description="Probability the agent is busy.")
    unreachable: Probability = Field(
        0.0, description="Probability the leg fails (cannot_route), no ringing."
    )
    unanswered: Probability = Field(
        0.0, description="Probability it rings out (unanswered, detail unavailable)."
    )
    websocket_handle: bool = Field(
        False, description="Websocket agents: hang up after the handle time too (else the server)."
    )

    @model_validator(mode="after")
    def _valid(self) -> Agent:
        try:
            re.compile(self.match)
        except re.error as err:
            raise ValueError(f"match: invalid regex: {err}") from None
        if self.busy + self.unreachable + self.unanswered > 1.0:
            raise ValueError("busy + unreachable + unanswered must be <= 1")
        return self


class Profile(_Model):
    """Everything that shapes simulated calls. All keys optional."""

    seed: int | None = Field(None, description="RNG seed (--seed overrides); None = random.")
    outcomes: Outcomes = Field(default_factory=Outcomes)
    timing: Timing = Field(default_factory=Timing)
    input: InputScripts = Field(default_factory=InputScripts)
    amd: Amd = Field(default_factory=Amd)
    events: Events = Field(default_factory=Events)
    pricing: Pricing = Field(default_factory=Pricing)
    webhooks: WebhookPolicy = Field(default_factory=WebhookPolicy)
    websocket: WebSocketPolicy = Field(default_factory=WebSocketPolicy)
    faults: Faults = Field(default_factory=Faults)
    limits: Limits = Field(default_factory=Limits)
    overrides: tuple[Override, ...] = Field(
        (), description="List of {match, outcome, ring, talk, dtmf}, first match wins."
    )
    agents: tuple[Agent, ...] = Field(
        (),
        description=(
            "Agent endpoints, first match wins; an agent destination gets these behaviours "
            "instead of outcomes/overrides (no AMD machine, no random reject)."
        ),
    )

    def agent_for(self, to: str) -> Agent | None:
        for agent in self.agents:
            if re.search(agent.match, to):
                return agent
        return None

    def override_for(self, to: str) -> Override | None:
        for ov in self.overrides:
            if re.search(ov.match, to):
                return ov
        return None

    def fault_for(self, op: str) -> EndpointFault | None:
        eps = self.faults.endpoints
        return eps.get(op) or eps.get("*")


def load_profile(source: Profile | dict[str, Any] | str | Path | None) -> Profile:
    """A profile from a model, a dict, a YAML/JSON file path, or ``None`` (all defaults)."""
    if source is None:
        return Profile()
    if isinstance(source, Profile):
        return source
    data: Any
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as err:
            raise ProfileError(f"cannot read profile {path}: {err.strerror}") from None
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ProfileError(f"profile {path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ProfileError("profile must be a mapping of keys")
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ProfileError(f"profile key {loc or '(root)'}: {first['msg']}") from None


def _fmt_default(value: Any) -> str:
    """A default value written the way it would be written in the YAML file."""
    if isinstance(value, BaseModel):
        inner = ", ".join(f"{k}: {_fmt_default(v)}" for k, v in value)
        return "{" + inner + "}"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, float) for v in value):
        lo, hi = value
        return f"{lo:g}" if lo == hi else f"[{lo:g}, {hi:g}]"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_fmt_default(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt_default(v)}" for k, v in value.items()) + "}"
    return str(value)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is Annotated:
        return _submodel(get_args(annotation)[0])
    return None


def _entry_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a list's entries (``tuple[Model, ...]``), whose keys --help lists too."""
    args = get_args(annotation)
    if get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _submodel(args[0])
    return None


def _describe_entry(model: type[BaseModel], indent: int) -> list[str]:
    # Entries may have required keys (an agent's match), so defaults come from the fields.
    lines: list[str] = []
    for i, (name, field) in enumerate(model.model_fields.items()):
        pad = "  " * indent + ("- " if i == 0 else "  ")
        value = "(required)" if field.is_required() else _fmt_default(field.get_default())
        text = f"{pad}{name}: {value}"
        if field.description:
            text += f"  # {field.description}"
        lines.append(text)
    return lines


def describe_profile(model: type[BaseModel] = Profile, indent: int = 0) -> list[str]:
    """One line per key, nested like the YAML, with defaults and descriptions (for --help)."""
    lines: list[str] = []
    defaults = model()
    for name, field in model.model_fields.items():
        pad = "  " * indent
        sub = _submodel(field.annotation)
        desc = field.description or ""
        if sub is not None:
            doc = (sub.__doc__ or "").strip().splitlines()[0] if sub.__doc__ else ""
            lines.append(f"{pad}{name}:{'  # ' + doc if doc else ''}")
            lines.extend(describe_profile(sub, indent + 1))
            continue
        value = getattr(defaults, name)
        text = f"{pad}{name}: {_fmt_default(value)}"
        if desc:
            text += f"  # {desc}"
        lines.append(text)
        entry = _entry_model(field.annotation)
        if entry is not None and not value:  # an empty list: show an entry's keys
            lines.extend(_describe_entry(entry, indent + 1))
    return lines
