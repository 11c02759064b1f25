"""A cap on the request line and headers, for uvicorn's httptools protocol (h11 has its own).

uvicorn with httptools sets no limit on a request's head: httptools appends each chunk of a
header value to the one before, so a 100 MB ``Authorization`` header took RSS from 115 to 423 MB
and stalled ``/healthz`` for seconds, before any authentication could refuse it. h11 has
``h11_max_incomplete_event_size``; for httptools this counts the bytes of each head as they
arrive and answers 431 (then closes) once they pass the cap, before the parser sees them.
"""

from __future__ import annotations

from typing import Any

from orchestrator.web.responses import PROBLEM_JSON, problem_bytes

__all__ = ["MAX_HEAD_BYTES", "head_capped_protocol", "uvicorn_http_options"]

#: Request line plus headers. A signed Vonage webhook needs about 2 KiB (JWT, a 2 KiB ctx path).
MAX_HEAD_BYTES = 32 * 1024
_END = b"\r\n\r\n"


def _refusal(limit: int) -> bytes:
    body = problem_bytes(431, "headers too large", f"request line and headers over {limit} bytes")
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        f"content-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def head_capped_protocol(max_head_bytes: int = MAX_HEAD_BYTES) -> type[Any] | None:
    """uvicorn's httptools protocol with the cap, or None when httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools ships with uvicorn[standard]
        return None

    class HeadCappedHttpToolsProtocol(HttpToolsProtocol):
        """Counts each request head's bytes before the parser buffers them."""

        head_limit = max_head_bytes

        def connection_made(self, transport: Any) -> None:
            self._head_open = True
            self._head_seen = 0
            self._head_tail = b""
            self._refused = False
            super().connection_made(transport)

        def on_headers_complete(self) -> None:
            self._head_open = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._head_open, self._head_seen, self._head_tail = True, 0, b""

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._head_open:
                window = self._head_tail + data
                end = window.find(_END)
                if end == -1:
                    seen = self._head_seen + len(data)
                else:
                    seen = self._head_seen + end + len(_END) - len(self._head_tail)
                if seen > self.head_limit:
                    self._refused = True
                    self.transport.write(_refusal(self.head_limit))
                    self.transport.close()
                    return
                self._head_seen = seen
                self._head_tail = window[-(len(_END) - 1) :]
            super().data_received(data)

    return HeadCappedHttpToolsProtocol


def uvicorn_http_options(max_head_bytes: int = MAX_HEAD_BYTES) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments that cap request heads, whichever parser is there."""
    protocol = head_capped_protocol(max_head_bytes)
    if protocol is not None:
        return {"http": protocol}
    return {"http": "h11", "h11_max_incomplete_event_size": max_head_bytes}
