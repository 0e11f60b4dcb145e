"""Tenant budgets: pure checks plus a spend tracker over the cost ledger.

Budgets are per UTC day and per UTC calendar month, in USD. Over a soft limit the policy
refuses frontier escalation; over a hard limit the request is refused. The router checks
before every attempt (fallbacks included), counting what the request has already spent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from switchyard.router.config import BudgetConfig

__all__ = [
    "BudgetState",
    "SpendTracker",
    "budget_state",
    "day_start",
    "month_start",
]


def day_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


@dataclass(frozen=True, slots=True)
class BudgetState:
    soft_exceeded: bool
    hard_exceeded: bool
    detail: str  # which limit, in words ("" when within budget)


def budget_state(budget: BudgetConfig, spent_today: float, spent_month: float) -> BudgetState:
    """Compare spend with the limits. A limit is reached when spend is at or above it."""
    hard: list[str] = []
    soft: list[str] = []
    for label, spent, soft_limit, hard_limit in (
        ("daily", spent_today, budget.daily_soft_usd, budget.daily_hard_usd),
        ("monthly", spent_month, budget.monthly_soft_usd, budget.monthly_hard_usd),
    ):
        if hard_limit is not None and spent >= hard_limit:
            hard.append(f"{label} hard limit ${hard_limit:.4f} reached (spent ${spent:.4f})")
        if soft_limit is not None and spent >= soft_limit:
            soft.append(f"{label} soft limit ${soft_limit:.4f} reached (spent ${spent:.4f})")
    return BudgetState(
        soft_exceeded=bool(soft) or bool(hard),
        hard_exceeded=bool(hard),
        detail="; ".join(hard or soft),
    )


SpendQuery = Callable[[str, datetime], Awaitable[float]]


class SpendTracker:
    """Tenant spend per day and month: read from the ledger, cached briefly, updated locally.

    `spend_since(tenant, since)` is the ledger's query. Values are cached for `ttl_s` (so a
    busy router does not query the ledger on every attempt) and every recorded request is added
    to the cached values at once, so this replica never under-counts its own spend. Other
    replicas' spend (PostgreSQL) is seen within `ttl_s`.
    """

    def __init__(
        self,
        spend_since: SpendQuery,
        *,
        ttl_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._query = spend_since
        self._ttl = ttl_s
        self._clock = clock
        self._monotonic = monotonic
        self._cache: dict[tuple[str, datetime], tuple[float, float]] = {}
        self._locks: dict[tuple[str, datetime], asyncio.Lock] = {}
        self._pending: dict[str, float] = {}
        self._adds_during_query: dict[tuple[str, datetime], float] = {}

    async def _spent(self, tenant: str, since: datetime) -> float:
        key = (tenant, since)
        cached = self._cache.get(key)
        if cached is not None and self._monotonic() - cached[1] < self._ttl:
            return cached[0]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and self._monotonic() - cached[1] < self._ttl:
                return cached[0]
            # A record written (and added) while the query runs may be missing from the query's
            # snapshot: count such adds on top of the result. At worst that counts one record
            # twice until the next refresh; it never under-counts.
            self._adds_during_query[key] = 0.0
            try:
                value = await self._query(tenant, since)
            finally:
                value_added = self._adds_during_query.pop(key)
            value += value_added
            self._cache[key] = (value, self._monotonic())
            return value

    async def spent(self, tenant: str) -> tuple[float, float]:
        """(spent today, spent this month) in USD, UTC periods."""
        now = self._clock()
        today = await self._spent(tenant, day_start(now))
        month = await self._spent(tenant, month_start(now))
        return today, month

    def add_pending(self, tenant: str, cost_usd: float) -> None:
        """Count a finished request now, before its ledger record is written."""
        self._pending[tenant] = self._pending.get(tenant, 0.0) + cost_usd

    def written(self, tenant: str, cost_usd: float) -> None:
        """A pending request's record is in the ledger: move it into the cached values."""
        self._pending[tenant] = max(0.0, self._pending.get(tenant, 0.0) - cost_usd)
        self.add(tenant, cost_usd)

    async def state(
        self, tenant: str, budget: BudgetConfig, pending_usd: float = 0.0
    ) -> BudgetState:
        """Budget state counting `pending_usd` (spent by the request so far, not yet recorded)."""
        if not budget.is_limited:
            return BudgetState(False, False, "")
        today, month = await self.spent(tenant)
        extra = pending_usd + self._pending.get(tenant, 0.0)
        return budget_state(budget, today + extra, month + extra)

    def add(self, tenant: str, cost_usd: float) -> None:
        """Count a just-recorded request in the cached values."""
        now = self._clock()
        for since in (day_start(now), month_start(now)):
            key = (tenant, since)
            if key in self._adds_during_query:
                self._adds_during_query[key] += cost_usd
            cached = self._cache.get(key)
            if cached is not None:
                self._cache[key] = (cached[0] + cost_usd, cached[1])
