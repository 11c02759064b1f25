"""Rate budgets per Vonage account: CPS (new calls), RPS (other Voice requests), Application API.

How the budgets are divided between replicas is explained in ``orchestrator.dispatcher``; this
module only applies it: the CPS limiter runs at the full rate (its partition has one owner), the
RPS and Application limiters at this replica's share of partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.envelopes import CALL_CREATING_KINDS, CommandKind
from orchestrator.dispatcher.limiter import RateLimiter
from orchestrator.dispatcher.retry import APPLICATION_KINDS

#: Application API requests per second (Vonage quotes 170/s; provisioning needs a handful).
APP_RPS = 10.0


@dataclass
class AccountBudget:
    account: str
    cps: RateLimiter
    rps: RateLimiter
    app: RateLimiter

    def for_kind(self, kind: CommandKind) -> tuple[str, RateLimiter]:
        if kind in CALL_CREATING_KINDS:
            return "cps", self.cps
        if kind in APPLICATION_KINDS:
            return "app", self.app
        return "rps", self.rps

    def limiters(self) -> list[tuple[str, RateLimiter]]:
        return [("cps", self.cps), ("rps", self.rps), ("app", self.app)]


class Budgets:
    def __init__(self, cps: float, rps: float, app_rps: float = APP_RPS) -> None:
        self.cps = cps
        self.rps = rps
        self.app_rps = app_rps
        self.share = 1.0
        self._accounts: dict[str, AccountBudget] = {}

    def get(self, account: str) -> AccountBudget:
        budget = self._accounts.get(account)
        if budget is None:
            # Born saturated: a previous owner (or our own previous life) may have just sent.
            budget = AccountBudget(
                account,
                cps=RateLimiter(self.cps, name=f"{account}/cps"),
                rps=RateLimiter(self._shared(self.rps), name=f"{account}/rps"),
                app=RateLimiter(self._shared(self.app_rps), name=f"{account}/app"),
            )
            self._accounts[account] = budget
        return budget

    def _shared(self, rate: float) -> float:
        return max(rate * self.share, 1e-3)

    def accounts(self) -> list[AccountBudget]:
        return list(self._accounts.values())

    def set_share(self, owned: int, total: int) -> None:
        """This replica owns ``owned`` of ``total`` command partitions: scale RPS accordingly."""
        self.share = owned / total if total > 0 else 1.0
        for b in self._accounts.values():
            b.rps.set_rate(self._shared(self.rps))
            b.app.set_rate(self._shared(self.app_rps))

    def took_over(self) -> None:
        """New partitions were assigned: an account's CPS may have just been used by another owner."""
        for b in self._accounts.values():
            b.cps.saturate()

    async def aclose(self) -> None:
        for b in self._accounts.values():
            for _, lim in b.limiters():
                await lim.aclose()
