from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

import pytest

from switchyard.router.budget import SpendTracker, budget_state, day_start, month_start
from switchyard.router.config import BudgetConfig


def test_periods_are_utc() -> None:
    now = datetime(2026, 3, 17, 13, 45, tzinfo=UTC)
    assert day_start(now) == datetime(2026, 3, 17, tzinfo=UTC)
    assert month_start(now) == datetime(2026, 3, 1, tzinfo=UTC)


def test_budget_state_levels() -> None:
    b = BudgetConfig(daily_soft_usd=1, daily_hard_usd=2, monthly_hard_usd=10)
    assert budget_state(b, 0.5, 0.5) == budget_state(b, 0.5, 0.5)
    assert not budget_state(b, 0.99, 5).soft_exceeded
    s = budget_state(b, 1.0, 5)
    assert s.soft_exceeded and not s.hard_exceeded and "daily soft" in s.detail
    h = budget_state(b, 2.0, 5)
    assert h.hard_exceeded and h.soft_exceeded and "daily hard" in h.detail
    m = budget_state(b, 0.0, 10.0)
    assert m.hard_exceeded and "monthly hard" in m.detail


def test_hard_limit_alone_also_blocks_escalation() -> None:
    s = budget_state(BudgetConfig(daily_hard_usd=1), 1.0, 1.0)
    assert s.soft_exceeded and s.hard_exceeded


#: Every tracker test runs on a pinned clock: mid-month, the 1st of a month (the day and the
#: month start at the same instant) and the last moment of a year.
MID_MONTH = datetime(2026, 3, 17, 13, 45, tzinfo=UTC)
PINNED_DATES = [
    MID_MONTH,
    datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2027, 1, 1, 9, 30, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
]


def pinned(now: datetime) -> Callable[[], datetime]:
    return lambda: now


class FakeLedger:
    def __init__(self) -> None:
        self.records: dict[str, float] = {}
        self.queries = 0

    @property
    def spend(self) -> float:
        return sum(self.records.values())

    @spend.setter
    def spend(self, value: float) -> None:  # other replicas' spend, as one record
        self.records = {"other-replica": value}

    async def spend_since(
        self, tenant: str, since: datetime, exclude: Collection[str] = ()
    ) -> float:
        self.queries += 1
        return sum(usd for rid, usd in self.records.items() if rid not in exclude)


@pytest.mark.parametrize("now", PINNED_DATES, ids=str)
async def test_tracker_caches_counts_pending_and_local_adds(now: datetime) -> None:
    ledger = FakeLedger()
    ticks = [0.0]
    tracker = SpendTracker(
        ledger.spend_since, ttl_s=5, monotonic=lambda: ticks[0], clock=pinned(now)
    )
    budget = BudgetConfig(daily_soft_usd=1, daily_hard_usd=2)
    assert not (await tracker.state("t", budget)).soft_exceeded
    assert ledger.queries == 2  # day and month
    assert (await tracker.state("t", budget, pending_usd=1.5)).soft_exceeded
    assert ledger.queries == 2  # cached
    tracker.add_pending("t", 2.0, "r1")
    tracker.written("t", 2.0, "r1")
    assert (await tracker.state("t", budget)).hard_exceeded
    ledger.spend = 0.0
    ticks[0] = 10.0  # expired: the ledger is the truth again
    assert not (await tracker.state("t", budget)).soft_exceeded
    assert ledger.queries == 4


async def test_unlimited_budget_never_queries() -> None:
    ledger = FakeLedger()
    tracker = SpendTracker(ledger.spend_since, clock=pinned(MID_MONTH))
    state = await tracker.state("t", BudgetConfig())
    assert not state.soft_exceeded and ledger.queries == 0


class GatedLedger(FakeLedger):
    """Takes its snapshot when the query starts, answers when the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def spend_since(
        self, tenant: str, since: datetime, exclude: Collection[str] = ()
    ) -> float:
        self.queries += 1
        snapshot = sum(usd for rid, usd in self.records.items() if rid not in exclude)
        await self.gate.wait()
        return snapshot


async def _race(commit_before_snapshot: bool, pending_before_query: bool, now: datetime) -> float:
    """One request's record commits while a budget query runs; return the spend seen after."""
    ledger = GatedLedger()
    tracker = SpendTracker(ledger.spend_since, ttl_s=60, clock=pinned(now))
    budget = BudgetConfig(daily_soft_usd=0.005, daily_hard_usd=0.015)
    if pending_before_query:
        tracker.add_pending("t", 0.01, "r1")
    if commit_before_snapshot:
        tracker.committing("t", "r1")
        ledger.records["r1"] = 0.01
    checking = asyncio.ensure_future(tracker.state("t", budget))
    await asyncio.sleep(0)  # the query is in flight
    if not pending_before_query:
        tracker.add_pending("t", 0.01, "r1")
    if not commit_before_snapshot:
        tracker.committing("t", "r1")
        ledger.records["r1"] = 0.01
    tracker.written("t", 0.01, "r1")
    ledger.gate.set()
    await checking
    today, month = await tracker.spent("t")
    assert today == pytest.approx(month)
    return today + sum(cost for cost, _ in tracker._pending.get("t", {}).values())


@pytest.mark.parametrize("now", PINNED_DATES, ids=str)
async def test_a_record_committed_during_a_budget_query_is_counted_exactly_once(
    now: datetime,
) -> None:
    for commit_before_snapshot in (False, True):
        for pending_before_query in (False, True):
            if commit_before_snapshot and not pending_before_query:
                continue  # a record is pending before it is committed
            seen = await _race(commit_before_snapshot, pending_before_query, now)
            assert seen == pytest.approx(0.01), (commit_before_snapshot, pending_before_query)


async def test_a_record_written_between_the_day_and_month_queries_is_counted() -> None:
    """The race behind a load-dependent failure: the day query has returned (leaving the
    pending record out), the record is written while the month query runs."""
    ledger = GatedLedger()
    ledger.records["r1"] = 0.01  # committed; its written() callback has not run yet
    calls = 0
    gated = ledger.spend_since

    async def day_fast_month_gated(tenant: str, since: datetime, exclude: Collection[str] = ()):
        nonlocal calls
        calls += 1
        if calls == 1:
            return sum(usd for rid, usd in ledger.records.items() if rid not in exclude)
        return await gated(tenant, since, exclude)

    tracker = SpendTracker(day_fast_month_gated, ttl_s=0, clock=pinned(MID_MONTH))
    tracker.add_pending("t", 0.01, "r1")
    checking = asyncio.ensure_future(tracker.state("t", BudgetConfig(daily_soft_usd=0.005)))
    for _ in range(10):  # let the day query answer and the month query start
        await asyncio.sleep(0)
    assert calls == 2
    tracker.written("t", 0.01, "r1")  # between the two queries' answers
    ledger.gate.set()
    assert (await checking).soft_exceeded


@pytest.mark.parametrize("now", PINNED_DATES, ids=str)
async def test_a_written_record_counts_once_in_the_day_and_once_in_the_month(
    now: datetime,
) -> None:
    """On the 1st of a month the day and the month start together; a record must still be
    added to each cached value once (it was added twice: a hard limit hit at half the spend)."""
    ledger = FakeLedger()
    tracker = SpendTracker(ledger.spend_since, ttl_s=60, clock=pinned(now))
    budget = BudgetConfig(daily_hard_usd=1.0, monthly_hard_usd=1.0)
    assert await tracker.spent("t") == (0.0, 0.0)  # both periods cached
    tracker.add_pending("t", 0.6, "r1")
    ledger.records["r1"] = 0.6
    tracker.written("t", 0.6, "r1")
    assert await tracker.spent("t") == (pytest.approx(0.6), pytest.approx(0.6))
    assert not (await tracker.state("t", budget)).hard_exceeded
    tracker.add_pending("t", 0.3, "r2")
    state = await tracker.state("t", budget)
    assert not state.soft_exceeded and not state.hard_exceeded
    tracker.add_pending("t", 0.1, "r3")
    assert (await tracker.state("t", budget)).hard_exceeded  # 0.6 + 0.3 + 0.1 = the limit


async def test_a_record_of_the_old_year_written_after_midnight_counts_in_its_own_periods() -> None:
    """A request finished at 23:59:59 on 31 December whose record is written after midnight
    counts in December, not in the new day or month."""
    clock = [datetime(2026, 12, 31, 23, 59, 59, 900000, tzinfo=UTC)]
    ledger = FakeLedger()
    tracker = SpendTracker(ledger.spend_since, ttl_s=60, clock=lambda: clock[0])
    budget = BudgetConfig(daily_hard_usd=1.0, monthly_hard_usd=1.0)
    tracker.add_pending("t", 0.7, "r1", at=clock[0])
    assert (await tracker.spent("t")) == (0.0, 0.0)
    clock[0] += timedelta(milliseconds=200)  # 2027-01-01 00:00:00.1
    assert await tracker.spent("t") == (0.0, 0.0)  # new periods, cached before the write
    assert not (await tracker.state("t", budget)).soft_exceeded  # December's, still pending
    tracker.written("t", 0.7, "r1")
    assert await tracker.spent("t") == (0.0, 0.0)  # not added to January's values
    tracker.add_pending("t", 0.5, "r2", at=clock[0])
    assert not (await tracker.state("t", budget)).soft_exceeded
