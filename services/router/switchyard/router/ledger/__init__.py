"""The router's durable cost ledger: one record per request, every attempt in its own row.

SQLite (embedded, the default) and PostgreSQL (several router replicas) sit behind one
interface, `CostLedger`; `open_ledger(url)` picks the backend from the URL and creates the
schema. `docs/services/cost-ledger.md` describes the tables, durability and the report.
"""

from switchyard.router.ledger.interface import CostLedger, LedgerError, LedgerUnavailable
from switchyard.router.ledger.location import LedgerLocation, open_ledger, parse_ledger_url
from switchyard.router.ledger.records import (
    AttemptRecord,
    CostReport,
    CostReportRow,
    Grouping,
    RequestRecord,
    RouteOnlyCalls,
)

__all__ = [
    "AttemptRecord",
    "CostLedger",
    "CostReport",
    "CostReportRow",
    "Grouping",
    "LedgerError",
    "LedgerLocation",
    "LedgerUnavailable",
    "RequestRecord",
    "RouteOnlyCalls",
    "open_ledger",
    "parse_ledger_url",
]
