"""The ingress ASGI app: webhooks, control API, health, metrics and OpenAPI on one port.

``create_app`` wires the parts; everything it needs can be passed in, so tests build the real app
in-process (``httpx.ASGITransport``) against the real broker, and the benchmark's baseline builds
the same app with a publisher that stores nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.flow import FlowSet
from contracts.topics import VOICE_COMMANDS, VOICE_EVENTS, VOICE_STATE, topic_name
from handlers.flow_ctx import ctx_keys
from orchestrator.config import ConfigError, Settings
from orchestrator.ingress.agents_api import AgentsApi
from orchestrator.ingress.campaigns import CampaignsApi
from orchestrator.ingress.control_api import ControlApi
from orchestrator.ingress.metrics import IngressMetrics
from orchestrator.ingress.openapi import build_openapi
from orchestrator.ingress.publish import KafkaPublisher, Publisher
from orchestrator.ingress.signature import SignatureVerifier
from orchestrator.ingress.state import StateView
from orchestrator.ingress.webhooks import WebhookEndpoint, WebhookSettings
from orchestrator.logs import get_logger

log = get_logger("ingress")

WEBHOOK_PATHS = (
    "/webhooks/{kind}",
    "/webhooks/{kind}/{call_ref}",
    "/webhooks/{kind}/{call_ref}/{flow}",
    "/webhooks/{kind}/{call_ref}/{flow}/{step}",
    "/webhooks/{kind}/{call_ref}/{flow}/{step}/{ctx}",
)


@dataclass
class IngressOptions:
    """Knobs of the ingress that are not product-wide settings (CLI flags)."""

    allow_unsigned: bool = False
    max_body_bytes: int = 64 * 1024
    publish_deadline: float = 2.5
    signature_max_age: float = 300.0
    signature_max_skew: float = 60.0
    jti_cache_size: int = 200_000
    state_view: bool = True
    extra_ready_topics: list[str] = field(default_factory=list)


def create_app(
    settings: Settings,
    *,
    flows: FlowSet | None = None,
    options: IngressOptions | None = None,
    publisher: Publisher | None = None,
    metrics: IngressMetrics | None = None,
) -> Starlette:
    opts = options or IngressOptions(allow_unsigned=settings.allow_unsigned_webhooks)
    flows = flows if flows is not None else FlowSet()
    metrics = metrics or IngressMetrics()
    secrets = settings.signature_secrets()
    if not secrets and not opts.allow_unsigned:
        raise ConfigError(
            "VONAGE_SIGNATURE_SECRET: required to verify webhooks (or --allow-unsigned, local only)"
        )
    verifier = (
        SignatureVerifier(
            secrets,
            max_age=opts.signature_max_age,
            max_skew=opts.signature_max_skew,
            jti_cache_size=opts.jti_cache_size,
        )
        if secrets
        else None
    )
    pub: Publisher = publisher or KafkaPublisher(
        settings, deadline=opts.publish_deadline, metrics=metrics
    )
    events_topic = topic_name(VOICE_EVENTS, settings.topic_prefix)
    commands_topic = topic_name(VOICE_COMMANDS, settings.topic_prefix)
    state_topic = topic_name(VOICE_STATE, settings.topic_prefix)
    token = settings.control_api_token.get_secret_value() if settings.control_api_token else None
    state = StateView(settings, state_topic) if (token and opts.state_view) else None
    if state is not None:
        state.on_change = metrics.state_flows.set

    webhooks = WebhookEndpoint(
        WebhookSettings(
            public_base=settings.public_base,
            events_topic=events_topic,
            max_body_bytes=opts.max_body_bytes,
            allow_unsigned=opts.allow_unsigned,
            ctx_keys=tuple(ctx_keys(secrets)),
        ),
        flows=flows,
        publisher=pub,
        verifier=verifier,
        metrics=metrics,
    )
    control_api = ControlApi(
        token=token,
        public_base=settings.public_base,
        default_account=settings.vonage_account,
        commands_topic=commands_topic,
        publisher=pub,
        flows=flows,
        state=state,
        metrics=metrics,
        ctx_key=ctx_keys(secrets)[0] if secrets else None,
    )
    campaigns = CampaignsApi(
        settings,
        auth=control_api.authorize,
        count=control_api.count,
        flow_names=flows.by_name.keys(),
    )
    agents = AgentsApi(settings, publisher=pub, auth=control_api.authorize, count=control_api.count)
    ready_topics = [events_topic, commands_topic, *opts.extra_ready_topics]
    if state is not None:
        ready_topics.append(state_topic)
    openapi_bytes = orjson.dumps(build_openapi())

    async def healthz(_: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(_: Request) -> Response:
        ok, why = await pub.check_ready(ready_topics)
        body = orjson.dumps({"status": "ready" if ok else "not ready", "reason": why})
        return Response(body, 200 if ok else 503, media_type="application/json")

    async def metrics_endpoint(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_: Request) -> Response:
        return Response(openapi_bytes, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if opts.allow_unsigned:
            log.warning(
                "--allow-unsigned: webhooks WITHOUT a signature are accepted; never use this "
                "in production"
            )
        await pub.start()
        if state is not None:
            await state.start()
        log.info(
            "ingress started",
            flows=len(flows),
            default_flow=flows.default.name if flows.default else None,
            events_topic=events_topic,
            signed=verifier is not None,
            control_api=token is not None,
        )
        try:
            yield
        finally:
            await campaigns.stop()
            await agents.stop()
            if state is not None:
                await state.stop()
            await pub.stop()
            log.info("ingress stopped")

    methods = ["GET", "POST"]
    routes = [Route(p, webhooks.endpoint, methods=methods) for p in WEBHOOK_PATHS]
    routes += [
        Route("/v1/commands", control_api.post_command, methods=["POST"]),
        Route("/v1/calls/{flow_key}", control_api.get_call, methods=["GET"]),
        *campaigns.routes(),
        *agents.routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.publisher = pub
    app.state.verifier = verifier
    app.state.state_view = state
    app.state.control_api = control_api
    return app
