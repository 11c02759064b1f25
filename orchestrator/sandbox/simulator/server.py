"""The in-process Python API: ``async with Simulator(...) as sim`` serves the simulator over HTTP.

It runs uvicorn inside the caller's event loop (no thread, no subprocess), with a protocol
subclass that lets the app drop a connection *after* processing a request (fault injection: the
client cannot know whether its call was created). ``port=0`` picks a free port; ``sim.base_url``
reports it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from orchestrator.sandbox.simulator.applications import SimApplication
from orchestrator.sandbox.simulator.asgi import create_app
from orchestrator.sandbox.simulator.auth import public_key_from_private
from orchestrator.sandbox.simulator.engine import SimEngine
from orchestrator.sandbox.simulator.lifecycle import Legs
from orchestrator.sandbox.simulator.profile import Profile, load_profile
from orchestrator.sandbox.simulator.tls import generate_tls
from orchestrator.web.embedded import EmbeddedServer
from orchestrator.web.head import head_capped_protocol

__all__ = ["Simulator", "SimulatorStartError"]


class SimulatorStartError(RuntimeError):
    """The simulator could not start (port in use, bad certificate...)."""


def _protocol_class() -> type[Any]:
    """httptools with the product's head cap (431 past it), and dropped connections on demand."""
    capped = head_capped_protocol()
    if capped is None:  # pragma: no cover - httptools ships with uvicorn[standard]
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol

    class DropCapableProtocol(capped):  # type: ignore[misc, valid-type]
        """Puts a ``sim.drop`` callable in each request's scope: abort the TCP connection."""

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is None or cycle.scope is not self.scope:
                return
            transport = self.transport

            def drop() -> None:
                cycle.disconnected = True  # uvicorn must not write a 500 after we return
                transport.abort()

            self.scope["sim.drop"] = drop

    return DropCapableProtocol


def _read_pem(value: str | bytes | Path | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, Path):
        return value.read_text()
    if value.lstrip().startswith("-----BEGIN"):
        return value
    return Path(value).expanduser().read_text()


class Simulator:
    """A running Voice API simulator.

    Args:
        host, port: where to listen (``port=0``: any free port, see :attr:`port`).
        cps: new calls (POST /v1/calls and NCCO connect) per rolling second.
        rps: other Voice API requests per rolling second.
        seed: RNG seed (overrides the profile's); ``None`` = profile's seed, else random.
        time_scale: simulated seconds per real second (10 = ten times faster).
        profile: a :class:`Profile`, a dict, or a YAML/JSON path (see ``orchestrator simulate --help``).
        signature_secret: HS256 secret for signed webhooks (``None``: webhooks unsigned).
        api_key, api_secret: Basic credentials of the Application API; ``api_key`` is also the
            ``api_key`` claim of signed webhooks.
        tls: serve https with a fresh local CA (``ca_file``), or with ``cert``/``key`` files.
        application_id, public_key, private_key: a default application created at start
            (public key PEM/path, or derived from the private key; a pair is generated if neither).
        default_application: create a default application even without ``application_id``.
        webhook_verify: TLS verification of the product's webhook endpoints (bool or CA path).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cps: float = 3.0,
        rps: float = 15.0,
        seed: int | None = None,
        time_scale: float = 1.0,
        profile: Profile | dict[str, Any] | str | Path | None = None,
        signature_secret: str | None = "sim-signature-secret-for-local-testing",
        api_key: str = "simkey01",
        api_secret: str = "sim-api-secret",
        tls: bool = False,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        tls_dir: str | Path | None = None,
        application_id: str | None = None,
        public_key: str | bytes | Path | None = None,
        private_key: str | bytes | Path | None = None,
        default_application: bool = False,
        webhook_verify: bool | str | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.tls = tls or cert is not None
        self._cert = Path(cert) if cert else None
        self._key = Path(key) if key else None
        self._tls_dir = Path(tls_dir) if tls_dir else None
        self.ca_file: Path | None = None
        self.engine = SimEngine(
            profile=load_profile(profile),
            cps=cps,
            rps=rps,
            seed=seed,
            time_scale=time_scale,
            api_key=api_key,
            api_secret=api_secret,
            signature_secret=signature_secret,
            webhook_verify=webhook_verify,
        )
        self.legs = Legs(self.engine)
        self._default_spec = (application_id, public_key, private_key, default_application)
        self.default_application: SimApplication | None = None
        self._http: EmbeddedServer | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.port = port

    # --- lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._make_default_application()
        ssl_cert = ssl_key = None
        if self.tls:
            if self._cert is not None:
                if self._key is None:
                    raise SimulatorStartError("--cert needs --key")
                ssl_cert, ssl_key = self._cert, self._key
                self.ca_file = self._cert
            else:
                directory = self._tls_dir
                if directory is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="voice-sim-tls-")
                    directory = Path(self._tmp.name)
                files = generate_tls(directory, (self.host,))
                ssl_cert, ssl_key, self.ca_file = files.cert_file, files.key_file, files.ca_file
        http = EmbeddedServer(
            create_app(self.engine, self.legs),
            host=self.host,
            port=self._port,
            http=_protocol_class(),
            ssl_certfile=str(ssl_cert) if ssl_cert else None,
            ssl_keyfile=str(ssl_key) if ssl_key else None,
            timeout_keep_alive=75,
            backlog=4096,
            server_header=False,
        )
        await self.engine.poster.start()
        try:
            self.port = await http.start()
        except OSError as err:
            self.legs.cancel_all()
            await self.engine.close()
            raise SimulatorStartError(str(err)) from None
        self._http = http
        self.engine.base_url = self.base_url

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.stop()
            self._http = None
        self.legs.cancel_all()
        await self.engine.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def serve_forever(self) -> None:
        """Run until cancelled (the CLI uses this)."""
        if self._http is None:
            await self.start()
        assert self._http is not None
        await self._http.wait()

    # --- public API -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}"

    def ledger(
        self,
        *,
        since: int = 0,
        requests: bool = True,
        calls: bool = True,
        webhooks: bool = True,
        call_ref: str | None = None,
        calls_since: int = 0,
        conversations: bool = True,
    ) -> dict[str, Any]:
        """The same JSON document as ``GET /_sim/ledger``.

        ``since``: only requests with ``seq`` above it; ``calls_since``: only calls with ``index``
        above it (both for incremental polling); ``call_ref``: only that flow's legs (and the
        named conversations they were in).
        """
        return self.engine.snapshot(
            live_calls=self.legs.live,
            since=since,
            calls_since=calls_since,
            include_requests=requests,
            include_calls=calls,
            include_webhooks=webhooks,
            call_ref=call_ref,
            include_conversations=conversations,
        )

    def create_application(
        self,
        name: str = "sim-app",
        *,
        event_url: str | None = None,
        answer_url: str | None = None,
        fallback_answer_url: str | None = None,
        public_key: str | None = None,
        signed_callbacks: bool = True,
        app_id: str | None = None,
    ) -> SimApplication:
        """Register an application; without ``public_key`` a pair is generated and
        ``app.private_key_pem`` is set, so tests can mint JWTs (``app.jwt()``)."""
        hooks: dict[str, Any] = {}
        for hook, url, method in (
            ("event_url", event_url, "POST"),
            ("answer_url", answer_url, "GET"),
            ("fallback_answer_url", fallback_answer_url, "GET"),
        ):
            if url:
                hooks[hook] = {"address": url, "http_method": method}
        caps = {"voice": {"webhooks": hooks, "signed_callbacks": signed_callbacks}}
        return self.engine.apps.create(
            name, public_key_pem=public_key, capabilities=caps, app_id=app_id
        )

    def inbound(self, caller: str, number: str, app_id: str | None = None) -> str:
        """Simulate a person calling ``number`` (an application's answer_url runs); the leg uuid."""
        return self.legs.start_inbound(caller, number, app_id).uuid

    def reset(self) -> None:
        """Forget calls, requests, limit windows, conversations and recordings (apps stay)."""
        self.legs.cancel_all()
        self.engine.reset()

    async def wait_idle(self) -> None:
        """Wait until every call lifecycle has finished (bound it with ``asyncio.timeout``)."""
        await self.legs.wait_idle()

    # --- internals --------------------------------------------------------------------------------
    def _make_default_application(self) -> None:
        app_id, public_key, private_key, wanted = self._default_spec
        if not (app_id or public_key or private_key or wanted):
            return
        priv = _read_pem(private_key)
        pub = _read_pem(public_key)
        if pub is None and priv is not None:
            pub = public_key_from_private(priv)
        app = self.engine.apps.create(
            "default",
            public_key_pem=pub,
            capabilities={"voice": {"webhooks": {}, "signed_callbacks": True}},
            app_id=app_id,
            private_key_pem=priv,
        )
        self.default_application = app
