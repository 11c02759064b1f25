"""The voice application of the runtime: ``handlers.voice`` per flow key.

Decoding is deliberately light: ``orjson`` and a check of the envelope ``type``. The ingress and
the dispatcher validated these records with the ``contracts`` models before producing them, and the
machine checks every field it uses (raising ``InvalidEvent``), so validating the whole envelope
again with pydantic would only double the cost of the hot path.

Timers: every record (re)arms a timer of ``settle_s``; when the flow has been quiet that long,
``handlers.voice.settle`` emits the outcomes of whatever became final. ``settle`` says when to look
again (the ``completed``-without-reason grace, or the abandonment time-out), and whether the flow
is finished, after which the runtime evicts it ``retention_s`` later.
"""

from __future__ import annotations

from typing import Any

import orjson

from contracts.topics import TOPICS_BY_NAME, topic_name
from contracts.voice_state import VoiceState, upgrade_voice_state
from handlers import voice
from orchestrator.runtime import App, Context, DecodeError, Output, Step

__all__ = ["VoiceApp"]

_TYPES = frozenset({"vonage.webhook", "dispatcher.result"})


class VoiceApp(App[VoiceState, dict[str, Any]]):
    name = "worker"
    state_type = "VoiceStateRecord"
    invalid_errors = (voice.InvalidEvent,)

    def __init__(
        self,
        topic_prefix: str = "",
        *,
        settle_s: float = 1.0,
        settle: voice.SettleConfig | None = None,
    ) -> None:
        self.settle_s = settle_s
        self.settle_config = settle or voice.SettleConfig()
        #: The topics the machine emits to, by logical name (``voice.Emit.topic``).
        self.topics = {
            name: topic_name(TOPICS_BY_NAME[name], topic_prefix)
            for name in (
                voice.OUTCOMES_TOPIC,
                voice.COMMANDS_TOPIC,
                voice.CAMPAIGN_TOPIC,
                voice.AGENTS_TOPIC,
            )
        }
        #: Each record's model (the ``type`` header), by its ``type`` field.
        self.record_types = {
            "voice.outcome": "Outcome",
            "voice.command": "CommandEnvelope",
            "voice.milestone": "LegMilestone",
            "agent.call": "AgentCall",
        }

    def decode(self, key: bytes, value: bytes | None) -> dict[str, Any]:
        if value is None:
            raise DecodeError("null value (a tombstone on voice.events?)")
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError as err:
            raise DecodeError(f"not JSON: {err}") from None
        if not isinstance(event, dict):
            raise DecodeError(f"not a JSON object but {type(event).__name__}")
        if event.get("type") not in _TYPES:
            raise DecodeError(
                f"type: expected vonage.webhook or dispatcher.result, got {str(event.get('type'))[:40]!r}"
            )
        return event

    def apply(
        self, key: str, state: VoiceState | None, event: dict[str, Any], ctx: Context
    ) -> Step[VoiceState]:
        if event.get("flow_key") != key:
            raise voice.InvalidEvent("envelope flow_key differs from the record key")
        flow, emits = voice.transition(state, event)
        return Step(flow, self._outputs(emits) if emits else (), self.settle_s)

    def on_timer(self, key: str, state: VoiceState, ctx: Context) -> Step[VoiceState]:
        res = voice.settle(state, ctx.idle_s, self.settle_config)
        return Step(
            res.flow, self._outputs(res.emits) if res.emits else (), res.next_check_s, res.finished
        )

    def load_state(self, raw: Any) -> VoiceState:
        """A flow from ``voice.state``: one an older worker wrote is upgraded to this version."""
        return upgrade_voice_state(raw)

    def _outputs(self, emits: list[voice.Emit]) -> list[Output]:
        topics, types = self.topics, self.record_types
        dumps = orjson.dumps
        return [
            Output(
                topics[e.topic],
                e.key.encode(),
                dumps(e.value),
                record_type=types[e.value["type"]],
                schema_version=e.value["schema_version"],
            )
            for e in emits
        ]
