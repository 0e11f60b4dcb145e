"""The one interface every ledger backend implements, and its errors."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from switchyard.router.ledger.records import CostReport, Grouping, RequestRecord

__all__ = ["CostLedger", "LedgerError", "LedgerUnavailable"]


class LedgerError(Exception):
    """The ledger cannot do what was asked (say, its schema is newer than this code)."""


class LedgerUnavailable(LedgerError):
    """The ledger's database cannot be reached or refused the connection. Messages never carry
    a password."""


@runtime_checkable
class CostLedger(Protocol):
    """Durable record of what every request cost.

    Many coroutines may call every method at once. `record` raises ValueError for a record the
    ledger refuses (a duplicate request id, a value out of range) and writes nothing of it.
    """

    async def record(self, record: RequestRecord) -> None:
        """Store `record` and its attempts atomically; durable when this returns."""
        ...

    async def record_many(self, records: Sequence[RequestRecord]) -> list[ValueError | None]:
        """Store `records` in one transaction, durable when this returns: per record, None
        (written) or the ValueError that refused it (nothing of that record is written).
        Raises `LedgerUnavailable` when the database cannot take the batch at all."""
        ...

    async def existing_ids(self, request_ids: Collection[str]) -> set[str]:
        """Those of `request_ids` the ledger holds a record of."""
        ...

    async def spend_since(
        self, tenant: str, since: datetime, exclude: Collection[str] = ()
    ) -> float:
        """Sum of `total_cost_usd` of `tenant`'s requests at or after `since` (timezone-aware),
        leaving out the requests whose ids are in `exclude` (the router counts those itself)."""
        ...

    async def report(
        self,
        start: datetime,
        end: datetime,
        group_by: Grouping,
        tenant: str | None = None,
    ) -> CostReport:
        """Aggregate requests in [start, end), grouped; limited to `tenant` unless None."""
        ...

    async def records(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        limit: int = 1000,
    ) -> list[RequestRecord]:
        """Requests in [start, end) with their attempts, oldest first, at most `limit`."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release connections. Idempotent."""
        ...
