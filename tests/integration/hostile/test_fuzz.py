"""A bounded, seeded fuzz of the control API and the webhooks over real HTTP: no 5xx, ever.

Valid requests of every shape (commands, campaign specs as JSON, YAML and multipart with a
contacts file, campaign operations, signed webhooks) are mutated (bytes flipped, cut, repeated;
YAML aliases and anchors, deep nesting, numbers past 2**64, NULs and lone surrogates spliced in;
content types swapped; path segments garbled) and sent to the ingress process while its RSS and
``/healthz`` are watched. Webhooks are signed after mutation, so they reach the parser. The
count is fixed (``HOSTILE_FUZZ_N`` per family) to keep the run within its time budget.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest
import yaml

from orchestrator.ingress.signature import sign_for_tests
from tests.integration.hostile.conftest import Target
from tests.integration.hostile.procs import watched

pytestmark = [pytest.mark.integration]

N = int(os.environ.get("HOSTILE_FUZZ_N", "1200"))
SEED = int(os.environ.get("HOSTILE_FUZZ_SEED", "18"))

SPEC = {
    "name": "fuzz",
    "contacts": {"topic": "no-such-topic"},
    "from": {"numbers": ["442079460000"]},
    "flow": {"ncco": [{"action": "talk", "text": "Hello {{name}}"}]},
    "pacing": {"max_concurrent": 3},
    "calling_hours": None,
    "retry": {"busy": {"delay": "5m", "max_attempts": 2}},
}
COMMANDS = [
    {"kind": "hangup", "call_uuid": "u-1", "body": {"action": "hangup"}},
    {"kind": "create_call", "body": {"to": [{"type": "phone", "number": "447700900001"}],
                                     "ncco": [{"action": "talk", "text": "hi"}]}},
    {"kind": "transfer", "call_uuid": "u-2", "body": {"action": "transfer",
                                                      "destination": {"type": "ncco", "ncco": []}}},
]  # fmt: skip
WEBHOOK = {
    "from": "447700900000",
    "to": "447700900001",
    "uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "conversation_uuid": "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "status": "answered",
    "direction": "outbound",
    "timestamp": "2020-01-01T12:00:00.000Z",
    "dtmf": {"digits": "1", "timed_out": False},
}
KINDS = ["answer", "event", "input", "notify", "fallback", "recording", "nope"]
SPLICES = [
    b"*a", b"&a [1]", b"<<: *a", b"[" * 80, b"{" * 40, b"18446744073709551616", b"1e400",
    b"-0", b"\x00", b"\xed\xa0\x80", b"\xff\xfe", b'"\\ud800"', b"=HYPERLINK(1)", b"\r\n\r\n",
    b"!!python/object/apply:os.system ['true']", b"null", b"---\n", b"%", b"'", b'"', b",",
    b"a" * 5000,
]  # fmt: skip
CTYPES = ["application/json", "application/yaml", "text/plain", "", "multipart/form-data"]


def mutate(rnd: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rnd.randint(0, 4)):
        op = rnd.random()
        pos = rnd.randint(0, len(out)) if out else 0
        if op < 0.3 and out:
            out[min(pos, len(out) - 1)] = rnd.randrange(256)
        elif op < 0.5:
            out[pos:pos] = rnd.choice(SPLICES)
        elif op < 0.65:
            del out[pos : pos + rnd.randint(1, 40)]
        elif op < 0.75 and out:
            a = rnd.randrange(len(out))
            out[pos:pos] = out[a : a + rnd.randint(1, 200)]
        elif op < 0.85:
            out = out[: rnd.randint(0, len(out))]
    return bytes(out)


def garble(rnd: random.Random, segment: str) -> str:
    return rnd.choice(
        [segment, segment * 40, "..%2F..%2Fetc%2Fpasswd", "%00", "x" * 300, "é", "a.b~c", ""]
    )


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str]
    content: bytes | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None


def control_request(rnd: random.Random, target: Target, i: int) -> Req:
    auth = dict(target.auth) if rnd.random() < 0.95 else {"Authorization": "Bearer nope"}
    pick = rnd.random()
    if pick < 0.3:
        body = mutate(rnd, orjson.dumps(rnd.choice(COMMANDS)))
        return Req("POST", "/v1/commands", {**auth, "Content-Type": "application/json"}, body)
    spec = {**SPEC, "name": f"fuzz-{i}"}
    if pick < 0.55:
        body = mutate(rnd, orjson.dumps(spec))
        return Req("POST", "/v1/campaigns", {**auth, "Content-Type": rnd.choice(CTYPES)}, body)
    if pick < 0.75:
        body = mutate(rnd, yaml.safe_dump(spec).encode())
        return Req("POST", "/v1/campaigns", {**auth, "Content-Type": "application/yaml"}, body)
    if pick < 0.85:
        upload = {**spec, "contacts": {"default_region": "GB"}}
        contacts = mutate(rnd, b"number,name\n+447700900123,Ann\n07700 900124,=1+2\n")
        files = [
            ("spec", ("s.json", mutate(rnd, orjson.dumps(upload)), "application/json")),
            ("contacts", (rnd.choice(["c.csv", "c.jsonl", "c.txt"]), contacts, "text/csv")),
            ("dnc", ("d.txt", mutate(rnd, b"+447700900123\nbogus\n"), "text/plain")),
        ]
        rnd.shuffle(files) if rnd.random() < 0.2 else None
        return Req("POST", "/v1/campaigns", auth, files=files)
    name = garble(rnd, f"fuzz-{i}")
    action = garble(rnd, rnd.choice(["pause", "resume", "cancel", "results", "stop"]))
    method, path = rnd.choice(
        [
            ("GET", f"/v1/campaigns/{name}"),
            ("POST", f"/v1/campaigns/{name}/{action}"),
            ("GET", f"/v1/campaigns/{name}/results?format={garble(rnd, 'csv')}"),
            ("GET", f"/v1/calls/{name}"),
        ]
    )
    return Req(method, path, auth)


def webhook_request(rnd: random.Random, target: Target, i: int) -> Req:
    kind = rnd.choice(KINDS)
    ref = garble(rnd, f"ref-{i}")
    body = mutate(rnd, orjson.dumps({**WEBHOOK, "uuid": f"u-{i}"}))
    token = sign_for_tests(target.signature_secret, body)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if rnd.random() < 0.05:
        headers["Authorization"] = "Bearer " + mutate(rnd, token.encode()).decode("latin-1")
    return Req("POST", f"/webhooks/{kind}/{ref}", headers, body)


async def run(
    target: Target, make: Callable[[random.Random, Target, int], Req], seed: int
) -> Counter[int]:
    rnd = random.Random(seed)
    requests = [make(rnd, target, i) for i in range(N)]
    codes: Counter[int] = Counter()
    bad: list[str] = []
    queue = list(reversed(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            req = queue.pop()
            try:
                r = await client.request(
                    req.method, req.path, headers=req.headers, content=req.content, files=req.files
                )
            except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
                codes[0] += 1  # the client refused to send it
                continue
            except httpx.TransportError as err:  # the server hung up without an answer
                bad.append(f"{req.method} {req.path} -> {err!r}")
                continue
            codes[r.status_code] += 1
            if r.status_code >= 500:
                bad.append(f"{req.method} {req.path} -> {r.status_code} {r.text[:200]}")

    async with httpx.AsyncClient(base_url=target.proc.base_url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(6)))
    assert not bad, bad[:5]
    return codes


@pytest.mark.timeout(180)
async def test_fuzz_control_api_and_webhooks(target: Target) -> None:
    with watched(target.proc) as m:
        control = await run(target, control_request, SEED)
        hooks = await run(target, webhook_request, SEED + 1)
    print(
        f"\nfuzz: control {sum(control.values())} {dict(control)}; "
        f"webhooks {sum(hooks.values())} {dict(hooks)}"
    )
    assert sum(control.values()) == sum(hooks.values()) == N
    assert control[202] > 0 and hooks[204] + hooks[200] > 0  # valid ones got through too
    m.check("fuzz")
