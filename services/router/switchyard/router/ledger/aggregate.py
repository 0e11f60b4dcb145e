"""Turning the backends' aggregate rows into `CostReportRow`s, the same way for every backend.

Percentiles use the definition of PostgreSQL's `percentile_cont` (and numpy's default "linear"):
the value at fractional rank `p * (n - 1)` of the sorted latencies, interpolated linearly between
its two neighbouring ranks. The SQLite backend fetches just those neighbours per group and
interpolates here with the same arithmetic, so both backends return identical numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from switchyard.router.ledger.records import (
    CostReport,
    CostReportRow,
    Grouping,
    RouteOnlyCalls,
    from_nanodollars,
)

__all__ = [
    "GROUP_COLUMNS",
    "PERCENTILES",
    "GroupTotals",
    "build_report",
    "build_rows",
    "empty_row",
    "interpolate",
    "percentile",
    "percentile_ranks",
    "sort_rows",
]

#: The report's two percentiles, as fractions.
PERCENTILES = (0.5, 0.95)

#: The `requests` column each grouping aggregates by (fixed names, never caller input).
GROUP_COLUMNS: dict[Grouping, str] = {
    Grouping.MODEL: "model",
    Grouping.TASK_TYPE: "task_type",
    Grouping.TENANT: "tenant",
    Grouping.TARGET: "target",
}


@dataclass(frozen=True, slots=True)
class GroupTotals:
    """Exact sums of one group's answered calls, or of its route-only calls (`route_only`), as
    the database returns them (money in nano-dollars), and their latency percentiles."""

    key: str
    route_only: bool
    requests: int
    failed_requests: int
    input_tokens: int
    output_tokens: int
    cost_nusd: int
    baseline_nusd: int
    p50_ms: float | None
    p95_ms: float | None


def percentile_ranks(n: int, p: float) -> tuple[int, int, float]:
    """The 0-based ranks below and above fractional rank `p * (n - 1)`, and the fraction."""
    if n <= 0:
        raise ValueError("a percentile needs at least one value")
    position = p * (n - 1)
    lower = math.floor(position)
    upper = math.ceil(position)
    return lower, upper, position - lower


def interpolate(lower_value: float, upper_value: float, fraction: float) -> float:
    """PostgreSQL's float8 lerp, operand for operand."""
    if fraction == 0.0 or lower_value == upper_value:
        return lower_value
    return lower_value + (upper_value - lower_value) * fraction


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The `p` percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    lower, upper, fraction = percentile_ranks(len(sorted_values), p)
    return interpolate(sorted_values[lower], sorted_values[upper], fraction)


def _ms(value: float | None) -> float:
    return float(value) if value is not None else 0.0


def build_rows(parts: Iterable[GroupTotals]) -> list[CostReportRow]:
    """One row per key from its answered part and its route-only part (either may be absent)."""
    answered: dict[str, GroupTotals] = {}
    routed: dict[str, GroupTotals] = {}
    for part in parts:
        (routed if part.route_only else answered)[part.key] = part
    rows = []
    for key in sorted(answered.keys() | routed.keys()):
        a = answered.get(key)
        r = routed.get(key)
        rows.append(
            CostReportRow(
                key=key,
                requests=a.requests if a else 0,
                failed_requests=a.failed_requests if a else 0,
                input_tokens=a.input_tokens if a else 0,
                output_tokens=a.output_tokens if a else 0,
                cost_usd=from_nanodollars(a.cost_nusd) if a else 0.0,
                latency_p50_ms=_ms(a.p50_ms) if a else 0.0,
                latency_p95_ms=_ms(a.p95_ms) if a else 0.0,
                baseline_cost_usd=from_nanodollars(a.baseline_nusd) if a else 0.0,
                saving_usd=from_nanodollars(a.baseline_nusd - a.cost_nusd) if a else 0.0,
                route_only=RouteOnlyCalls(
                    requests=r.requests,
                    failed_requests=r.failed_requests,
                    cost_usd=from_nanodollars(r.cost_nusd),
                    latency_p50_ms=_ms(r.p50_ms),
                    latency_p95_ms=_ms(r.p95_ms),
                )
                if r
                else RouteOnlyCalls(),
            )
        )
    return rows


def empty_row() -> CostReportRow:
    """The total of a window without requests."""
    return CostReportRow("", 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)


def sort_rows(rows: Iterable[CostReportRow]) -> tuple[CostReportRow, ...]:
    """Most expensive first; equal costs by key so the order is stable across backends."""
    return tuple(sorted(rows, key=lambda row: (-row.cost_usd, row.key)))


def build_report(
    start: datetime,
    end: datetime,
    group_by: Grouping,
    tenant: str | None,
    rows: Iterable[CostReportRow],
    total: Sequence[CostReportRow],
) -> CostReport:
    """The report of a window from its rows (any order) and its total (`[]` when empty)."""
    return CostReport(
        start=start,
        end=end,
        group_by=group_by,
        tenant=tenant,
        rows=sort_rows(rows),
        total=total[0] if total else empty_row(),
    )
