"""Tenant budgets: pure checks plus a spend tracker over the cost ledger.

Budgets are per UTC day and per UTC calendar month, in USD. Over a soft limit the policy
refuses frontier escalation; over a hard limit the request is refused. The router checks
before every attempt (fallbacks included), counting what the request has already spent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from switchyard.router.config import BudgetConfig
from switchyard.router.ledger.interface import LedgerError
from switchyard.runtime.errors import Unavailable
from switchyard.runtime.logging import get_logger

__all__ = [
    "BudgetState",
    "SpendTracker",
    "budget_state",
    "day_start",
    "month_start",
]

log = get_logger(__name__)


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


SpendQuery = Callable[[str, datetime, Collection[str]], Awaitable[float]]

#: A cached spend value: (tenant, period name, period start). The period name is part of the key
#: because on the 1st of a month the day and the month start at the same instant.
_Key = tuple[str, str, datetime]


def _periods(tenant: str, at: datetime) -> tuple[_Key, _Key]:
    return ((tenant, "day", day_start(at)), (tenant, "month", month_start(at)))


@dataclass(slots=True)
class _Query:
    """One ledger query in flight and what happened to this router's records meanwhile."""

    excluded: frozenset[str]
    written_usd: float = 0.0
    ambiguous: bool = False
    ambiguous_usd: float = 0.0


class SpendTracker:
    """Tenant spend per day and month: read from the ledger, cached briefly, updated locally.

    `spend_since(tenant, since, exclude)` is the ledger's query. Requests this router has
    finished but whose records are not yet written (pending) are counted from memory, exactly
    once: the ledger query leaves them out by request id, so a record committing while the
    query runs can neither be missed nor counted twice. When a pending record is written it
    moves into the cached values. Values are cached for `ttl_s` (a busy router does not query
    the ledger on every attempt); other replicas' spend (PostgreSQL) is seen within `ttl_s`.
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
        self._cache: dict[_Key, tuple[float, float]] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}
        # tenant -> request id -> (USD, the periods its record falls in)
        self._pending: dict[str, dict[str, tuple[float, tuple[_Key, _Key]]]] = {}
        self._running: dict[_Key, _Query] = {}  # ledger queries in flight

    async def _spent(self, key: _Key) -> float:
        tenant, _, since = key
        cached = self._cache.get(key)
        if cached is not None and self._monotonic() - cached[1] < self._ttl:
            return cached[0]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and self._monotonic() - cached[1] < self._ttl:
                return cached[0]
            for attempt in range(3):
                query = _Query(frozenset(self._pending.get(tenant, {})))
                self._running[key] = query
                try:
                    value = await self._query(tenant, since, query.excluded)
                except LedgerError as exc:
                    if cached is None:
                        raise Unavailable(
                            f"cannot check tenant {tenant!r}'s budget: the ledger is unavailable"
                        ) from None
                    # keep the last value read (this router's own spend is still counted: the
                    # records it could not write stay pending)
                    log.warning("ledger unavailable: budget checked against the last spend read",
                                tenant=tenant, error=str(exc))  # fmt: skip
                    return cached[0]
                finally:
                    del self._running[key]
                # Excluded records written meanwhile are in neither the value nor pending.
                value += query.written_usd
                if not query.ambiguous:
                    break
                # A record that was not excluded was committed while the query ran: it may or
                # may not be in the value. Read again (after 3 tries, count it on top).
                if attempt == 2:
                    value += query.ambiguous_usd
            self._cache[key] = (value, self._monotonic())
            return value

    async def spent(self, tenant: str) -> tuple[float, float]:
        """(spent today, spent this month) in USD, UTC periods, without pending requests."""
        day, month = await self._spent_in(_periods(tenant, self._clock()))
        return day, month

    async def _spent_in(self, keys: tuple[_Key, _Key]) -> tuple[float, float]:
        for key in keys:
            await self._spent(key)
        # Read both from the cache only now, with no await before the caller reads the pending
        # requests: a record written while the second query ran has been added to the first
        # one's entry, and is no longer pending.
        return self._cache[keys[0]][0], self._cache[keys[1]][0]

    def add_pending(
        self, tenant: str, cost_usd: float, request_id: str, at: datetime | None = None
    ) -> None:
        """Count a finished request now, before its ledger record is written.

        `at` is the record's time (default: the tracker's clock now); the record counts in the
        day and month it falls in, even when it is written after midnight.
        """
        when = self._clock() if at is None else at
        self._pending.setdefault(tenant, {})[request_id] = (cost_usd, _periods(tenant, when))

    def _pending_usd(self, tenant: str, key: _Key) -> float:
        """What this tenant's pending records falling in the period `key` cost."""
        return math.fsum(
            cost for cost, keys in self._pending.get(tenant, {}).values() if key in keys
        )

    def committing(self, tenant: str, request_id: str) -> None:
        """A pending record is about to be committed: queries now running may or may not see
        it. Those that do not exclude it must read again."""
        entry = self._pending.get(tenant, {}).get(request_id)
        if entry is None:
            return
        cost, keys = entry
        for key in keys:
            query = self._running.get(key)
            if query is not None and request_id not in query.excluded:
                query.ambiguous = True
                query.ambiguous_usd += cost

    def written(self, tenant: str, cost_usd: float, request_id: str) -> None:
        """A pending request's record is in the ledger: move it into the cached values."""
        pending = self._pending.get(tenant, {})
        entry = pending.pop(request_id, None)
        if entry is None:
            return
        if not pending:
            self._pending.pop(tenant, None)
        for key in entry[1]:
            query = self._running.get(key)
            if query is not None and request_id in query.excluded:
                query.written_usd += cost_usd
            cached = self._cache.get(key)
            if cached is not None:
                self._cache[key] = (cached[0] + cost_usd, cached[1])

    async def state(
        self, tenant: str, budget: BudgetConfig, pending_usd: float = 0.0
    ) -> BudgetState:
        """Budget state counting `pending_usd` (spent by the request so far, not yet recorded)."""
        if not budget.is_limited:
            return BudgetState(False, False, "")
        keys = _periods(tenant, self._clock())
        today, month = await self._spent_in(keys)
        return budget_state(
            budget,
            today + pending_usd + self._pending_usd(tenant, keys[0]),
            month + pending_usd + self._pending_usd(tenant, keys[1]),
        )
