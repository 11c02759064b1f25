"""Process-wide settings for a runtime process.

The state stores hold many small, long-lived, acyclic dicts (one flow state is a few dozen), and
the hot path allocates many short-lived ones. CPython's default collector thresholds (700, 10, 10)
then run generation-1/2 collections over the whole store again and again: on the worker that was
more than half of the handler time. States are freed by reference counting, so collecting cycles
rarely loses nothing; the thresholds below cut collection work to noise.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(gen0: int = 50_000, gen1: int = 50, gen2: int = 100) -> None:
    gc.collect()
    gc.freeze()  # what exists at start-up (modules, clients) is never scanned again
    gc.set_threshold(gen0, gen1, gen2)
