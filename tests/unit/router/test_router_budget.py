from __future__ import annotations

from datetime import UTC, datetime

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


class FakeLedger:
    def __init__(self) -> None:
        self.spend = 0.0
        self.queries = 0

    async def spend_since(self, tenant: str, since: datetime) -> float:
        self.queries += 1
        return self.spend


async def test_tracker_caches_counts_pending_and_local_adds() -> None:
    ledger = FakeLedger()
    ticks = [0.0]
    tracker = SpendTracker(ledger.spend_since, ttl_s=5, monotonic=lambda: ticks[0])
    budget = BudgetConfig(daily_soft_usd=1, daily_hard_usd=2)
    assert not (await tracker.state("t", budget)).soft_exceeded
    assert ledger.queries == 2  # day and month
    assert (await tracker.state("t", budget, pending_usd=1.5)).soft_exceeded
    assert ledger.queries == 2  # cached
    tracker.add("t", 2.0)
    assert (await tracker.state("t", budget)).hard_exceeded
    ledger.spend = 0.0
    ticks[0] = 10.0  # expired: the ledger is the truth again
    assert not (await tracker.state("t", budget)).soft_exceeded
    assert ledger.queries == 4


async def test_unlimited_budget_never_queries() -> None:
    ledger = FakeLedger()
    tracker = SpendTracker(ledger.spend_since)
    state = await tracker.state("t", BudgetConfig())
    assert not state.soft_exceeded and ledger.queries == 0


async def test_a_record_written_during_a_refresh_is_not_lost() -> None:
    """The refresh's snapshot predates a record that is written (and added) meanwhile."""
    import asyncio

    gate = asyncio.Event()

    class SlowLedger(FakeLedger):
        async def spend_since(self, tenant: str, since: datetime) -> float:
            self.queries += 1
            snapshot = self.spend
            await gate.wait()
            return snapshot

    ledger = SlowLedger()
    tracker = SpendTracker(ledger.spend_since, ttl_s=60)
    budget = BudgetConfig(daily_soft_usd=0.005)
    checking = asyncio.ensure_future(tracker.state("t", budget))
    await asyncio.sleep(0)
    ledger.spend = 0.01  # the record commits while the query is in flight ...
    tracker.add_pending("t", 0.01)
    tracker.written("t", 0.01)  # ... and is moved out of pending
    gate.set()
    await checking
    assert (await tracker.state("t", budget)).soft_exceeded
