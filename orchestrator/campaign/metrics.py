"""Per-campaign Prometheus metrics of the controller (label ``campaign``), for dashboards and alerts.

The numbers are the campaign's own progress (:class:`~contracts.campaign.CampaignProgress`, the
same the status command shows), copied into gauges at most once a second per campaign: reading
progress walks the contacts waiting for a retry, which is too much for every outcome. Gauges
rather than counters because the state moves between controller replicas with its partition: the
new owner restores the counts and carries on, where a counter would start again from zero.
Finished results are also counted (``orchestrator_campaign_results_total``) for rates.

Series of a campaign that this replica stopped updating (its partition moved away) are removed
after :data:`STALE_S`, and those of a finished campaign after :data:`FINISHED_KEEP_S`, so neither
a rebalance nor years of campaigns leave series behind.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from contracts.campaign import CampaignProgress, CampaignStatus

__all__ = ["FINISHED_KEEP_S", "STALE_S", "CampaignMetrics"]

#: A running campaign is observed at least every tick (< 2 s); silence this long means it moved.
STALE_S = 120.0
#: How long a finished campaign's final numbers stay on the dashboards.
FINISHED_KEEP_S = 3600.0
#: Least time between two copies of one campaign's progress into the gauges.
INTERVAL_S = 1.0

_STAGES = ("total", "read", "finished", "retry_waiting", "hours_waiting")
_AGENT_STATES = ("free", "busy", "logged_in")
_FINAL = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED}


@dataclass(slots=True)
class _Seen:
    updated: float  # real time of the last copy
    progressed: float  # real time the campaign last dialed or finished a contact
    dialed: int
    finished: int
    dispositions: frozenset[str]
    status: str
    final: bool
    agents: bool = False


class CampaignMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        p = "orchestrator_campaign_"
        r = registry
        self.contacts = Gauge(
            p + "contacts",
            "Contacts by stage: total (when the list size is known), read, finished, "
            "retry_waiting, hours_waiting (outside calling hours).",
            ["campaign", "stage"],
            registry=r,
        )
        self.in_flight = Gauge(
            p + "calls_in_flight", "Calls placed and not finished.", ["campaign"], registry=r
        )
        self.max_concurrent = Gauge(
            p + "max_concurrent", "The campaign's cap on calls in flight.", ["campaign"], registry=r
        )
        self.dialed = Gauge(
            p + "dialed", "Dial attempts so far, retries included.", ["campaign"], registry=r
        )
        self.dial_rate = Gauge(
            p + "dials_per_second",
            "Dial attempts per second, recent average (the campaign's CPS used).",
            ["campaign"],
            registry=r,
        )
        self.cps_limit = Gauge(
            p + "cps_limit",
            "The campaign's share of the account's CPS (VONAGE_CPS x pacing.cps_share).",
            ["campaign"],
            registry=r,
        )
        self.dispositions = Gauge(
            p + "dispositions",
            "Finished contacts by final disposition.",
            ["campaign", "disposition"],
            registry=r,
        )
        self.eta = Gauge(
            p + "eta_seconds",
            "Seconds to finish at the current dial rate (absent when unknown).",
            ["campaign"],
            registry=r,
        )
        self.status = Gauge(
            p + "status",
            "1 for the campaign's current status (scheduled, running, paused, ...).",
            ["campaign", "status"],
            registry=r,
        )
        self.last_progress = Gauge(
            p + "last_progress_timestamp_seconds",
            "When the campaign last dialed or finished a contact (epoch seconds).",
            ["campaign"],
            registry=r,
        )
        # Agent campaigns (progressive, predictive): what `campaign status` shows of the agents.
        self.agents = Gauge(
            p + "agents",
            "The campaign's agents: free, busy (reserved, talking, wrap-up), logged_in.",
            ["campaign", "state"],
            registry=r,
        )
        self.callers_waiting = Gauge(
            p + "callers_waiting",
            "Live answers waiting for an agent now.",
            ["campaign"],
            registry=r,
        )
        self.live_answers = Gauge(
            p + "live_answers", "Human answers so far.", ["campaign"], registry=r
        )
        self.agent_connected = Gauge(
            p + "agent_connected", "Live answers bridged to an agent.", ["campaign"], registry=r
        )
        self.abandoned = Gauge(
            p + "abandoned",
            "Live answers that found no agent within connect_within.",
            ["campaign"],
            registry=r,
        )
        self.abandon_rate = Gauge(
            p + "abandon_rate",
            "Abandoned over live answers, over the campaign's abandon window (0-1).",
            ["campaign"],
            registry=r,
        )
        self.abandon_cap = Gauge(
            p + "abandon_cap",
            "The campaign's abandon cap (agents.abandon_cap, 0-1).",
            ["campaign"],
            registry=r,
        )
        self.agent_wait = Gauge(
            p + "agent_wait_seconds_mean",
            "Mean wait of a connected live answer for its agent.",
            ["campaign"],
            registry=r,
        )
        self.occupancy = Gauge(
            p + "agent_occupancy",
            "The agents' talk time over their logged-in time since the campaign started (0-1).",
            ["campaign"],
            registry=r,
        )
        self.calls_per_agent_hour = Gauge(
            p + "calls_per_agent_hour",
            "Calls handled per logged-in agent-hour since the campaign started.",
            ["campaign"],
            registry=r,
        )
        self.dial_level = Gauge(
            p + "dial_level",
            "Lines dialled per (expected) free agent by the pacing now.",
            ["campaign"],
            registry=r,
        )
        self.results = Counter(
            p + "results",
            "Final results written to campaign.results, by disposition.",
            ["campaign", "disposition"],
            registry=r,
        )
        self._seen: dict[str, _Seen] = {}

    def result(self, campaign: str, disposition: str) -> None:
        self.results.labels(campaign, disposition).inc()

    def due(self, campaign: str, real: float, finished: bool = False) -> bool:
        """Whether :meth:`observe` would copy now (callers skip building progress otherwise)."""
        seen = self._seen.get(campaign)
        return seen is None or finished or real - seen.updated >= INTERVAL_S

    def observe(
        self,
        progress: CampaignProgress,
        real: float | None = None,
        abandon_cap: float | None = None,
    ) -> None:
        """Copy one campaign's progress into the gauges; drop series gone stale."""
        now = time.time() if real is None else real
        c = progress.campaign
        seen = self._seen.get(c)
        moved = seen is None or (progress.dialed, progress.finished) != (seen.dialed, seen.finished)
        progressed = now if moved or seen is None else seen.progressed
        stages = {
            "read": progress.contacts_read,
            "finished": progress.finished,
            "retry_waiting": progress.retries_pending,
            "hours_waiting": progress.waiting_for_hours,
        }
        if progress.contacts_total is not None:
            stages["total"] = progress.contacts_total
        for stage, value in stages.items():
            self.contacts.labels(c, stage).set(value)
        self.in_flight.labels(c).set(progress.in_flight)
        self.max_concurrent.labels(c).set(progress.max_concurrent)
        self.dialed.labels(c).set(progress.dialed)
        self.dial_rate.labels(c).set(progress.dials_per_min / 60.0)
        self.cps_limit.labels(c).set(progress.cps_limit)
        for disposition, n in progress.dispositions.items():
            self.dispositions.labels(c, disposition).set(n)
        eta = progress.eta_s
        if eta is not None:
            self.eta.labels(c).set(eta)
        agents = progress.agents
        if agents is not None:
            for state, n in (
                ("free", agents.agents_free),
                ("busy", agents.agents_busy),
                ("logged_in", agents.agents_logged_in),
            ):
                self.agents.labels(c, state).set(n)
            self.callers_waiting.labels(c).set(agents.callers_waiting)
            self.live_answers.labels(c).set(agents.live_answers)
            self.agent_connected.labels(c).set(agents.connected)
            self.abandoned.labels(c).set(agents.abandoned)
            for gauge, figure in (
                (self.abandon_rate, agents.abandon_rate),
                (self.abandon_cap, abandon_cap),
                (self.agent_wait, agents.mean_wait_s),
                (self.occupancy, agents.occupancy),
                (self.calls_per_agent_hour, agents.calls_per_agent_hour),
                (self.dial_level, agents.dial_level),
            ):
                if figure is not None:
                    gauge.labels(c).set(figure)
        status = str(progress.status)
        if seen is not None and seen.status != status:
            self._remove(self.status, c, seen.status)
        self.status.labels(c, status).set(1)
        self.last_progress.labels(c).set(progressed)
        self._seen[c] = _Seen(
            now,
            progressed,
            progress.dialed,
            progress.finished,
            frozenset(progress.dispositions),
            status,
            progress.status in _FINAL,
            agents is not None or (seen is not None and seen.agents),
        )
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        for c, seen in list(self._seen.items()):
            keep = FINISHED_KEEP_S if seen.final else STALE_S
            if now - seen.updated > keep:
                self.forget(c)

    def forget(self, campaign: str) -> None:
        """Remove every series of ``campaign`` from this replica."""
        seen = self._seen.pop(campaign, None)
        if seen is None:
            return
        for stage in _STAGES:
            self._remove(self.contacts, campaign, stage)
        for g in (
            self.in_flight,
            self.max_concurrent,
            self.dialed,
            self.dial_rate,
            self.cps_limit,
            self.eta,
            self.last_progress,
        ):
            self._remove(g, campaign)
        for d in seen.dispositions:
            self._remove(self.dispositions, campaign, d)
        if seen.agents:
            for state in _AGENT_STATES:
                self._remove(self.agents, campaign, state)
            for g in (
                self.callers_waiting,
                self.live_answers,
                self.agent_connected,
                self.abandoned,
                self.abandon_rate,
                self.abandon_cap,
                self.agent_wait,
                self.occupancy,
                self.calls_per_agent_hour,
                self.dial_level,
            ):
                self._remove(g, campaign)
        self._remove(self.status, campaign, seen.status)

    @staticmethod
    def _remove(metric: Gauge | Counter, *labels: str) -> None:
        with contextlib.suppress(KeyError):
            metric.remove(*labels)
