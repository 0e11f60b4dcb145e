"""What the ledger stores and reports: one `RequestRecord` per routed request, its attempts, and
the aggregated `CostReport`. Pure data and validation, no I/O.

Money is stored as integer nano-dollars (1e-9 USD) so sums are exact and identical in every
backend; `to_nanodollars` / `from_nanodollars` convert. A record is validated when it is built:
bad values raise `ValueError` before anything reaches a database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import grpc

__all__ = [
    "OPERATIONS",
    "ROUTE_ONLY",
    "STATUS_NAMES",
    "TARGET_KINDS",
    "AttemptRecord",
    "CostReport",
    "CostReportRow",
    "Grouping",
    "RequestRecord",
    "RouteOnlyCalls",
    "from_nanodollars",
    "require_utc",
    "to_nanodollars",
]

#: gRPC status code names a record's `status` may hold ("OK" on success).
STATUS_NAMES = frozenset(code.name for code in grpc.StatusCode)
#: Kinds of logical target (router.v1.TargetKind without its prefix).
TARGET_KINDS = frozenset({"LOCAL", "FRONTIER"})
#: The router operation a record is of: a decision-only `Route` call, `Complete` or
#: `CompleteStream`. Reports keep route-only calls apart from answered ones.
ROUTE_ONLY = "route"
OPERATIONS = (ROUTE_ONLY, "complete", "complete_stream")

_NANO = 1_000_000_000
# A request's total must equal the classifier's cost plus its attempts'; each part may carry up to
# one nano-dollar of rounding (records read back from the ledger are rounded to nano-dollars).
_SUM_TOLERANCE_USD = 1e-9


def to_nanodollars(usd: float) -> int:
    """USD as integer nano-dollars (rounded to the nearest)."""
    return round(usd * _NANO)


def from_nanodollars(nusd: int) -> float:
    return nusd / _NANO


def require_utc(value: datetime, field: str) -> datetime:
    """`value` converted to UTC; a naive datetime is a ValueError (its zone is a guess)."""
    if not isinstance(value, datetime):
        raise ValueError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{field} must be timezone-aware (UTC), got a naive datetime")
    return value.astimezone(UTC)


def _check_money(value: float, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field} must be a finite, non-negative amount of USD, got {value!r}")


def _check_latency(value: float, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field} must be a finite, non-negative number of ms, got {value!r}")


def _check_tokens(value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field} must be a non-negative integer, got {value!r}")
    if value >= 2**63:
        raise ValueError(f"{field} is out of range: {value}")


def _check_text(value: str, field: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise ValueError(f"{field} must not be empty")
    if "\x00" in value:
        raise ValueError(f"{field} must not contain NUL characters")


def _check_status(value: str, field: str) -> None:
    if value not in STATUS_NAMES:
        raise ValueError(f"{field} must be a gRPC status code name such as 'OK', got {value!r}")


def _check_fraction(value: float | None, field: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a number or None, got {type(value).__name__}")
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{field} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One call to a backend on behalf of a request (fallbacks make several)."""

    target: str
    backend: str
    model: str
    status: str  # gRPC status code name, "OK" on success
    latency_ms: float
    cost_usd: float
    input_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        _check_text(self.target, "attempt.target")
        _check_text(self.backend, "attempt.backend")
        _check_text(self.model, "attempt.model")
        _check_status(self.status, "attempt.status")
        _check_latency(self.latency_ms, "attempt.latency_ms")
        _check_money(self.cost_usd, "attempt.cost_usd")
        _check_tokens(self.input_tokens, "attempt.input_tokens")
        _check_tokens(self.output_tokens, "attempt.output_tokens")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One routed request, as the ledger keeps it.

    `total_cost_usd` is everything the request cost: the classifier hop plus every attempt,
    failed ones included; it must equal that sum (within a nano-dollar per part).
    `baseline_cost_usd` is what the request's token counts would have cost on the frontier
    baseline model.
    """

    request_id: str
    time: datetime  # timezone-aware; stored as UTC
    tenant: str
    task_type: str  # TaskType name such as "MATH"; "" when unknown
    complexity: float | None
    target: str  # logical target finally served (or chosen)
    target_kind: str  # "LOCAL" | "FRONTIER"
    model: str
    reason: str  # DecisionReason name
    escalation_score: float | None
    status: str  # gRPC status code name of the whole request
    classifier_cost_usd: float
    total_cost_usd: float
    latency_ms: float
    input_tokens: int
    output_tokens: int
    baseline_cost_usd: float
    attempts: tuple[AttemptRecord, ...] = ()
    operation: str = "complete"  # one of OPERATIONS
    #: The classifier model that decided (`Classification.model_version`); "" when unknown.
    classifier_model_version: str = ""
    #: Characters of the text the classifier read (the last user turn, or its excerpt).
    prompt_chars: int = 0

    def __post_init__(self) -> None:
        _check_text(self.request_id, "request_id")
        if len(self.request_id) > 200:
            raise ValueError("request_id must be at most 200 characters")
        object.__setattr__(self, "time", require_utc(self.time, "time"))
        _check_text(self.tenant, "tenant")
        _check_text(self.task_type, "task_type", allow_empty=True)
        _check_fraction(self.complexity, "complexity")
        _check_text(self.target, "target")
        if self.target_kind not in TARGET_KINDS:
            raise ValueError(f"target_kind must be 'LOCAL' or 'FRONTIER', got {self.target_kind!r}")
        _check_text(self.model, "model")
        _check_text(self.reason, "reason")
        _check_fraction(self.escalation_score, "escalation_score")
        _check_status(self.status, "status")
        _check_money(self.classifier_cost_usd, "classifier_cost_usd")
        _check_money(self.total_cost_usd, "total_cost_usd")
        _check_latency(self.latency_ms, "latency_ms")
        _check_tokens(self.input_tokens, "input_tokens")
        _check_tokens(self.output_tokens, "output_tokens")
        _check_money(self.baseline_cost_usd, "baseline_cost_usd")
        if self.operation not in OPERATIONS:
            raise ValueError(
                f"operation must be one of {', '.join(OPERATIONS)}, got {self.operation!r}"
            )
        _check_text(self.classifier_model_version, "classifier_model_version", allow_empty=True)
        _check_tokens(self.prompt_chars, "prompt_chars")
        if not isinstance(self.attempts, tuple):
            object.__setattr__(self, "attempts", tuple(self.attempts))
        for attempt in self.attempts:
            if not isinstance(attempt, AttemptRecord):
                raise ValueError(f"attempts must hold AttemptRecord, got {type(attempt).__name__}")
        parts = self.classifier_cost_usd + math.fsum(a.cost_usd for a in self.attempts)
        tolerance = _SUM_TOLERANCE_USD * (len(self.attempts) + 2) + 1e-12 * parts
        if abs(self.total_cost_usd - parts) > tolerance:
            raise ValueError(
                f"total_cost_usd ({self.total_cost_usd!r}) must equal classifier_cost_usd plus "
                f"every attempt's cost_usd ({parts!r})"
            )


class Grouping(Enum):
    """The dimension a cost report's rows are grouped by (cost.v1.CostGrouping)."""

    MODEL = "model"
    TASK_TYPE = "task_type"
    TENANT = "tenant"
    TARGET = "target"


@dataclass(frozen=True, slots=True)
class RouteOnlyCalls:
    """A group's route-only (decision) calls (mirrors cost.v1.RouteOnlyCalls): kept apart so
    they neither count as requests nor pull the answered requests' latency down."""

    requests: int = 0
    failed_requests: int = 0
    cost_usd: float = 0.0  # the classifier hop
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class CostReportRow:
    """The requests of one group (mirrors cost.v1.CostReportRow).

    Every field but `route_only` covers the group's answered calls (Complete, CompleteStream,
    failed ones included); `route_only` covers its decision-only Route calls.
    Latency percentiles interpolate linearly between the two nearest ranks (PostgreSQL's
    `percentile_cont`, numpy's default); 0.0 when the group is empty.
    """

    key: str
    requests: int
    failed_requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_p50_ms: float
    latency_p95_ms: float
    baseline_cost_usd: float
    saving_usd: float  # baseline_cost_usd - cost_usd, computed exactly in nano-dollars
    route_only: RouteOnlyCalls = RouteOnlyCalls()


@dataclass(frozen=True, slots=True)
class CostReport:
    """Rows most expensive first (ties by key), and `total` over every request of the window.

    `total.key` is "". `tenant` is the tenant the report was limited to (None: all tenants).
    """

    start: datetime
    end: datetime
    group_by: Grouping
    tenant: str | None
    rows: tuple[CostReportRow, ...]
    total: CostReportRow


def request_row(record: RequestRecord, time: Any) -> tuple[Any, ...]:
    """The `requests` table's column values for `record`, in schema order; both backends use
    this, each passing `time` in its own storage form (SQLite: microseconds since the epoch)."""
    return (
        record.request_id,
        time,
        record.tenant,
        record.task_type,
        record.complexity,
        record.target,
        record.target_kind,
        record.model,
        record.reason,
        record.escalation_score,
        record.status,
        to_nanodollars(record.classifier_cost_usd),
        to_nanodollars(record.total_cost_usd),
        record.latency_ms,
        record.input_tokens,
        record.output_tokens,
        to_nanodollars(record.baseline_cost_usd),
        record.operation,
        record.classifier_model_version,
        record.prompt_chars,
    )


def attempt_rows(record: RequestRecord) -> list[tuple[Any, ...]]:
    """The `attempts` table's rows for `record`, in order."""
    return [
        (
            record.request_id,
            index,
            attempt.target,
            attempt.backend,
            attempt.model,
            attempt.status,
            attempt.latency_ms,
            to_nanodollars(attempt.cost_usd),
            attempt.input_tokens,
            attempt.output_tokens,
        )
        for index, attempt in enumerate(record.attempts)
    ]


def attempt_from_row(row: Sequence[Any]) -> AttemptRecord:
    """An `attempts` row (as `attempt_rows` writes it) back into an `AttemptRecord`."""
    return AttemptRecord(
        target=row[2],
        backend=row[3],
        model=row[4],
        status=row[5],
        latency_ms=row[6],
        cost_usd=from_nanodollars(row[7]),
        input_tokens=row[8],
        output_tokens=row[9],
    )


def record_from_row(
    row: Sequence[Any], time: datetime, attempts: Sequence[AttemptRecord]
) -> RequestRecord:
    """A `requests` row (as `request_row` writes it) back into a `RequestRecord`; `time` is the
    row's time already converted from the backend's storage form."""
    return RequestRecord(
        request_id=row[0],
        time=time,
        tenant=row[2],
        task_type=row[3],
        complexity=row[4],
        target=row[5],
        target_kind=row[6],
        model=row[7],
        reason=row[8],
        escalation_score=row[9],
        status=row[10],
        classifier_cost_usd=from_nanodollars(row[11]),
        total_cost_usd=from_nanodollars(row[12]),
        latency_ms=row[13],
        input_tokens=row[14],
        output_tokens=row[15],
        baseline_cost_usd=from_nanodollars(row[16]),
        attempts=tuple(attempts),
        operation=row[17],
        classifier_model_version=row[18],
        prompt_chars=row[19],
    )
