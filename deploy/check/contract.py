"""The product's contract with the manifests: roles, ports, consumer groups, topics, drain time.

Each role engineer owns the behaviour; this table is what the manifests must agree with, so a
renamed port or group shows up here as one edit and in ``deploy-check`` as a clear failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.topics import (
    AGENTS_CONTROL,
    CAMPAIGN_CONTROL,
    VOICE_COMMANDS,
    VOICE_EVENTS,
    TopicSpec,
)

# SIGTERM drain budget of every role (stop fetching, drain, checkpoint, leave, exit).
DRAIN_SECONDS = 25
# Slack between the end of the drain and SIGKILL: interpreter exit, log flush, a slow node.
GRACE_MARGIN_SECONDS = 5
# The image's numeric user (deploy/Dockerfile); pods must run as this uid.
IMAGE_UID = 10001

# Environment variables read outside Settings: the YAML config file, the secrets dir, the
# ingress' declarative flows directory (``orchestrator ingress --flows``).
EXTRA_ENV = frozenset({"ORCHESTRATOR_CONFIG", "ORCHESTRATOR_SECRETS_DIR", "ORCHESTRATOR_FLOWS"})

PART_OF = "voice-orchestrator"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"


@dataclass(frozen=True, slots=True)
class Role:
    component: str
    args: tuple[str, ...]
    port_flag: str
    port: int
    group_id: str | None = None
    # The topic whose partition count bounds the replicas (one consumer per partition at most).
    topic: TopicSpec | None = None
    # How the replica count is driven: "hpa" (CPU), "keda" (consumer lag) or "static".
    scaler: str = "static"
    # Receives traffic through a Service, so it needs a preStop delay before the drain.
    serves_traffic: bool = False

    @property
    def is_consumer(self) -> bool:
        return self.group_id is not None


ROLES: tuple[Role, ...] = (
    Role("ingress", ("ingress",), "--port", 8080, scaler="hpa", serves_traffic=True),
    Role("worker", ("worker",), "--health-port", 9100, "voice-worker", VOICE_EVENTS, "keda"),
    Role(
        "dispatcher",
        ("dispatcher",),
        "--health-port",
        9101,
        "voice-dispatcher",
        VOICE_COMMANDS,
        "keda",
    ),
    Role(
        "campaign-controller",
        ("campaign", "controller"),
        "--health-port",
        9102,
        "campaign-controller",
        CAMPAIGN_CONTROL,
    ),
    Role("agents", ("agents",), "--health-port", 9103, "agents", AGENTS_CONTROL),
)

ROLE_BY_COMPONENT = {r.component: r for r in ROLES}

# The settings ConfigMap (generated, so its rendered name carries a hash suffix).
SETTINGS_CONFIGMAP = "orchestrator-settings"
# Settings a production overlay must give a value: without them the dispatcher cannot mint JWTs
# (application id), the Basic-auth APIs have no account, Vonage gets no reachable webhook URL.
REQUIRED_SETTINGS = (
    "VONAGE_APPLICATION_ID",
    "VONAGE_API_KEY",
    "KAFKA_BOOTSTRAP_SERVERS",
    "PUBLIC_BASE_URL",
)
