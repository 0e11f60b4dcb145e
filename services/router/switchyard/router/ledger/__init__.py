"""The router's durable cost ledger: one record per request, every attempt in its own row.

SQLite (embedded, the default) and PostgreSQL (several router replicas) sit behind one
interface, `CostLedger`; `open_ledger(url)` picks the backend from the URL and creates the
schema. `docs/services/cost-ledger.md` describes the tables, durability and the report; the
outcome tables (shadow evaluations, feedback) are `OutcomeStore`, which both engines implement
through one module of SQL (`outcome_store.py`; docs/services/outcomes.md).
"""

from switchyard.router.ledger.interface import CostLedger, LedgerError, LedgerUnavailable
from switchyard.router.ledger.location import LedgerLocation, open_ledger, parse_ledger_url
from switchyard.router.ledger.outcome_records import (
    EvaluationRecord,
    EvaluationSummary,
    FeedbackRecord,
    FeedbackVerdict,
    JudgeOrder,
    OutcomeRow,
    RequestFacts,
    Verdict,
)
from switchyard.router.ledger.outcome_store import OutcomeStore
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
    "EvaluationRecord",
    "EvaluationSummary",
    "FeedbackRecord",
    "FeedbackVerdict",
    "Grouping",
    "JudgeOrder",
    "LedgerError",
    "LedgerLocation",
    "LedgerUnavailable",
    "OutcomeRow",
    "OutcomeStore",
    "RequestFacts",
    "RequestRecord",
    "RouteOnlyCalls",
    "Verdict",
    "open_ledger",
    "parse_ledger_url",
]
