"""How much of the account's CPS a campaign used, from the simulator's ledger of created calls.

CPS is what the account pays for, so the figure that matters is the share of it used while there
was something to dial. The ledger's times are taken where the simulator's limiter decided, so
they are the server's view (what Vonage would count), not the client's. The demo's summary and
the campaign bench both read it from here, so the two report the same thing.

Only the stretch when contacts were waiting counts: before the first create nothing had been
asked, and after the last first attempt what remains is call duration and retry delays, which
no pacing can fill.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.call_refs import parse_campaign_call_ref

__all__ = ["CpsUse", "cps_use", "first_attempt_span", "max_in_window"]


@dataclass(frozen=True, slots=True)
class CpsUse:
    """``mean``: creates per second over the span as a share of the limit; ``worst_window``:
    the lowest share in any whole 10-second window of the span; ``max_1s``: most creates in any
    rolling second (must not exceed the limit); ``windows``: each whole window's share, in order,
    so a low one can be placed (warm-up, a take-over, the tail)."""

    creates: int
    span_s: float
    mean: float
    worst_window: float
    max_1s: int
    limit: float
    windows: tuple[float, ...] = ()


def max_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """Most events in any half-open window ``(t - window, t]``: the server's rolling second."""
    ts = sorted(times)
    best = j = 0
    for i, t in enumerate(ts):
        while ts[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def cps_use(
    times: Sequence[float], limit: float, *, start: float, end: float, window: float = 10.0
) -> CpsUse:
    """The share of ``limit`` used by the creates at ``times`` between ``start`` and ``end``.

    The mean counts intervals, not events (``n`` creates paced perfectly span ``(n - 1) / limit``
    seconds), so a perfect run reads 100 %, never more. Windows are whole ``window``-second
    slices from ``start``; a span shorter than one window is one window of its own length.
    """
    inside = sorted(t for t in times if start <= t <= end)
    span = max(end - start, 1e-9)
    mean = max(0, len(inside) - 1) / (limit * span) if inside else 0.0
    worst = mean
    slices = int(span // window)
    shares: list[float] = []
    j = 0
    for k in range(slices):
        lo, hi = start + k * window, start + (k + 1) * window
        while j < len(inside) and inside[j] < lo:
            j += 1
        n = 0
        while j + n < len(inside) and inside[j + n] < hi:
            n += 1
        shares.append(n / (limit * window))
        worst = min(worst, shares[-1]) if k else shares[-1]
    return CpsUse(len(inside), span, mean, worst, max_in_window(inside), limit, tuple(shares))


def first_attempt_span(
    ledger: Mapping[str, Any], campaign: str
) -> tuple[list[float], float, float]:
    """Create times of ``campaign``'s calls, and the span from the first create to the last first
    attempt: while a fresh contact was still waiting to be dialled."""
    ref_of = {
        c.get("uuid"): c.get("call_ref")
        for c in ledger.get("calls", [])
        if (c.get("call_ref") or "").startswith(f"{campaign}.")
    }
    times: list[float] = []
    firsts: list[float] = []
    for r in ledger.get("requests", []):
        if r.get("op") != "create_call" or r.get("status") != 201:
            continue
        ref = ref_of.get(r.get("call_uuid"))
        if ref is None:
            continue
        times.append(float(r["t"]))
        parsed = parse_campaign_call_ref(ref)
        if parsed is not None and parsed.attempt == 1:
            firsts.append(float(r["t"]))
    if not firsts:
        return times, 0.0, 0.0
    return times, min(times), max(firsts)
