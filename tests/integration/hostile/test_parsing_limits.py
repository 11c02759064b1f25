"""Bounded parsing: alias bombs, deep nesting, huge headers and huge bodies get a quick 4xx.

Reproductions from issue 18, each against the ingress process while its RSS and ``/healthz``
are watched: a 654-byte YAML alias bomb (28 s stall, 2.48 GB), YAML nested 500 deep (500
RecursionError), a 100 MB Authorization header without login (RSS 115 -> 423 MB, /healthz 4.7 s)
and a 500 MB body that was read whole before the size check (1.09 GB).
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from tests.integration.hostile.conftest import Target
from tests.integration.hostile.procs import flood, watched

pytestmark = [pytest.mark.integration]

MB = 1024 * 1024
YAML = {"Content-Type": "application/yaml"}


def alias_bomb() -> bytes:
    """Billion laughs, nine levels of nine, inside an NCCO action (which the spec keeps as-is)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    spec = (
        "name: bomb\ncontacts: {topic: t}\nfrom: {numbers: ['442079460000']}\n"
        "flow: {ncco: [{action: talk, text: hi, x: *i}]}\n"
    )
    return ("\n".join(lines) + "\n" + spec).encode()


def nested_yaml(depth: int) -> bytes:
    return b"name: deep\nflow: " + b"[" * depth + b"]" * depth + b"\n"


async def test_yaml_alias_bomb_and_deep_nesting(target: Target) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 700  # the was 654 bytes
    async with httpx.AsyncClient(base_url=target.proc.base_url, timeout=30) as client:
        with watched(target.proc) as m:
            r = await client.post("/v1/campaigns", content=bomb, headers={**target.auth, **YAML})
            assert r.status_code == 400, r.text
            assert "aliases" in r.json()["reason"]
            r = await client.post(
                "/v1/campaigns", content=nested_yaml(500), headers={**target.auth, **YAML}
            )
            assert r.status_code == 400 and "nested deeper" in r.text, r.text
            deep_json = b'{"name": "deep", "flow": ' + b"[" * 500 + b"]" * 500 + b"}"
            r = await client.post("/v1/campaigns", content=deep_json, headers=target.auth)
            assert r.status_code == 400 and "nested deeper" in r.text, r.text
            # 300 levels: below orjson's own parse limit (1,024), above what it can write (254).
            deep_cmd = b'{"kind":"hangup","call_uuid":"u","body":{"x":' + b"[" * 300
            deep_cmd += b"]" * 300 + b"}}"
            r = await client.post("/v1/commands", content=deep_cmd, headers=target.auth)
            assert r.status_code == 400 and "nested deeper" in r.text, r.text
        m.check("yaml bomb / nesting")


async def test_a_100_mb_header_gets_431_without_login(target: Target) -> None:
    head = b"POST /v1/campaigns HTTP/1.1\r\nHost: ingress\r\nAuthorization: Bearer "
    with watched(target.proc) as m:
        answer = await asyncio.to_thread(flood, target.proc.port, head, b"A" * 65536, 100 * MB)
    assert answer.status == 431, answer
    assert answer.sent < 8 * MB, answer.sent  # refused early, not read to the end
    assert b"headers too large" in answer.body
    m.check("100 MB header")


@pytest.mark.parametrize(
    ("path", "with_token"),
    [("/v1/campaigns", True), ("/v1/commands", True), ("/webhooks/event/x", False)],
)
async def test_a_500_mb_body_is_refused_while_it_streams(
    target: Target, path: str, with_token: bool
) -> None:
    auth = f"Authorization: Bearer {target.token}\r\n".encode() if with_token else b""
    declared = (
        f"POST {path} HTTP/1.1\r\nHost: ingress\r\nContent-Type: application/json\r\n".encode()
        + auth
        + f"Content-Length: {500 * MB}\r\n\r\n".encode()
    )
    chunked = (
        f"POST {path} HTTP/1.1\r\nHost: ingress\r\nContent-Type: application/json\r\n".encode()
        + auth
        + b"Transfer-Encoding: chunked\r\n\r\n"
    )
    framed = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    with watched(target.proc) as m:
        declared_answer = await asyncio.to_thread(
            flood, target.proc.port, declared, b"a" * 65536, 500 * MB
        )
        chunked_answer = await asyncio.to_thread(flood, target.proc.port, chunked, framed, 500 * MB)
    for answer in (declared_answer, chunked_answer):
        assert answer.status == 413, answer
        assert answer.sent < 16 * MB, answer.sent
        reason = orjson.loads(answer.body)["reason"]
        assert reason.startswith("body over "), reason
    m.check(f"500 MB body {path}")


async def test_an_upload_over_the_limit_is_refused(target: Target) -> None:
    head = (
        b"POST /v1/campaigns HTTP/1.1\r\nHost: ingress\r\n"
        + f"Authorization: Bearer {target.token}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        + f"Content-Length: {500 * MB}\r\n\r\n".encode()
    )
    with watched(target.proc) as m:
        answer = await asyncio.to_thread(flood, target.proc.port, head, b"a" * 65536, 500 * MB)
    assert answer.status == 413, answer
    assert answer.sent < 16 * MB  # what the socket buffers took; the server read none of it
    m.check("500 MB upload")
