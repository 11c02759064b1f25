"""``orchestrator simulate``: run the Voice API simulator (a sandbox for campaigns, a fixture for tests).

Only click and the standard library are imported at module level: the main CLI imports this module
to register the command, and ``orchestrator --help`` must stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

_PROFILE_INTRO = """\
The simulation profile (--profile FILE, YAML or JSON; every key optional).
Durations are simulated seconds (a number, or [min, max] drawn uniformly),
divided by --time-scale in real time. Keys, with their defaults:
"""

_PROFILE_OUTRO = """\
Example: examples/sim-profile.yaml. Outcomes per call are drawn from
(seed, destination number, n-th dial of it), so reruns replay exactly.
Agent destinations (agents:) are drawn the same way; the ledger's "conversations"
list who shared each named conversation, from when to when.
Control endpoints: GET /_sim/ledger (?since=SEQ&calls_since=INDEX&requests=0&calls=0&webhooks=0&conversations=0&call_ref=REF),
POST /_sim/reset, GET /_sim/health, POST /_sim/inbound {"from", "to", "app_id"} (a person
calls the application: its answer_url is fetched and its NCCO runs)."""


def _profile_help() -> str:
    # Generated from the pydantic model so the help can never drift from the code. The import is
    # deferred to when help is actually rendered (pydantic is heavy for `orchestrator --help`).
    from orchestrator.sandbox.simulator.profile import describe_profile

    lines = describe_profile()
    # "\b" keeps click from re-wrapping a paragraph; it applies up to the next blank line.
    return "\n\n".join(
        [
            "\b\n" + _PROFILE_INTRO.rstrip(),
            "\b\n" + "\n".join("  " + ln for ln in lines),
            "\b\n" + _PROFILE_OUTRO,
        ]
    )


class _SimulateCommand(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = _profile_help()
        super().format_epilog(ctx, formatter)


@click.command(
    "simulate",
    cls=_SimulateCommand,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
@click.option("--port", default=8090, show_default=True, help="Port (0 = any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--cps",
    default=3.0,
    show_default=True,
    help="New calls (create + NCCO connect) per rolling second.",
)
@click.option(
    "--rps", default=15.0, show_default=True, help="Other Voice API requests per rolling second."
)
@click.option(
    "--seed", type=int, default=None, help="RNG seed (default: the profile's, else random)."
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second (10 = ten times faster).",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Simulation profile (YAML/JSON); format below.",
)
@click.option(
    "--tls", is_flag=True, help="Serve https with a fresh local CA; prints the CA file path."
)
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS certificate (PEM).",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS private key (PEM).",
)
@click.option(
    "--signature-secret",
    envvar="VONAGE_SIGNATURE_SECRET",
    default="sim-signature-secret-for-local-testing",
    show_default=True,
    help="HS256 secret for signed webhooks [env VONAGE_SIGNATURE_SECRET; first value if comma-separated].",
)
@click.option("--unsigned", is_flag=True, help="Send webhooks unsigned.")
@click.option(
    "--api-key",
    envvar="VONAGE_API_KEY",
    default="simkey01",
    show_default=True,
    help="Account API key [env VONAGE_API_KEY].",
)
@click.option(
    "--api-secret",
    envvar="VONAGE_API_SECRET",
    default="sim-api-secret",
    show_default=True,
    help="Account API secret (Application API Basic auth) [env VONAGE_API_SECRET].",
)
@click.option(
    "--application-id",
    envvar="VONAGE_APPLICATION_ID",
    default=None,
    help="Id of the pre-created application [env VONAGE_APPLICATION_ID; default: random].",
)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key (PEM) of the pre-created application.",
)
@click.option(
    "--private-key",
    envvar="VONAGE_PRIVATE_KEY",
    default=None,
    help="Private key (PEM text or file) to derive the application's public key from [env VONAGE_PRIVATE_KEY].",
)
@click.option(
    "--key-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write a generated private key (default: a new temp file, printed).",
)
@click.option(
    "--webhook-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="CA file to verify https webhooks.",
)
def simulate(
    port: int,
    host: str,
    cps: float,
    rps: float,
    seed: int | None,
    time_scale: float,
    profile_path: Path | None,
    tls: bool,
    cert: Path | None,
    key: Path | None,
    signature_secret: str,
    unsigned: bool,
    api_key: str,
    api_secret: str,
    application_id: str | None,
    public_key: Path | None,
    private_key: str | None,
    key_out: Path | None,
    webhook_ca: str | None,
) -> None:
    """Run the Voice API simulator: a local stand-in for api.nexmo.com.

    Serves Voice API v1 (/v1/calls, /v1/files) with RS256 JWT auth, Application API v2
    (/v2/applications, Basic auth), Vonage's rate limits (429 over --cps/--rps in any rolling
    second), seeded call lifecycles with signed webhooks (HS256, payload_hash), NCCO execution,
    reordered/duplicated events and fault injection, plus a ledger of everything at /_sim/ledger.
    """
    import asyncio

    if (cert is None) != (key is None):
        raise click.UsageError("--cert and --key go together")
    if cps <= 0 or rps <= 0 or time_scale <= 0:
        raise click.UsageError("--cps, --rps and --time-scale must be > 0")
    secret = None if unsigned else (signature_secret.split(",")[0].strip() or None)
    key_file = None
    if private_key and not private_key.lstrip().startswith("-----BEGIN"):
        key_file = os.path.expanduser(private_key)
        if not os.path.isfile(key_file):
            raise click.UsageError(
                "--private-key / VONAGE_PRIVATE_KEY: neither PEM text nor a file"
            )
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "cps": cps,
        "rps": rps,
        "seed": seed,
        "time_scale": time_scale,
        "profile_path": profile_path,
        "tls": tls or cert is not None,
        "cert": cert,
        "key": key,
        "signature_secret": secret,
        "api_key": api_key,
        "api_secret": api_secret,
        "application_id": application_id,
        "public_key": public_key,
        "private_key": key_file or private_key,
        "private_key_file": key_file,
        "key_out": key_out,
        "webhook_ca": webhook_ca,
    }
    try:
        import uvloop

        uvloop.run(_serve(**kwargs))
    except ImportError:
        asyncio.run(_serve(**kwargs))
    except KeyboardInterrupt:
        pass


def _write_private_key(pem: str, key_out: Path | None, app_id: str) -> Path:
    import tempfile

    path = key_out or Path(tempfile.mkdtemp(prefix="voice-sim-")) / f"{app_id}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    return path


async def _serve(**kw: Any) -> None:
    import asyncio
    import contextlib
    import signal

    from orchestrator.logs import configure_logging
    from orchestrator.sandbox.simulator.profile import ProfileError, load_profile
    from orchestrator.sandbox.simulator.server import Simulator, SimulatorStartError

    configure_logging(None)
    try:
        profile = load_profile(kw["profile_path"])
    except ProfileError as err:
        raise click.ClickException(str(err)) from None
    sim = Simulator(
        host=kw["host"],
        port=kw["port"],
        cps=kw["cps"],
        rps=kw["rps"],
        seed=kw["seed"],
        time_scale=kw["time_scale"],
        profile=profile,
        signature_secret=kw["signature_secret"],
        api_key=kw["api_key"],
        api_secret=kw["api_secret"],
        tls=kw["tls"],
        cert=kw["cert"],
        key=kw["key"],
        application_id=kw["application_id"],
        public_key=kw["public_key"],
        private_key=kw["private_key"],
        default_application=True,
        webhook_verify=kw["webhook_ca"],
    )
    try:
        await sim.start()
    except (SimulatorStartError, OSError, ValueError) as err:
        raise click.ClickException(f"simulator did not start: {err}") from None
    app = sim.default_application
    assert app is not None
    key_line = "(your own; public key given)"
    if kw["private_key_file"]:
        key_line = kw["private_key_file"]
    elif kw["private_key"]:
        key_line = "(from VONAGE_PRIVATE_KEY)"
    elif app.private_key_pem is not None and kw["public_key"] is None:
        key_line = str(_write_private_key(app.private_key_pem, kw["key_out"], app.id))
    engine = sim.engine
    out = [
        f"Voice API simulator on {sim.base_url}",
        f"  cps {engine.cps:g}  rps {engine.rps:g}  time-scale {engine.clock.time_scale:g}  seed {engine.seed}",
        f"  application {app.id}  private key {key_line}",
        f"  webhooks {'signed (HS256)' if kw['signature_secret'] else 'UNSIGNED'}; api key {engine.api_key}",
    ]
    if sim.ca_file is not None:
        out.append(f"  CA file {sim.ca_file}")
    out += [
        f"  ledger GET {sim.base_url}/_sim/ledger   reset POST {sim.base_url}/_sim/reset",
        "Point the product at it:",
        f"  export VONAGE_API_HOST={sim.base_url}",
        f"  export VONAGE_APPLICATION_ID={app.id}",
    ]
    if key_line.startswith("/"):
        out.append(f"  export VONAGE_PRIVATE_KEY={key_line}")
    out.append(f"  export VONAGE_API_KEY={engine.api_key}")
    out.append(
        "  (VONAGE_SIGNATURE_SECRET / VONAGE_API_SECRET: the values this simulator was given)"
    )
    click.echo("\n".join(out), err=False)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
