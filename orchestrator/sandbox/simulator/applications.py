"""Vonage applications: the identities that Voice API calls authenticate as (Application API v2).

Each application holds a public key (the simulator generates a pair when none is given, as Vonage
does) and optional voice webhooks: ``event_url`` is used by calls that give none, and
``fallback_answer_url`` when an answer URL fails (DIGEST §4.4).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sandbox.simulator.auth import (
    generate_key_pair,
    load_public_key,
    mint_application_jwt,
)

__all__ = ["ApplicationStore", "SimApplication", "validate_application_body"]

_TIMEOUTS = {
    # webhook -> (connect range, socket range) in ms (APP21/APP241).
    "answer_url": ((300, 1000), (1000, 5000)),
    "fallback_answer_url": ((300, 1000), (1000, 5000)),
    "event_url": ((300, 1000), (1000, 10000)),
}


@dataclass(slots=True)
class SimApplication:
    id: str
    name: str
    public_key_pem: str
    private_key_pem: str | None = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] = field(default_factory=lambda: {"improve_ai": False})
    public_key: Any = None

    def jwt(self, ttl: int = 900, **claims: Any) -> str:
        """A Voice API token for this application (needs the private key, i.e. a generated pair)."""
        if self.private_key_pem is None:
            raise ValueError("this application's private key is not known to the simulator")
        return mint_application_jwt(self.id, self.private_key_pem, ttl=ttl, **claims)

    # --- voice settings used by calls ---------------------------------------------------------
    def _webhook(self, name: str) -> dict[str, Any] | None:
        voice = self.capabilities.get("voice")
        if not isinstance(voice, dict):
            return None
        hooks = voice.get("webhooks")
        if not isinstance(hooks, dict):
            return None
        hook = hooks.get(name)
        return hook if isinstance(hook, dict) and hook.get("address") else None

    def webhook_address(self, name: str) -> tuple[str, str] | None:
        hook = self._webhook(name)
        if hook is None:
            return None
        default = "POST" if name == "event_url" else "GET"
        return str(hook["address"]), str(hook.get("http_method") or default)

    def webhook_timeouts(self, name: str) -> tuple[float | None, float | None]:
        """(connect, socket) timeouts in seconds configured for this webhook, if any."""
        hook = self._webhook(name) or {}
        conn = hook.get("connect_timeout", hook.get("connection_timeout"))
        sock = hook.get("socket_timeout")
        return (
            conn / 1000.0 if isinstance(conn, int | float) else None,
            sock / 1000.0 if isinstance(sock, int | float) else None,
        )

    @property
    def signed_callbacks(self) -> bool:
        voice = self.capabilities.get("voice")
        if isinstance(voice, dict) and isinstance(voice.get("signed_callbacks"), bool):
            return bool(voice["signed_callbacks"])
        return True

    def to_json(self, *, include_private: bool = False) -> dict[str, Any]:
        keys: dict[str, Any] = {"public_key": self.public_key_pem}
        if include_private and self.private_key_pem is not None:
            keys["private_key"] = self.private_key_pem
        return {
            "id": self.id,
            "name": self.name,
            "keys": keys,
            "privacy": dict(self.privacy),
            "capabilities": self.capabilities,
            "_links": {"self": {"href": f"/v2/applications/{self.id}"}},
        }


def _check_webhook(path: str, hook: Any, name: str, invalid: list[tuple[str, str]]) -> None:
    if not isinstance(hook, dict):
        invalid.append((path, "must be an object"))
        return
    addr = hook.get("address")
    if not isinstance(addr, str) or "://" not in addr:
        invalid.append((f"{path}.address", "must be an absolute URL"))
    method = hook.get("http_method")
    if method is not None and method not in ("GET", "POST"):
        invalid.append((f"{path}.http_method", "must be one of: GET, POST"))
    ranges = _TIMEOUTS.get(name)
    if ranges is None:
        return
    for key, (lo, hi) in (
        ("connect_timeout", ranges[0]),
        ("connection_timeout", ranges[0]),
        ("socket_timeout", ranges[1]),
    ):
        if key not in hook:
            continue
        v = hook[key]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            invalid.append((f"{path}.{key}", f"must be an integer between {lo} and {hi}"))


def validate_application_body(body: Any) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Problems (name, reason) with a create/update body, and the normalised fields."""
    invalid: list[tuple[str, str]] = []
    if not isinstance(body, dict):
        return [("body", "must be a JSON object")], {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        invalid.append(("name", "is required"))
    keys = body.get("keys")
    public_key = None
    if keys is not None:
        if not isinstance(keys, dict):
            invalid.append(("keys", "must be an object"))
        elif keys.get("public_key") is not None:
            public_key = keys.get("public_key")
            if not isinstance(public_key, str):
                invalid.append(("keys.public_key", "must be a PEM string"))
            else:
                try:
                    load_public_key(public_key)
                except ValueError as err:
                    invalid.append(("keys.public_key", str(err)))
    caps = body.get("capabilities", {})
    if not isinstance(caps, dict):
        invalid.append(("capabilities", "must be an object"))
        caps = {}
    voice = caps.get("voice")
    if voice is not None:
        if not isinstance(voice, dict):
            invalid.append(("capabilities.voice", "must be an object"))
        else:
            hooks = voice.get("webhooks", {})
            if not isinstance(hooks, dict):
                invalid.append(("capabilities.voice.webhooks", "must be an object"))
            else:
                for hname, hook in hooks.items():
                    _check_webhook(f"capabilities.voice.webhooks.{hname}", hook, hname, invalid)
            sc = voice.get("signed_callbacks")
            if sc is not None and not isinstance(sc, bool):
                invalid.append(("capabilities.voice.signed_callbacks", "must be a boolean"))
            for key, lo, hi in (("conversations_ttl", 1, 9000), ("leg_persistence_time", 1, 31)):
                v = voice.get(key)
                if v is not None and (
                    isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi
                ):
                    invalid.append((f"capabilities.voice.{key}", f"must be between {lo} and {hi}"))
    vbc = caps.get("vbc")
    if vbc is not None and vbc != {}:
        invalid.append(("capabilities.vbc", "must be an empty object"))
    privacy = body.get("privacy", {"improve_ai": False})
    if not isinstance(privacy, dict):
        invalid.append(("privacy", "must be an object"))
        privacy = {}
    elif "improve_ai" in privacy and not isinstance(privacy["improve_ai"], bool):
        invalid.append(("privacy.improve_ai", "must be a boolean"))
    fields = {
        "name": name,
        "public_key": public_key,
        "capabilities": caps,
        "privacy": {"improve_ai": bool(privacy.get("improve_ai", False))},
    }
    return invalid, fields


class ApplicationStore:
    def __init__(self) -> None:
        self._apps: dict[str, SimApplication] = {}

    def __len__(self) -> int:
        return len(self._apps)

    def get(self, app_id: str) -> SimApplication | None:
        return self._apps.get(app_id)

    def public_key_of(self, app_id: str) -> Any | None:
        app = self._apps.get(app_id)
        return app.public_key if app is not None else None

    def all(self) -> list[SimApplication]:
        return list(self._apps.values())

    def create(
        self,
        name: str,
        *,
        public_key_pem: str | None = None,
        capabilities: dict[str, Any] | None = None,
        privacy: dict[str, Any] | None = None,
        app_id: str | None = None,
        private_key_pem: str | None = None,
    ) -> SimApplication:
        """Add an application; generates a key pair when no public key is given."""
        if public_key_pem is None:
            pair = generate_key_pair()
            public_key_pem, private_key_pem = pair.public_pem, pair.private_pem
        app = SimApplication(
            id=app_id or str(uuid.uuid4()),
            name=name,
            public_key_pem=public_key_pem,
            private_key_pem=private_key_pem,
            capabilities=capabilities or {},
            privacy=privacy or {"improve_ai": False},
            public_key=load_public_key(public_key_pem),
        )
        self._apps[app.id] = app
        return app

    def update(self, app: SimApplication, fields: dict[str, Any]) -> SimApplication:
        app.name = fields["name"]
        if fields.get("public_key"):
            app.public_key_pem = fields["public_key"]
            app.public_key = load_public_key(app.public_key_pem)
            app.private_key_pem = None
        app.capabilities = fields.get("capabilities") or {}
        app.privacy = fields.get("privacy") or app.privacy
        return app

    def delete(self, app_id: str) -> bool:
        return self._apps.pop(app_id, None) is not None

    def page(self, page: int, page_size: int) -> tuple[list[SimApplication], int]:
        apps = list(self._apps.values())
        start = (page - 1) * page_size
        return apps[start : start + page_size], len(apps)
