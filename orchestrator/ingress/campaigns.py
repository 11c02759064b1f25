"""Campaign operations on the control API: start, status, pause, resume, cancel, results.

The same operations as ``orchestrator campaign ...`` and built on the same functions
(:mod:`orchestrator.campaign.operations`): a START/PAUSE/... message on ``campaign.control``,
progress read from ``campaign.state``, results from ``campaign.results``. The ingress needs no
connection to a controller. Contacts and DNC lists come with the request (multipart, written to
``campaign.uploads``), from a topic, or from files inside ``CONTACTS_DIR`` only: a path named
over HTTP never reaches anywhere else (:mod:`orchestrator.campaign.contacts_dir`).

- ``POST /v1/campaigns`` (JSON or YAML spec, or multipart: spec + contacts + dnc files)
  -> 202, 409 (name used), 413 (too large), 422 (bad spec)
- ``POST /v1/campaigns?dry_run=true`` -> 200 or 422 with what ``campaign validate`` reports,
  for any body a start takes (a multipart one is parsed by the start's parser, its rows held
  for the check instead of written: :mod:`orchestrator.ingress.campaign_checks`), nothing written
  to Kafka; 400/413/422 where a start would refuse the body
- ``GET /v1/campaigns`` -> every campaign's progress
- ``GET /v1/campaigns/{name}`` -> progress, 404 when unknown
- ``POST /v1/campaigns/{name}/{pause|resume|cancel}`` -> 202, 404 when unknown
- ``GET /v1/campaigns/{name}/results`` -> JSONL (default) or CSV, one line per contact
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from contracts.campaign import CampaignProgress, CampaignSpec, ControlAction
from orchestrator.campaign.operations import (
    StartRefused,
    StateWatcher,
    read_results,
    results_csv,
    results_jsonl,
    send_control,
    start_campaign,
)
from orchestrator.campaign.uploads import TopicSink
from orchestrator.config import Settings
from orchestrator.ingress.campaign_checks import CampaignChecks
from orchestrator.ingress.campaign_spec import YAML_TYPES, Refused, parse_spec
from orchestrator.ingress.campaign_upload import receive_upload
from orchestrator.ingress.control_api import MAX_COMMAND_BYTES
from orchestrator.ingress.publish import TOO_LARGE_ERRORS
from orchestrator.logs import get_logger
from orchestrator.web.body import BodyTooLarge, request_body
from orchestrator.web.responses import json_response, problem, too_large

log = get_logger("ingress.campaigns")

#: A broker that does not answer within this turns into 503 (retry) instead of a hung request.
KAFKA_DEADLINE_S = 15.0
#: A start with uploaded files streams them to campaign.uploads first (the broker's own waits
#: are bounded by KAFKA_DEADLINE_S and the producer's timeouts inside it).
UPLOAD_DEADLINE_S = 600.0
#: Results are read whole from campaign.results first; a big campaign takes a while.
RESULTS_DEADLINE_S = 120.0
_ACTIONS = {
    "pause": ControlAction.PAUSE,
    "resume": ControlAction.RESUME,
    "cancel": ControlAction.CANCEL,
}
_CSV = "text/csv; charset=utf-8"
_JSONL = "application/jsonl"


class CampaignAccepted(BaseModel):
    campaign: str
    control_id: str = Field(description="Id of the START message on campaign.control.")
    contacts_total: int | None = None
    status_url: str
    results_url: str
    warnings: list[str] = Field(default_factory=list)


class CampaignList(BaseModel):
    campaigns: list[CampaignProgress] = Field(
        description="Newest start first; each with eta_s, as GET /v1/campaigns/{name}."
    )


class ControlAccepted(BaseModel):
    campaign: str
    action: str
    control_id: str
    status_url: str


class CampaignsApi:
    """Handlers for ``/v1/campaigns``; ``auth`` and ``count`` come from :class:`ControlApi`."""

    def __init__(
        self,
        settings: Settings,
        *,
        auth: Callable[[Request], Response | None],
        count: Callable[[str, Request, Response, float], Response],
        flow_names: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self.checks = CampaignChecks(settings, flow_names)
        self._auth = auth
        self._count = count
        self._watcher: StateWatcher | None = None
        self._lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            Route(
                "/v1/campaigns",
                self._wrap("start", self.start, UPLOAD_DEADLINE_S),
                methods=["POST"],
            ),
            Route("/v1/campaigns", self._wrap("list", self.list_campaigns), methods=["GET"]),
            Route("/v1/campaigns/{name}", self._wrap("status", self.status), methods=["GET"]),
            Route(
                "/v1/campaigns/{name}/results",
                self._wrap("results", self.results, RESULTS_DEADLINE_S),
                methods=["GET"],
            ),
            Route(
                "/v1/campaigns/{name}/{action}",
                self._wrap("control", self.control),
                methods=["POST"],
            ),
        ]

    async def stop(self) -> None:
        async with self._lock:
            if self._watcher is not None:
                await self._watcher.__aexit__(None, None, None)
                self._watcher = None

    def _wrap(
        self,
        endpoint: str,
        handler: Callable[[Request], Awaitable[Response]],
        deadline: float = KAFKA_DEADLINE_S,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            response = self._auth(request)
            if response is None:
                try:
                    async with asyncio.timeout(deadline):
                        response = await handler(request)
                except Refused as refused:
                    response = refused.response
                except BodyTooLarge as err:
                    response = too_large(str(err))
                except TOO_LARGE_ERRORS:
                    response = problem(413, "too large", "the campaign is too large for its topic")
                except (TimeoutError, KafkaError) as err:
                    log.warning("campaign request failed", endpoint=endpoint, error=repr(err))
                    response = problem(
                        503,
                        "unavailable",
                        "broker unavailable or slow: retry",
                        headers={"Retry-After": "1"},
                    )
            return self._count(f"control.campaigns.{endpoint}", request, response, started)

        return run

    async def _status_of(self, name: str) -> CampaignProgress | None:
        """Latest progress on campaign.state (one watcher, read on incrementally per request)."""
        found = await self._progress([name])
        return found[0] if found else None

    async def _progress(self, names: list[str] | None) -> list[CampaignProgress]:
        """The progress of ``names`` (None: every campaign) that campaign.state has."""
        async with self._lock:
            if self._watcher is None:
                watcher = StateWatcher(self.settings)
                await watcher.__aenter__()
                self._watcher = watcher
            try:
                await self._watcher.refresh()
            except BaseException:
                await self._watcher.__aexit__(None, None, None)
                self._watcher = None
                raise
            w = self._watcher
            wanted = list(w.states) if names is None else names
            return [p for n in wanted if (p := w.progress(n)) is not None]

    def _unknown(self, name: str) -> Response:
        return problem(404, "not found", f"no campaign named {name[:128]!r}")

    # --- POST /v1/campaigns -----------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        ctype = (request.headers.get("content-type") or "application/json").split(";")[0]
        media = ctype.strip().lower()
        first = None
        notes: list[str] = []
        raw, as_yaml = b"", False
        if request.query_params.get("dry_run", "").lower() in ("true", "1", "yes"):
            return await self._dry_run(request, media)
        if media == "multipart/form-data":
            async with TopicSink(self.settings) as sink:
                upload = await receive_upload(
                    request,
                    self.settings,
                    spec_limit=MAX_COMMAND_BYTES,
                    check_name=self._unused,
                    sink=sink,
                )
            spec, first, notes = upload.spec, upload.first, upload.notes
        else:
            raw = await request_body(request, MAX_COMMAND_BYTES)
            as_yaml = media in YAML_TYPES
            spec, _ = await parse_spec(raw, as_yaml=as_yaml)
        spec = self.checks.confined(spec)
        if media != "multipart/form-data":
            # The checks of `campaign validate` first, as the CLI's start runs them: a mistake
            # found now is a 422, not a live call (uploads are checked as they are written).
            report = await self.checks.spec(spec, raw if as_yaml else None)
            if not report.ok:
                return json_response(422, report.to_json())
        try:
            async with asyncio.timeout(KAFKA_DEADLINE_S):
                started = await start_campaign(
                    self.settings,
                    spec,
                    requested_by="control-api",
                    status_of=self._status_str,
                    first=first,
                )
        except StartRefused as err:
            if err.exists is not None:
                return problem(409, "conflict", str(err))
            return problem(422, "invalid campaign", str(err))
        log.info("campaign started", campaign=spec.name, contacts=started.contacts_total)
        url = f"/v1/campaigns/{spec.name}"
        accepted = CampaignAccepted(
            campaign=spec.name,
            control_id=started.control.id,
            contacts_total=started.contacts_total,
            status_url=url,
            results_url=f"{url}/results",
            warnings=[*notes, *started.notes],
        )
        return json_response(202, accepted.model_dump(mode="json"), {"Location": url})

    async def _dry_run(self, request: Request, media: str) -> Response:
        """What ``campaign validate`` says about the campaign: 200 when it may start, else 422."""
        if media == "multipart/form-data":
            report = await self.checks.upload(request, spec_limit=MAX_COMMAND_BYTES)
        else:
            raw = await request_body(request, MAX_COMMAND_BYTES)
            as_yaml = media in YAML_TYPES
            spec, _ = await parse_spec(raw, as_yaml=as_yaml)
            report = await self.checks.spec(self.checks.confined(spec), raw if as_yaml else None)
        return json_response(200 if report.ok else 422, report.to_json())

    # --- GET /v1/campaigns ------------------------------------------------------------------------

    async def list_campaigns(self, request: Request) -> Response:
        found = await self._progress(None)
        found.sort(key=lambda p: (p.started_at is not None, p.started_at), reverse=True)
        body = CampaignList(campaigns=found).model_dump(mode="json")
        for entry, p in zip(body["campaigns"], found, strict=True):
            entry["eta_s"] = p.eta_s
        return json_response(200, body)

    async def _unused(self, spec: CampaignSpec) -> None:
        """409 before an upload is written, when the name is taken (checked again at START)."""
        existing = await self._status_str(spec.name)
        if existing is not None:
            raise Refused(
                problem(
                    409,
                    "conflict",
                    f"campaign {spec.name!r} exists already (status {existing}); "
                    "a campaign runs once: give the new one another name",
                )
            )

    async def _status_str(self, name: str) -> str | None:
        p = await self._status_of(name)
        return None if p is None else str(p.status)

    # --- GET /v1/campaigns/{name} -----------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        name = request.path_params["name"]
        p = await self._status_of(name)
        if p is None:
            return self._unknown(name)
        body: dict[str, Any] = p.model_dump(mode="json")
        body["eta_s"] = p.eta_s
        return json_response(200, body)

    # --- POST /v1/campaigns/{name}/{pause|resume|cancel} ------------------------------------------

    async def control(self, request: Request) -> Response:
        name = request.path_params["name"]
        action = _ACTIONS.get(request.path_params["action"])
        if action is None:
            return problem(404, "not found", "actions: pause, resume, cancel")
        if await self._status_of(name) is None:
            return self._unknown(name)
        ctrl = await send_control(self.settings, name, action, requested_by="control-api")
        log.info("campaign control", campaign=name, action=str(action))
        accepted = ControlAccepted(
            campaign=name,
            action=str(action),
            control_id=ctrl.id,
            status_url=f"/v1/campaigns/{name}",
        )
        return json_response(202, accepted.model_dump(mode="json"))

    # --- GET /v1/campaigns/{name}/results ---------------------------------------------------------

    async def results(self, request: Request) -> Response:
        name = request.path_params["name"]
        fmt = request.query_params.get("format")
        if fmt is None:
            accept = (request.headers.get("accept") or "").lower()
            fmt = "csv" if "text/csv" in accept else "jsonl"
        if fmt not in ("csv", "jsonl"):
            return problem(400, "bad format", "format: csv or jsonl")
        if await self._status_of(name) is None:
            return self._unknown(name)
        found = await read_results(self.settings, name)
        disposition = f'attachment; filename="{name}-results.{fmt}"'
        headers = {"Content-Disposition": disposition, "X-Result-Count": str(len(found))}
        if fmt == "csv":
            return StreamingResponse(results_csv(found), media_type=_CSV, headers=headers)
        return StreamingResponse(results_jsonl(found), media_type=_JSONL, headers=headers)
