"""What both ledger engines say to their database, written once: SQL text, column lists, the
window filter, the report's totals query and the checks on every call's arguments.

Each engine keeps only what really differs: how it connects, runs a statement and batches
writes, and (SQLite) how it computes percentiles without `percentile_cont`. The SQL is plain
text with the dialect's parameter marker; every name in it is fixed here, never caller input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from switchyard.router.ledger.aggregate import GROUP_COLUMNS
from switchyard.router.ledger.records import (
    ROUTE_ONLY,
    AttemptRecord,
    Grouping,
    RequestRecord,
    attempt_from_row,
    attempt_rows,
    record_from_row,
    request_row,
    require_utc,
)
from switchyard.router.ledger.schema import ATTEMPT_COLUMNS, REQUEST_COLUMNS, Dialect

__all__ = [
    "ID_CHUNK",
    "assemble_records",
    "attempt_columns",
    "chunks",
    "existing_ids_query",
    "group_key",
    "insert_attempt",
    "insert_request",
    "record_rows",
    "records_query",
    "attempts_query",
    "records_arguments",
    "report_arguments",
    "request_columns",
    "totals_query",
    "window",
]

#: Request ids per `IN (...)` list (well under both databases' parameter limits).
ID_CHUNK = 500


def request_columns(dialect: Dialect) -> str:
    return ", ".join(dialect.column(column.name) for column in REQUEST_COLUMNS)


def attempt_columns() -> str:
    return ", ".join(column.name for column in ATTEMPT_COLUMNS)


def insert_request(dialect: Dialect) -> str:
    return (
        f"INSERT INTO requests ({request_columns(dialect)}) "
        f"VALUES ({dialect.markers(len(REQUEST_COLUMNS))})"
    )


def insert_attempt(dialect: Dialect) -> str:
    return (
        f"INSERT INTO attempts ({attempt_columns()}) "
        f"VALUES ({dialect.markers(len(ATTEMPT_COLUMNS))})"
    )


def record_rows(
    dialect: Dialect, record: RequestRecord
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """`record`'s `requests` row and its `attempts` rows, in the dialect's storage form."""
    if not isinstance(record, RequestRecord):
        raise TypeError(f"record must be a RequestRecord, got {type(record).__name__}")
    return request_row(record, dialect.time_to_db(record.time)), attempt_rows(record)


def chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


def existing_ids_query(dialect: Dialect, count: int) -> str:
    """Which of `count` request ids the ledger holds."""
    return f"SELECT request_id FROM requests WHERE request_id IN ({dialect.markers(count)})"


def window(
    dialect: Dialect, start: datetime, end: datetime, tenant: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and its parameters) of requests in [start, end), of `tenant` if set."""
    time = dialect.time_column
    where = f"{time} >= {dialect.marker} AND {time} < {dialect.marker}"
    params: tuple[Any, ...] = (dialect.time_to_db(start), dialect.time_to_db(end))
    if tenant is not None:
        where += f" AND tenant = {dialect.marker}"
        params += (tenant,)
    return where, params


def report_arguments(
    start: datetime, end: datetime, group_by: Grouping
) -> tuple[datetime, datetime]:
    """`report`'s window in UTC; ValueError for a naive, empty or reversed window, or a
    grouping that is not a `Grouping`."""
    start = require_utc(start, "start")
    end = require_utc(end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    if not isinstance(group_by, Grouping):
        raise ValueError(f"group_by must be a Grouping, got {group_by!r}")
    return start, end


def totals_query(group_by: Grouping | None, where: str, percentiles: Sequence[str] = ()) -> str:
    """Per group (`group_by`; None: the whole window) and per kind of call (answered or
    route-only): the key, the route-only flag, requests, failed requests, tokens, cost,
    baseline, then `percentiles` (extra select expressions, PostgreSQL's)."""
    key = group_key(group_by)
    extra = "".join(f", {expression}" for expression in percentiles)
    group = "1, 2" if group_by is not None else "2"
    return (
        f"SELECT {key} AS key, operation = '{ROUTE_ONLY}' AS route_only, COUNT(*), "
        "COALESCE(SUM(CASE WHEN status <> 'OK' THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
        "COALESCE(SUM(total_cost_nusd), 0), COALESCE(SUM(baseline_cost_nusd), 0)"
        f"{extra} FROM requests WHERE {where} GROUP BY {group}"
    )


def group_key(group_by: Grouping | None) -> str:
    """The column a report groups by; for the whole window (None), the constant ''."""
    return GROUP_COLUMNS[group_by] if group_by is not None else "''"


def records_query(dialect: Dialect, where: str) -> str:
    """Full request rows of a window, oldest first, at most (last parameter) many."""
    return (
        f"SELECT {request_columns(dialect)} FROM requests WHERE {where} "
        f"ORDER BY {dialect.time_column}, request_id LIMIT {dialect.marker}"
    )


def attempts_query(dialect: Dialect, count: int) -> str:
    """The attempt rows of `count` requests, in order."""
    return (
        f"SELECT {attempt_columns()} FROM attempts WHERE request_id IN ({dialect.markers(count)}) "
        "ORDER BY request_id, attempt_index"
    )


def records_arguments(start: datetime, end: datetime, limit: int) -> tuple[datetime, datetime]:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return require_utc(start, "start"), require_utc(end, "end")


def assemble_records(
    dialect: Dialect, rows: Sequence[Sequence[Any]], attempts: Sequence[Sequence[Any]]
) -> list[RequestRecord]:
    """`RequestRecord`s from `records_query` rows and their `attempts_query` rows."""
    by_request: dict[str, list[AttemptRecord]] = {}
    for row in attempts:
        by_request.setdefault(row[0], []).append(attempt_from_row(row))
    return [
        record_from_row(row, dialect.time_from_db(row[1]), by_request.get(row[0], ()))
        for row in rows
    ]
