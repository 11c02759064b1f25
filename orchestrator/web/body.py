"""Request bodies read with a limit that holds while they stream.

``await request.body()`` reads everything before anyone can look at the size: a 500 MB body
cost 1 GB of RSS before the 256 KiB check refused it. Here a declared ``Content-Length`` over the
limit is refused before a byte is read, and an undeclared (chunked) body as soon as it passes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

__all__ = ["BodyTooLarge", "declared_too_large", "read_limited", "request_body"]


class BodyTooLarge(Exception):
    """The body is (or says it is) longer than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


def declared_too_large(content_length: str | None, limit: int) -> bool:
    return content_length is not None and content_length.isdigit() and int(content_length) > limit


async def read_limited(
    chunks: AsyncIterator[bytes], limit: int, content_length: str | None = None
) -> bytes:
    """The whole body, or :class:`BodyTooLarge` once it is known to exceed ``limit``."""
    if declared_too_large(content_length, limit):
        raise BodyTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


async def request_body(request: Request, limit: int) -> bytes:
    """A Starlette request's body within ``limit`` bytes."""
    return await read_limited(request.stream(), limit, request.headers.get("content-length"))
