"""Settings: one object, read from the environment and an optional YAML file.

Names follow Vonage's own conventions (``VONAGE_APPLICATION_ID``, ``VONAGE_PRIVATE_KEY`` ...) so a
user's existing environment works unchanged. A bad value stops start-up with a single line that names
the setting (:class:`ConfigError`), because a stack trace from deep inside a role helps nobody.
Secrets are ``SecretStr``: they print as ``**********`` in logs and reprs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from contracts.suggest import did_you_mean
from orchestrator.kafka.security import resolve as resolve_kafka_security

CONFIG_FILE_ENV = "ORCHESTRATOR_CONFIG"
SECRETS_DIR_ENV = "ORCHESTRATOR_SECRETS_DIR"
#: Prefixes of the variables this product owns: an unknown one is most likely a typo.
CHECKED_PREFIXES = ("VONAGE_", "KAFKA_", "ORCHESTRATOR_")
#: Variables read outside the settings object (the rest are derived from its fields).
OTHER_VARIABLES = (
    CONFIG_FILE_ENV,
    SECRETS_DIR_ENV,
    "ORCHESTRATOR_FLOWS",  # orchestrator ingress --flows
    "VONAGE_SHARED_DIR",  # the test suite's reference files
)

# Deliberately broken variants of the product (``ORCHESTRATOR_FAULT``, comma-separated names),
# switched on only by the soak's own tests: the soak proves that its checker catches real bugs by
# running the product with one of them on and expecting the matching anomaly. They reach the
# runtime and the dispatcher as settings like any other; unset (always, outside those tests)
# every switch is off, and the code path each guards is one boolean test.

#: The dispatcher sends a create-call again when the first attempt's outcome is unknown
#: (timeout or dropped connection) instead of resolving it: a second call for one call_ref.
DISPATCHER_RESEND_ON_TIMEOUT = "dispatcher-resend-on-timeout"
#: The worker commits its input offsets before its outputs and state are confirmed, and lingers
#: there: a crash in between loses both (events never applied, outcomes never produced).
WORKER_COMMIT_BEFORE_PRODUCE = "worker-commit-before-produce"
#: A condition, not a bug: every state restore takes SLOW_RESTORE_S longer (a changelog far bigger
#: than the session timeout allows to read), to show restores never get a member expelled.
WORKER_SLOW_RESTORE = "worker-slow-restore"
SLOW_RESTORE_S = 12.0
#: The worker waits for its restore inside the assignment callback, as it once did: aiokafka does
#: not heartbeat meanwhile, so a restore longer than the session timeout expels the member, which
#: rejoins and restores again, in a loop.
WORKER_RESTORE_IN_CALLBACK = "worker-restore-in-callback"
FAULT_SWITCHES = frozenset(
    {
        DISPATCHER_RESEND_ON_TIMEOUT,
        WORKER_COMMIT_BEFORE_PRODUCE,
        WORKER_SLOW_RESTORE,
        WORKER_RESTORE_IN_CALLBACK,
    }
)


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        secrets_dir=os.environ.get(SECRETS_DIR_ENV) or None,
        populate_by_name=True,
    )

    # --- Vonage -------------------------------------------------------------------------------
    vonage_application_id: str | None = None
    vonage_private_key: SecretStr | None = Field(
        None,
        # VONAGE_PRIVATE_KEY_PATH is the name Vonage's own tutorials use.
        validation_alias=AliasChoices("vonage_private_key", "vonage_private_key_path"),
        description="PEM text, or a path to a PEM file (alias VONAGE_PRIVATE_KEY_PATH).",
    )
    vonage_api_key: str | None = None
    vonage_api_secret: SecretStr | None = None
    vonage_signature_secret: SecretStr | None = Field(
        None, description="Comma-separated to accept several during rotation."
    )
    vonage_api_host: AnyHttpUrl = AnyHttpUrl("https://api.nexmo.com")
    vonage_account: str = Field("default", description="Rate-limit scope name.")
    vonage_cps: float = Field(3.0, gt=0, description="New calls per rolling second.")
    vonage_rps: float = Field(15.0, gt=0, description="Other requests per rolling second.")

    # --- Kafka --------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = "localhost:9092"
    topic_prefix: str = ""
    create_topics: bool = Field(False, description="Create missing topics at start-up.")
    topic_partitions: int | None = Field(
        None, ge=1, description="Override every topic's partition count (local use)."
    )
    topic_replication_factor: int | None = Field(None, ge=1)
    kafka_session_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        description="Consumer session timeout; with INSTANCE_ID set, make it longer than a pod "
        "restart (e.g. 45000) so restarts do not rebalance.",
    )
    # Security (orchestrator/kafka/security.py checks these together; docs/deploy.md, "Kafka
    # security", has an example per platform).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: Path | None = Field(
        None,
        description="PEM CA certificate(s) the brokers' certificates are checked against; "
        "unset: the system's trust store.",
    )
    kafka_ssl_cert_file: Path | None = Field(None, description="PEM client certificate (mTLS).")
    kafka_ssl_key_file: Path | None = Field(None, description="Unencrypted PEM key of it.")
    kafka_credentials_dir: Path | None = Field(
        None,
        description="A mounted Strimzi KafkaUser secret (and cluster CA): ca.crt, user.crt, "
        "user.key, password, sasl.jaas.config or username fill the settings left unset.",
    )

    processing_guarantee: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once",
        description="exactly_once: the worker and the campaign controller write each "
        "partition's outputs, state and input offsets in one Kafka transaction, fenced against "
        "a previous owner; at_least_once: outputs, then state, then offsets, with replays "
        "deduplicated by id (faster, but a paused zombie can write late duplicates).",
    )

    dispatcher_max_command_age_s: float = Field(
        900.0,
        gt=0,
        description="Commands written to voice.commands longer ago than this (by the record "
        "timestamp) are answered 'expired' and never sent; a group that lost its offsets re-reads its partitions, and this keeps it from "
        "re-sending old creates. Their dial-ledger entries are kept as long.",
    )
    dispatcher_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a dispatcher group without committed offsets starts reading.",
    )

    # --- HTTP ---------------------------------------------------------------------------------
    public_base_url: AnyHttpUrl = AnyHttpUrl("http://localhost:8080")
    control_api_token: SecretStr | None = None
    allow_unsigned_webhooks: bool = False
    contacts_dir: Path | None = Field(
        None,
        description="The only directory the control API reads contact and DNC files from "
        "(unset: none; upload the files or use a topic).",
    )
    contacts_upload_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest campaign upload (multipart) accepted."
    )

    # --- Operations ---------------------------------------------------------------------------
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    instance_id: str | None = Field(
        None, description="Static group membership id (e.g. the pod name)."
    )
    orchestrator_fault: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(),
        description="Deliberately broken variants to switch on (soak tests only; see "
        "FAULT_SWITCHES), comma-separated.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(CONFIG_FILE_ENV)
        if path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        sources.append(file_secret_settings)
        return tuple(sources)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, v: str) -> str:
        for part in v.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {v!r}")
        return v

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator(
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_ssl_ca_file",
        "kafka_ssl_cert_file",
        "kafka_ssl_key_file",
        "kafka_credentials_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, v: Any) -> Any:
        """``KAFKA_SASL_MECHANISM=`` in a ConfigMap means "not set", as for other optionals."""
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        resolve_kafka_security(self)
        return self

    @field_validator("orchestrator_fault", mode="before")
    @classmethod
    def _fault_switches(cls, v: Any) -> frozenset[str]:
        names = v.split(",") if isinstance(v, str) else list(v or ())
        switches = frozenset(str(n).strip() for n in names if str(n).strip())
        if switches - FAULT_SWITCHES:
            raise ValueError(
                f"unknown fault(s) {sorted(switches - FAULT_SWITCHES)}; "
                f"known: {', '.join(sorted(FAULT_SWITCHES))}"
            )
        return switches

    # --- Derived ------------------------------------------------------------------------------

    def private_key_pem(self) -> bytes:
        """The application's private key as PEM bytes (from the text or the file it names)."""
        if self.vonage_private_key is None:
            raise ConfigError("VONAGE_PRIVATE_KEY: not set (PEM text or a path to a PEM file)")
        raw = self.vonage_private_key.get_secret_value().strip()
        if raw.startswith("-----BEGIN"):
            return raw.replace("\\n", "\n").encode()
        path = Path(raw).expanduser()
        if not path.is_file():
            raise ConfigError(
                "VONAGE_PRIVATE_KEY: neither PEM text nor a readable file (path not shown)"
            )
        return path.read_bytes()

    def signature_secrets(self) -> list[str]:
        if self.vonage_signature_secret is None:
            return []
        return [
            s.strip()
            for s in self.vonage_signature_secret.get_secret_value().split(",")
            if s.strip()
        ]

    @property
    def api_base(self) -> str:
        return str(self.vonage_api_host).rstrip("/")

    @property
    def public_base(self) -> str:
        return str(self.public_base_url).rstrip("/")

    def require(self, *names: str, role: str = "this command") -> None:
        """Fail with one line naming every missing setting a role needs.

        Called at start-up, before a role listens or joins a group, so a role that cannot do
        its work never reports ready (the dispatcher without a private key used to start, say
        ready, and leave every create ``unknown``).
        """
        missing = [n.upper() for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise ConfigError(f"{', '.join(missing)}: required by {role} but not set")


def known_variables() -> frozenset[str]:
    """Every environment variable name the product reads, derived from the settings fields.

    Derived (not listed) so a field added later is known at once; aliases count too.
    """
    names = set(OTHER_VARIABLES)
    for name, info in Settings.model_fields.items():
        names.add(name.upper())
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(c).upper() for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
    return frozenset(names)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per unknown ``VONAGE_*``/``KAFKA_*``/``ORCHESTRATOR_*`` variable (names only).

    A typo such as ``KAFKA_BOOTSTRAP_SERVER`` is otherwise ignored silently and the default
    (localhost) is used; the warning names the closest known variable. Values are never shown.
    """
    env = os.environ if environ is None else environ
    known = known_variables()
    out = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(CHECKED_PREFIXES) or upper in known:
            continue
        hint = did_you_mean(upper, known)
        out.append(f"{name} is not a known setting and is ignored{hint}")
    return out


def _warn(lines: Iterable[str]) -> None:
    # Logging is configured from the settings, so it is not set up yet: stderr, one line each.
    for line in lines:
        print(f"config warning: {line}", file=sys.stderr)


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    if not first["loc"]:  # a check across settings: its message starts with the setting's name
        return str(first["msg"]).removeprefix("Value error, ")
    loc = ".".join(str(p) for p in first["loc"])
    return f"{loc.upper()}: {first['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raise :class:`ConfigError` with one line naming the bad setting."""
    _warn(unknown_variables())
    path = os.environ.get(CONFIG_FILE_ENV)
    if path and not Path(path).is_file():
        raise ConfigError(f"{CONFIG_FILE_ENV}: file not found: {path}")
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
