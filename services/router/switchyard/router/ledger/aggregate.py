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

from switchyard.router.ledger.records import CostReportRow, Grouping, from_nanodollars

__all__ = [
    "GROUP_COLUMNS",
    "PERCENTILES",
    "GroupTotals",
    "build_row",
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
    """Exact sums of one group, as the database returns them (money in nano-dollars)."""

    key: str
    requests: int
    failed_requests: int
    input_tokens: int
    output_tokens: int
    cost_nusd: int
    baseline_nusd: int


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


def build_row(totals: GroupTotals, p50_ms: float | None, p95_ms: float | None) -> CostReportRow:
    return CostReportRow(
        key=totals.key,
        requests=totals.requests,
        failed_requests=totals.failed_requests,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        cost_usd=from_nanodollars(totals.cost_nusd),
        latency_p50_ms=float(p50_ms) if p50_ms is not None else 0.0,
        latency_p95_ms=float(p95_ms) if p95_ms is not None else 0.0,
        baseline_cost_usd=from_nanodollars(totals.baseline_nusd),
        saving_usd=from_nanodollars(totals.baseline_nusd - totals.cost_nusd),
    )


def sort_rows(rows: Iterable[CostReportRow]) -> tuple[CostReportRow, ...]:
    """Most expensive first; equal costs by key so the order is stable across backends."""
    return tuple(sorted(rows, key=lambda row: (-row.cost_usd, row.key)))
