"""The agent records: endpoints as NCCO connect has them, commands, and the changelog value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts.agents import (
    Agent,
    AgentAction,
    AgentCommand,
    AgentNeed,
    AgentRecord,
    AgentState,
)
from contracts.ncco import AppEndpoint, SipEndpoint, WebsocketEndpoint
from contracts.schema import all_models

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("endpoint", "model"),
    [
        ({"type": "sip", "uri": "sip:desk@example.com"}, SipEndpoint),
        ({"type": "app", "user": "alice"}, AppEndpoint),
        (
            {
                "type": "websocket",
                "uri": "wss://bot.example.com/ws",
                "content-type": "audio/l16;rate=16000",
                "headers": {"campaign": "spring"},
            },
            WebsocketEndpoint,
        ),
    ],
)
def test_endpoints_are_ncco_connect_endpoints(endpoint: dict[str, object], model: type) -> None:
    agent = Agent.model_validate({"id": "bot-1", "endpoint": endpoint})
    assert isinstance(agent.endpoint, model)
    again = Agent.model_validate_json(agent.model_dump_json(by_alias=True, exclude_none=True))
    assert again == agent


def test_bad_profiles_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match=r"endpoint\.websocket\.content-type"):
        Agent.model_validate({"id": "b", "endpoint": {"type": "websocket", "uri": "wss://x"}})
    with pytest.raises(ValidationError, match="skill 'French speaker'"):
        Agent.model_validate(
            {"id": "a", "endpoint": {"type": "app", "user": "u"}, "skills": ["French speaker"]}
        )
    with pytest.raises(ValidationError, match="groups must not repeat"):
        Agent.model_validate(
            {"id": "a", "endpoint": {"type": "app", "user": "u"}, "groups": ["x", "x"]}
        )
    with pytest.raises(ValidationError, match="id"):
        Agent.model_validate({"id": "a/b", "endpoint": {"type": "app", "user": "u"}})
    with pytest.raises(ValidationError, match="wrap_up_seconds"):
        Agent.model_validate(
            {"id": "a", "endpoint": {"type": "app", "user": "u"}, "wrap_up_seconds": -1}
        )


def test_fits_needs_the_group_and_every_skill() -> None:
    a = Agent.model_validate(
        {"id": "a", "endpoint": {"type": "app", "user": "u"}, "groups": ["g"], "skills": ["x", "y"]}
    )
    assert a.fits(None) and a.fits(AgentNeed(group="g", skills=["y"]))
    assert not a.fits(AgentNeed(group="h")) and not a.fits(AgentNeed(skills=["z"]))


def test_login_needs_the_matching_profile_and_only_login_takes_one() -> None:
    profile = {"id": "a1", "endpoint": {"type": "phone", "number": "447700900001"}}
    base = {"id": "ev-1", "occurred_at": T.isoformat(), "agent_id": "a1"}
    cmd = AgentCommand.model_validate({**base, "action": "login", "agent": profile})
    assert AgentCommand.model_validate_json(cmd.to_bytes()) == cmd
    with pytest.raises(ValidationError, match="required with action login"):
        AgentCommand.model_validate({**base, "action": "login"})
    with pytest.raises(ValidationError, match="differs from agent_id"):
        AgentCommand.model_validate({**base, "agent_id": "a2", "action": "login", "agent": profile})
    with pytest.raises(ValidationError, match="only with action login"):
        AgentCommand.model_validate({**base, "action": "offline", "agent": profile})
    with pytest.raises(ValidationError, match="action"):
        AgentCommand.model_validate({**base, "action": "lunch"})
    assert AgentCommand.model_validate({**base, "action": "logout"}).action == AgentAction.LOGOUT


def test_a_record_must_be_consistent() -> None:
    agent = {"id": "a1", "endpoint": {"type": "app", "user": "u"}}
    with pytest.raises(ValidationError, match="call_ref"):
        AgentRecord.model_validate(
            {"agent": agent, "state": "reserved", "since": 1.0, "logged_in_since": 0.0}
        )
    with pytest.raises(ValidationError, match="wrap_up_until"):
        AgentRecord.model_validate(
            {"agent": agent, "state": "wrap_up", "since": 1.0, "logged_in_since": 0.0}
        )
    with pytest.raises(ValidationError, match="logged_in_since"):
        AgentRecord.model_validate({"agent": agent, "state": "available", "since": 1.0})
    ok = AgentRecord.model_validate({"agent": agent, "state": "offline", "since": 1.0})
    assert ok.state == AgentState.OFFLINE and AgentRecord.model_validate_json(ok.to_bytes()) == ok


def test_agent_records_are_exported_contracts() -> None:
    models = all_models()
    assert models["AgentCommand"] is AgentCommand and models["AgentRecord"] is AgentRecord
