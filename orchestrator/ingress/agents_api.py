"""Agents on the control API: change an agent's state, list the pool.

- ``PUT /v1/agents/{id}/state`` with ``{"action": "login", "profile": {...}}`` (or ``logout``,
  ``available``, ``offline`` without a profile) writes an
  :class:`~contracts.agents.AgentCommand` with a fresh event id to ``agents.control`` (key = the
  agent's id) and answers 202 once the broker acknowledged it: 400 for a body that is not JSON, an
  id that is not one, 422 naming the field for anything else invalid, 404 for a non-login action
  on an agent the pool does not know.
- ``GET /v1/agents`` answers the pool as ``agents.state`` last recorded it (every agent's record,
  callers waiting, the last logins refused).

The pool is read from ``agents.state`` (one reader, read on incrementally per request): what the
agents app stored at its last checkpoint, a fraction of a second behind. A non-login action right
after a login can therefore meet a 404 while the login is still in flight: retry it. The agents
role does not have to answer for any of this, like ``/v1/campaigns`` and the controller.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts._base import format_validation_error
from contracts.agent_calls import AgentPoolSnapshot
from contracts.agents import AGENT_ID_PATTERN, Agent, AgentAction, AgentRecord
from contracts.bounded import TooDeep, load_json
from contracts.topics import AGENTS_CONTROL, topic_name
from orchestrator.agents.operations import PoolWatcher, agent_command
from orchestrator.config import Settings
from orchestrator.ingress.publish import Publisher, PublishError, RecordTooLarge
from orchestrator.kafka.headers import record_headers
from orchestrator.logs import get_logger
from orchestrator.web.body import BodyTooLarge, request_body
from orchestrator.web.responses import json_response, problem, too_large

__all__ = ["AgentAccepted", "AgentList", "AgentStateRequest", "AgentsApi"]

log = get_logger("ingress.agents")

KAFKA_DEADLINE_S = 15.0
MAX_BODY_BYTES = 16 * 1024
_ID = re.compile(AGENT_ID_PATTERN)


class AgentProfile(BaseModel):
    """An agent's profile in a login request (the id is the path's)."""

    model_config = ConfigDict(extra="forbid")

    endpoint: dict[str, Any] = Field(
        description="NCCO connect endpoint: phone, sip, app or websocket (with its headers)."
    )
    groups: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    wrap_up_seconds: float = Field(
        30.0, description="Seconds of wrap-up after each call before the next (0 to 3600)."
    )


class AgentStateRequest(BaseModel):
    """``PUT /v1/agents/{id}/state``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["login", "logout", "available", "offline"]
    profile: AgentProfile | None = Field(None, description="Required with login, refused else.")


class AgentAccepted(BaseModel):
    agent_id: str
    action: str
    command_id: str
    status_url: str = "/v1/agents"


class AgentList(BaseModel):
    """``GET /v1/agents``: the pool as ``agents.state`` last recorded it."""

    agents: list[AgentRecord]
    callers_waiting: int = Field(description="Live answers waiting for an agent.")
    refused: list[dict[str, Any]] = Field(
        default_factory=list, description="The last logins refused, with the reason."
    )
    at: float | None = Field(None, description="The pool's clock at that record (epoch s).")


class AgentsApi:
    """Handlers for ``/v1/agents``; ``auth``, ``count`` and the publisher are the control API's."""

    def __init__(
        self,
        settings: Settings,
        *,
        publisher: Publisher,
        auth: Callable[[Request], Response | None],
        count: Callable[[str, Request, Response, float], Response],
    ) -> None:
        self.settings = settings
        self.topic = topic_name(AGENTS_CONTROL, settings.topic_prefix)
        self.publisher = publisher
        self._auth = auth
        self._count = count
        self._watcher: PoolWatcher | None = None
        self._lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/agents", self._wrap("list", self.list_agents), methods=["GET"]),
            Route(
                "/v1/agents/{agent_id}/state", self._wrap("state", self.put_state), methods=["PUT"]
            ),
        ]

    async def stop(self) -> None:
        async with self._lock:
            if self._watcher is not None:
                await self._watcher.__aexit__(None, None, None)
                self._watcher = None

    def _wrap(
        self, endpoint: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            response = self._auth(request)
            if response is None:
                try:
                    async with asyncio.timeout(KAFKA_DEADLINE_S):
                        response = await handler(request)
                except (TimeoutError, KafkaError) as err:
                    log.warning("agents request failed", endpoint=endpoint, error=repr(err))
                    response = problem(
                        503, "unavailable", "broker unavailable or slow: retry",
                        headers={"Retry-After": "1"},
                    )  # fmt: skip
            return self._count(f"control.agents.{endpoint}", request, response, started)

        return run

    async def _pool(self) -> AgentPoolSnapshot | None:
        async with self._lock:
            if self._watcher is None:
                watcher = PoolWatcher(self.settings)
                await watcher.__aenter__()
                self._watcher = watcher
            try:
                return await self._watcher.refresh()
            except BaseException:
                await self._watcher.__aexit__(None, None, None)
                self._watcher = None
                raise

    # --- GET /v1/agents ---------------------------------------------------------------------

    async def list_agents(self, request: Request) -> Response:
        pool = await self._pool()
        if pool is None:
            body = AgentList(agents=[], callers_waiting=0)
        else:
            body = AgentList(
                agents=pool.agents,
                callers_waiting=sum(1 for c in pool.calls if c.get("agent") is None),
                refused=pool.refused,
                at=pool.clock,
            )
        return json_response(200, body.model_dump(mode="json", by_alias=True, exclude_none=True))

    # --- PUT /v1/agents/{id}/state --------------------------------------------------------------

    async def put_state(self, request: Request) -> Response:
        agent_id = request.path_params["agent_id"]
        if not _ID.match(agent_id):
            return problem(
                400,
                "invalid agent id",
                "agent id: letters, digits, '_', '.', '@' or '-', at most 64, starting with a "
                "letter or digit",
            )
        try:
            raw = await request_body(request, MAX_BODY_BYTES)
        except BodyTooLarge as err:
            return too_large(str(err))
        try:
            data = load_json(raw)
        except orjson.JSONDecodeError as err:
            return problem(400, "invalid request", f"body: not valid JSON ({err.msg})")
        except TooDeep as err:
            return problem(400, "invalid request", f"body: {err}")
        try:
            req = AgentStateRequest.model_validate(data)
            profile = None
            if req.profile is not None:
                fields = req.profile.model_dump(exclude_unset=True)
                profile = Agent.model_validate({"id": agent_id, **fields})
            cmd = agent_command(
                agent_id, AgentAction(req.action), profile=profile, requested_by="control-api"
            )
        except ValidationError as err:
            reason = format_validation_error(err.errors(include_url=False, include_input=False))
            return problem(422, "invalid request", reason)
        if cmd.action != AgentAction.LOGIN:
            pool = await self._pool()
            known = pool is not None and any(r.agent.id == agent_id for r in pool.agents)
            if not known:
                return problem(
                    404,
                    "not found",
                    f"no agent {agent_id!r} in the pool (log them in first; a login just sent "
                    "may take a moment to be recorded)",
                )
        try:
            await self.publisher.publish(
                self.topic,
                agent_id.encode(),
                cmd.to_bytes(),
                headers=record_headers("AgentCommand", cmd.schema_version, None),
            )
        except RecordTooLarge as err:
            return problem(413, "too large", err.reason)
        except PublishError as err:
            return problem(503, "unavailable", err.reason, headers={"Retry-After": "1"})
        log.info("agent command", agent=agent_id, action=cmd.action.value, command_id=cmd.id)
        accepted = AgentAccepted(agent_id=agent_id, action=cmd.action.value, command_id=cmd.id)
        return json_response(202, accepted.model_dump(mode="json"))
