"""The create-call command for one dial attempt: pure rendering from the campaign and contact.

Agent campaigns (``mode: progressive | predictive``) get the campaign's inline NCCO (talk and
stream only, checked by the spec) followed by :func:`bridge_action`, the named conversation their
agent joins. The bridge is written into the create-call command here rather than rendered by the
ingress from a declarative flow: the answer then needs no request at all (the ingress renders
flows from the answer webhook in milliseconds, but a call that needs no answer URL cannot have
its answer fail), and a declarative flow has no single last step to put the bridge after (each
branch ends elsewhere; an ``input`` may wait any time), so a named flow or an answer URL is refused
for agent campaigns rather than bridged at a guessed point.

Every URL Vonage gets for the call carries the attempt's ``call_ref`` in its path (design item 1),
so each webhook finds its flow without a lookup. The command id is deterministic from the
call_ref, so a command re-emitted after a controller restart is the same command, which the
dispatcher's ledger never sends twice.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from contracts.agent_calls import bridge_name
from contracts.campaign import CampaignSpec, Contact
from contracts.envelopes import CommandEnvelope, CommandKind, ReplyTo, stable_id
from contracts.flow import template_names
from contracts.topics import CAMPAIGN_CONTROL
from handlers.flow import webhook_url
from handlers.flow_ctx import START_STEP, pack_ctx
from handlers.template_vars import contact_values

__all__ = [
    "abandon_values",
    "bridge_action",
    "build_create_call",
    "create_call_body",
    "machine_hints",
    "render_template",
    "template_values",
]

_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: NCCO actions whose webhooks must come back to us on the call's path, and the path kind.
_EVENT_ACTIONS = {"input": "input", "notify": "notify", "record": "recording", "connect": "event"}


def template_values(spec: CampaignSpec, contact: Contact) -> dict[str, str]:
    """The contact's values over the campaign's defaults (``handlers.template_vars``)."""
    return contact_values(spec, contact)


def render_template(value: Any, values: dict[str, str]) -> Any:
    """Replace ``{{var}}`` in every string of a JSON-like value; unknown names render empty."""
    if isinstance(value, str):
        return _TEMPLATE.sub(lambda m: values.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [render_template(v, values) for v in value]
    if isinstance(value, dict):
        return {k: render_template(v, values) for k, v in value.items()}
    return value


def _caller_id(spec: CampaignSpec, contact: Contact) -> dict[str, Any]:
    ids = spec.from_
    if ids.random_from_number:
        return {"random_from_number": True}
    number = ids.numbers[contact.index % len(ids.numbers)].lstrip("+")
    return {"from": {"type": "phone", "number": number}}


def create_call_body(
    spec: CampaignSpec,
    contact: Contact,
    call_ref: str,
    public_base: str,
    ctx_key: bytes | None = None,
) -> dict[str, Any]:
    """The ``POST /v1/calls`` body (wire names) for this attempt."""
    body: dict[str, Any] = {
        "to": [{"type": "phone", "number": contact.number.lstrip("+")}],
        **_caller_id(spec, contact),
        "event_url": [webhook_url(public_base, "event", call_ref)],
        "event_method": "POST",
        "ringing_timer": spec.ringing_timer,
    }
    if spec.length_timer is not None:
        body["length_timer"] = spec.length_timer
    flow = spec.flow
    if flow.ncco is not None:
        values = template_values(spec, contact)
        ncco = render_template(flow.ncco, values)
        for action in ncco:
            kind = _EVENT_ACTIONS.get(action.get("action", ""))
            if kind and "eventUrl" not in action:
                action["eventUrl"] = [webhook_url(public_base, kind, call_ref)]
        if spec.mode != "agentless":
            # The prelude (talk/stream, checked by the spec) plays, then the callee waits in
            # their own conversation for the agent the pool sends there.
            ncco.append(bridge_action(call_ref))
        body["ncco"] = ncco
    elif flow.name is not None:
        # /webhooks/answer/{call_ref}/{flow}/_/{ctx}: the ingress renders the flow's start step
        # with the contact's values, signed (handlers.flow_ctx); it keeps the ones the flow
        # declares.
        ctx = pack_ctx(0, template_values(spec, contact), ctx_key)
        body["answer_url"] = [
            webhook_url(public_base, "answer", call_ref, flow.name, START_STEP, ctx)
        ]
        body["answer_method"] = "GET"
    else:
        assert flow.answer_url is not None
        body["answer_url"] = [flow.answer_url]
    amd = spec.machine_detection
    if amd.mode == "standard":
        body["machine_detection"] = "hangup" if amd.on_machine == "hangup" else "continue"
    elif amd.mode == "advanced":
        body["advanced_machine_detection"] = {
            "behavior": "hangup" if amd.on_machine == "hangup" else "continue",
            "mode": "detect_beep" if amd.on_machine == "leave_message" else "detect",
            "beep_timeout": amd.beep_timeout,
        }
    return body


def build_create_call(
    spec: CampaignSpec,
    contact: Contact,
    call_ref: str,
    *,
    public_base: str,
    account: str,
    at: datetime,
    ctx_key: bytes | None = None,
) -> CommandEnvelope:
    """The ``create_call`` command for one attempt (id deterministic from the call_ref).

    Its result goes to the call's flow (the worker) and, by ``reply_to``, straight to the
    campaign's partition of ``campaign.control``. The hints are the worker's voicemail policy
    (``handlers.voice``), echoed on the result.
    """
    return CommandEnvelope(
        id=stable_id("cmd", "create_call", call_ref),
        occurred_at=at,
        flow_key=call_ref,
        kind=CommandKind.CREATE_CALL,
        call_ref=call_ref,
        account=account,
        body=create_call_body(spec, contact, call_ref, public_base, ctx_key),
        origin=f"campaign:{spec.name}",
        hints=machine_hints(spec, contact) or None,
        reply_to=ReplyTo(topic=CAMPAIGN_CONTROL.name, key=spec.name),
    )


def machine_hints(spec: CampaignSpec, contact: Contact) -> dict[str, Any]:
    """What the worker should do when AMD says ``machine`` (``handlers.voice`` policy hints),
    and for an agent campaign's call, ``agents: bridge`` (its AMD milestones go to the
    controller, its end to the agent pool)."""
    amd = spec.machine_detection
    agents: dict[str, Any] = {"agents": "bridge"} if spec.mode != "agentless" else {}
    if amd.mode == "off":
        return agents
    if amd.on_machine == "hangup":
        return {"on_machine": "hangup", **agents}
    message = render_template(amd.message or "", template_values(spec, contact))
    return {"on_machine": "message", "machine_message": message, "wait_for_beep": True, **agents}


def bridge_action(call_ref: str) -> dict[str, Any]:
    """The callee's end of the bridge: their own named conversation, which the agent's leg joins.

    ``startOnEnter`` so the callee is not held on music; ``endOnExit`` so their hanging up ends
    the agent's leg too (the agent's own NCCO joins with ``endOnExit`` as well).
    """
    return {
        "action": "conversation",
        "name": bridge_name(call_ref),
        "startOnEnter": True,
        "endOnExit": True,
    }


def abandon_values(spec: CampaignSpec, contact: Contact) -> dict[str, str]:
    """The contact's values the abandon message uses (only those: the pool keeps them while the
    caller waits)."""
    message = spec.agents.abandon_message if spec.agents is not None else None
    if not message:
        return {}
    values = template_values(spec, contact)
    return {k: values[k] for k in sorted(template_names(message)) if k in values}
