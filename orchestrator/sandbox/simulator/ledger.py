"""The ledger: what the simulator received and did, for checks made from the outside.

Tests and benchmarks read it (``GET /_sim/ledger`` or ``Simulator.ledger()``) to prove things a
client cannot see: that no rolling second held more than ``cps`` created calls, that a contact was
dialled once, which webhooks each call produced, which legs shared a named conversation and for
how long (``conversations``; each call says whether it dialled an ``agent`` and its
``amd_result``). Request times ``t`` are real Unix seconds taken at the instant the rate limiter
decided, so window checks on them are exact.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.sandbox.simulator.calls import CallStore
    from orchestrator.sandbox.simulator.conversation_log import ConversationLog

__all__ = ["Ledger", "RequestRecord"]


class RequestRecord:
    __slots__ = (
        "app_id",
        "auth_ok",
        "call_uuid",
        "dropped",
        "fault",
        "limit",
        "method",
        "op",
        "path",
        "reason",
        "seq",
        "status",
        "t",
    )

    def __init__(self, seq: int, t: float, method: str, path: str) -> None:
        self.seq = seq
        self.t = t
        self.method = method
        self.path = path
        self.op: str | None = None
        self.auth_ok: bool | None = None
        self.status = 0
        self.app_id: str | None = None
        self.call_uuid: str | None = None
        self.dropped = False
        self.fault: str | None = None
        self.reason: str | None = None
        self.limit: str | None = None  # "cps"/"rps": the request took a slot of that limiter

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": round(self.t, 6),
            "method": self.method,
            "path": self.path,
            "op": self.op,
            "auth_ok": self.auth_ok,
            "status": self.status,
            "app_id": self.app_id,
            "call_uuid": self.call_uuid,
            "dropped": self.dropped,
            "fault": self.fault,
            "reason": self.reason,
            "limit": self.limit,
        }


class Ledger:
    def __init__(self, max_requests: int) -> None:
        self._requests: deque[RequestRecord] = deque(maxlen=max_requests)
        self._seq = 0
        self.counters: dict[str, int] = {}

    def new_request(self, t: float, method: str, path: str) -> RequestRecord:
        self._seq += 1
        rec = RequestRecord(self._seq, t, method, path)
        self._requests.append(rec)
        return rec

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def clear(self) -> None:
        self._requests.clear()
        self.counters.clear()

    @property
    def last_seq(self) -> int:
        return self._seq

    def snapshot(
        self,
        calls: CallStore,
        *,
        since: int = 0,
        include_requests: bool = True,
        include_calls: bool = True,
        include_webhooks: bool = True,
        call_ref: str | None = None,
        calls_since: int = 0,
        extra: dict[str, Any] | None = None,
        conversations: ConversationLog | None = None,
    ) -> dict[str, Any]:
        requests: list[dict[str, Any]] = []
        if include_requests:
            requests = [r.to_json() for r in self._requests if r.seq > since]
        call_list: list[dict[str, Any]] = []
        if include_calls:
            call_list = [
                c.to_ledger(webhooks=include_webhooks)
                for c in calls
                if c.index > calls_since and (call_ref is None or c.call_ref == call_ref)
            ]
        out: dict[str, Any] = dict(extra or {})
        out.update(
            {
                "last_seq": self._seq,
                "requests": requests,
                "calls": call_list,
                "evicted_calls": calls.evicted,
                "counters": dict(self.counters),
            }
        )
        if conversations is not None:
            out["conversations"] = conversations.to_json(conversations, call_ref)
        return out
