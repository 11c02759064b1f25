"""The agent side of a bridged call: what a destination matching a profile ``agents`` entry does.

An agent is not a callee, so the callee's outcome weights would model it wrongly: it never is a
voicemail and never rejects at random, it answers within seconds, and its call lasts as long as it
takes to handle the person it is bridged to. Every draw comes from the leg's own seeded RNG
(seed, destination, n-th dial of it; :meth:`SimEngine.call_rng`), and the outcome is that RNG's
first draw exactly as a callee's is, so a campaign replays the same under any interleaving and a
destination moved between ``outcomes`` and ``agents`` keeps its later draws aligned.
"""

from __future__ import annotations

import random

from orchestrator.sandbox.simulator.profile import Agent

__all__ = ["answer_delay", "draw_outcome", "handle_time"]


def draw_outcome(rng: random.Random, agent: Agent) -> str:
    """``human`` (answers) unless one draw lands in busy, unreachable (``failed``), unanswered."""
    u = rng.random()
    edge = 0.0
    for outcome, probability in (
        ("busy", agent.busy),
        ("failed", agent.unreachable),
        ("unanswered", agent.unanswered),
    ):
        edge += probability
        if u < edge:
            return outcome
    return "human"


def answer_delay(rng: random.Random, agent: Agent) -> float:
    return rng.uniform(*agent.answer)


def handle_time(rng: random.Random, agent: Agent) -> float:
    """Uniform over ``handle``; exponential when ``handle_mean`` is set (a few long calls)."""
    if agent.handle_mean is not None:
        return rng.expovariate(1.0 / agent.handle_mean)
    return rng.uniform(*agent.handle)
