"""One suite, run against both ledger backends: SQLite on a file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from router_ledger_data import (
    T0,
    WINDOW_END,
    WINDOW_START,
    dataset,
    make_record,
    reference_report,
)

from switchyard.router.ledger import (
    AttemptRecord,
    CostLedger,
    CostReportRow,
    Grouping,
    LedgerError,
    open_ledger,
)
from switchyard.router.ledger.schema import (
    POSTGRESQL,
    REQUEST_COLUMNS,
    SCHEMA_VERSION,
    SQLITE,
    create_migrations_table,
    migrations,
)

ROW_FIELDS = (
    "requests",
    "failed_requests",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "saving_usd",
)


def assert_row(row: CostReportRow, expected: dict[str, float]) -> None:
    for name in ROW_FIELDS:  # integers and nano-dollar sums: exact
        assert getattr(row, name) == expected[name], name
    # numpy interpolates with a slightly different formula: equal up to rounding.
    assert row.latency_p50_ms == pytest.approx(expected["latency_p50_ms"], rel=1e-12)
    assert row.latency_p95_ms == pytest.approx(expected["latency_p95_ms"], rel=1e-12)
    # route-only calls: apart, neither among the requests nor in their latency
    routed = row.route_only
    assert (routed.requests, routed.failed_requests, routed.cost_usd) == (
        expected["route_requests"],
        expected["route_failed_requests"],
        expected["route_cost_usd"],
    )
    assert routed.latency_p50_ms == pytest.approx(expected["route_latency_p50_ms"], rel=1e-12)
    assert routed.latency_p95_ms == pytest.approx(expected["route_latency_p95_ms"], rel=1e-12)


async def record_all(ledger: CostLedger, records: list) -> None:
    await asyncio.gather(*(ledger.record(r) for r in records))


async def test_records_round_trip_with_attempts(ledger: CostLedger) -> None:
    plain = make_record("r-1", time=T0 + timedelta(microseconds=123456))
    fallback = make_record("r-2", target=2, fallback_from=0, time=T0 + timedelta(seconds=1))
    no_attempts = dataclasses.replace(
        make_record("r-3", time=T0 + timedelta(seconds=2), status="RESOURCE_EXHAUSTED"),
        attempts=(),
        total_cost_usd=0.000012,
        complexity=None,
        escalation_score=None,
        task_type="",
    )
    for record in (plain, fallback, no_attempts):
        await ledger.record(record)

    stored = await ledger.records(T0, T0 + timedelta(hours=1))
    assert [r.request_id for r in stored] == ["r-1", "r-2", "r-3"]
    for got, want in zip(stored, (plain, fallback, no_attempts), strict=True):
        assert got.time == want.time and got.time.tzinfo is not None
        assert len(got.attempts) == len(want.attempts)
        money = ("classifier_cost_usd", "total_cost_usd", "baseline_cost_usd")
        for field in dataclasses.fields(want):
            if field.name in (*money, "attempts"):
                continue
            assert getattr(got, field.name) == getattr(want, field.name), field.name
        for name in money:  # stored in nano-dollars
            assert getattr(got, name) == pytest.approx(getattr(want, name), abs=1e-9)
        for got_a, want_a in zip(got.attempts, want.attempts, strict=True):
            assert dataclasses.replace(got_a, cost_usd=0.0) == dataclasses.replace(
                want_a, cost_usd=0.0
            )
            assert got_a.cost_usd == pytest.approx(want_a.cost_usd, abs=1e-9)
    assert [a.status for a in stored[1].attempts] == ["UNAVAILABLE", "OK"]
    assert await ledger.records(T0, T0 + timedelta(hours=1), tenant="nobody") == []
    assert len(await ledger.records(T0, T0 + timedelta(hours=1), limit=2)) == 2


@pytest.mark.parametrize("grouping", list(Grouping), ids=lambda g: g.name)
async def test_report_matches_reference(ledger: CostLedger, grouping: Grouping) -> None:
    records = dataset()
    await record_all(ledger, records)
    report = await ledger.report(WINDOW_START, WINDOW_END, grouping)

    expected_rows, expected_total = reference_report(records, grouping)
    assert expected_total is not None and expected_total["route_requests"] > 10
    assert {row.key for row in report.rows} == set(expected_rows)
    for row in report.rows:
        assert_row(row, expected_rows[row.key])
    assert report.total.key == ""
    assert expected_total is not None
    assert_row(report.total, expected_total)
    costs = [(row.cost_usd, row.key) for row in report.rows]
    assert costs == sorted(costs, key=lambda c: (-c[0], c[1])), "most expensive first"
    assert (report.start, report.end, report.group_by, report.tenant) == (
        WINDOW_START,
        WINDOW_END,
        grouping,
        None,
    )


async def test_report_limited_to_a_tenant(ledger: CostLedger) -> None:
    records = dataset()
    await record_all(ledger, records)
    report = await ledger.report(WINDOW_START, WINDOW_END, Grouping.TENANT, tenant="globex")
    assert [row.key for row in report.rows] == ["globex"]
    expected_rows, expected_total = reference_report(records, Grouping.MODEL, tenant="globex")
    by_model = await ledger.report(WINDOW_START, WINDOW_END, Grouping.MODEL, tenant="globex")
    assert {row.key for row in by_model.rows} == set(expected_rows)
    for row in by_model.rows:
        assert_row(row, expected_rows[row.key])
    assert expected_total is not None
    assert_row(report.total, expected_total)
    assert_row(report.rows[0], expected_total)


async def test_empty_window_reports_zeros(ledger: CostLedger) -> None:
    await ledger.record(make_record("r-1", time=T0))
    report = await ledger.report(T0 + timedelta(days=10), T0 + timedelta(days=11), Grouping.MODEL)
    assert report.rows == ()
    assert report.total == CostReportRow("", 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)


async def test_single_request_percentiles_are_its_latency(ledger: CostLedger) -> None:
    await ledger.record(make_record("r-1", time=T0, latency_ms=42.25))
    report = await ledger.report(T0, T0 + timedelta(seconds=1), Grouping.TARGET)
    assert report.total.latency_p50_ms == report.total.latency_p95_ms == 42.25


async def test_report_rejects_a_bad_window(ledger: CostLedger) -> None:
    with pytest.raises(ValueError, match="after start"):
        await ledger.report(T0, T0, Grouping.MODEL)
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.report(datetime(2026, 1, 1), T0, Grouping.MODEL)  # noqa: DTZ001


async def test_spend_since_sums_a_tenants_cost(ledger: CostLedger) -> None:
    records = dataset()
    await record_all(ledger, records)
    since = T0 + timedelta(hours=12)
    for tenant in ("acme", "globex", "nobody"):
        spent = [r.total_cost_usd for r in records if r.tenant == tenant and r.time >= since]
        expected = sum(round(cost * 1e9) for cost in spent) / 1e9
        assert await ledger.spend_since(tenant, since) == expected
    # a different zone names the same instant
    plus_two = since.astimezone(timezone(timedelta(hours=2)))
    assert await ledger.spend_since("acme", plus_two) == await ledger.spend_since("acme", since)
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.spend_since("acme", datetime(2026, 1, 1))  # noqa: DTZ001
    # the router counts its own not-yet-confirmed records itself: they can be left out by id
    acme = [r for r in records if r.tenant == "acme" and r.time >= since]
    left_out = [r.request_id for r in acme[:2]]
    kept = sum(round(r.total_cost_usd * 1e9) for r in acme[2:]) / 1e9
    assert await ledger.spend_since("acme", since, left_out) == kept
    assert await ledger.spend_since("acme", since, ["no-such-id"]) == await ledger.spend_since(
        "acme", since
    )


async def test_duplicate_request_id_is_refused_and_changes_nothing(ledger: CostLedger) -> None:
    first = make_record("dup", time=T0, tenant="acme")
    await ledger.record(first)
    second = make_record("dup", time=T0, tenant="globex", target=2, fallback_from=0)
    with pytest.raises(ValueError, match="already in the ledger"):
        await ledger.record(second)
    [stored] = await ledger.records(T0, T0 + timedelta(seconds=1))
    assert stored.tenant == "acme" and len(stored.attempts) == 1
    assert await ledger.spend_since("globex", T0) == 0.0


async def test_a_refused_attempt_leaves_nothing_of_its_request(ledger: CostLedger) -> None:
    """One transaction per record: the database refuses the second attempt row (a negative
    cost smuggled past validation), so the request row written before it is rolled back."""
    record = make_record("atomic", time=T0, target=2, fallback_from=0)
    bad_attempt = record.attempts[1]
    object.__setattr__(bad_attempt, "cost_usd", -1.0)  # what validation would have refused
    with pytest.raises(ValueError, match="refused"):
        await ledger.record(record)
    assert await ledger.records(T0, T0 + timedelta(seconds=1)) == []
    # the ledger goes on working, and the id is still free
    await ledger.record(make_record("atomic", time=T0))
    assert len(await ledger.records(T0, T0 + timedelta(seconds=1))) == 1


async def test_many_concurrent_writers(ledger: CostLedger) -> None:
    records = [
        make_record(f"c-{i}", time=T0 + timedelta(milliseconds=i), tenant=f"t{i % 4}")
        for i in range(400)
    ]
    await record_all(ledger, records)
    report = await ledger.report(T0, T0 + timedelta(hours=1), Grouping.TENANT)
    assert report.total.requests == 400
    assert {row.key: row.requests for row in report.rows} == {f"t{i}": 100 for i in range(4)}
    expected = sum(round(r.total_cost_usd * 1e9) for r in records) / 1e9
    assert report.total.cost_usd == expected


async def test_reopening_keeps_data_and_applies_no_migration_twice(ledger_url: str) -> None:
    first = await open_ledger(ledger_url)
    try:
        await first.record(make_record("persisted", time=T0))
    finally:
        await first.close()
    second = await open_ledger(ledger_url)
    try:
        [stored] = await second.records(T0, T0 + timedelta(seconds=1))
        assert stored.request_id == "persisted"
        assert await _schema_versions(ledger_url) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await second.close()


async def test_version_1_rows_get_their_operation_when_migrated(ledger_url: str) -> None:
    """A ledger written before route-only calls were kept apart: its successful requests
    without attempts were Route calls, everything else a completion."""
    dialect = SQLITE if ledger_url.startswith("sqlite") else POSTGRESQL
    version_1 = migrations(dialect)[0]
    applied_at = "0" if dialect is SQLITE else "now()"
    statements = [
        create_migrations_table(dialect),
        *version_1.statements,
        f"INSERT INTO schema_migrations VALUES (1, 'requests and attempts', {applied_at})",
    ]
    time_ = int(T0.timestamp() * 1e6) if dialect is SQLITE else f"'{T0.isoformat()}'"
    columns = ", ".join(dialect.column(c.name) for c in REQUEST_COLUMNS[:17])  # version 1
    for request_id, status in (
        ("routed", "OK"),
        ("answered", "OK"),
        ("refused", "INVALID_ARGUMENT"),
    ):
        statements.append(
            f"INSERT INTO requests ({columns}) VALUES ('{request_id}', {time_}, 'acme', 'MATH', "
            f"NULL, 'local', 'LOCAL', 'm', 'BELOW_THRESHOLD', NULL, '{status}', 0, 0, 1.0, 0, 0, 0)"
        )
    statements.append(
        "INSERT INTO attempts VALUES ('answered', 0, 'local', 'b', 'm', 'OK', 1.0, 0, 0, 0)"
    )
    if dialect is SQLITE:
        Path(ledger_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)
    for statement in statements:
        await _execute(ledger_url, statement)
    ledger = await open_ledger(ledger_url)
    try:
        records = await ledger.records(T0, T0 + timedelta(1))
        stored = {r.request_id: r.operation for r in records}
        assert stored == {"routed": "route", "answered": "complete", "refused": "complete"}
        # version 3: no model version or prompt length known for rows written before it
        assert {(r.classifier_model_version, r.prompt_chars) for r in records} == {("", 0)}
        assert await _schema_versions(ledger_url) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await ledger.close()


async def test_a_newer_schema_is_refused(ledger_url: str) -> None:
    await (await open_ledger(ledger_url)).close()
    applied_at = "0" if ledger_url.startswith("sqlite") else "now()"
    await _execute(
        ledger_url, f"INSERT INTO schema_migrations VALUES (99, 'from the future', {applied_at})"
    )
    with pytest.raises(LedgerError, match="schema version 99"):
        await open_ledger(ledger_url)


async def test_a_closed_ledger_refuses_work(ledger_url: str) -> None:
    opened = await open_ledger(ledger_url)
    await opened.close()
    await opened.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        await opened.record(make_record("late", time=T0))


async def test_records_validate_before_reaching_a_backend() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_record("naive", time=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="non-negative"):
        AttemptRecord("local", "local-inference", "m", "OK", 1.0, -0.01, 1, 1)
    assert make_record("utc", time=datetime(2026, 1, 1, tzinfo=UTC)).time.tzinfo is UTC


# --- direct database access for the schema tests ---------------------------------------------


async def _schema_versions(url: str) -> list[int]:
    rows = await _query(url, "SELECT version FROM schema_migrations ORDER BY version")
    return [int(row[0]) for row in rows]


async def _query(url: str, statement: str) -> list[tuple]:
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite://"))) as conn:
            return conn.execute(statement).fetchall()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(statement)  # type: ignore[arg-type]
        return await cursor.fetchall()


async def _execute(url: str, statement: str) -> None:
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite://"))) as conn, conn:
            conn.execute(statement)
        return
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(statement)  # type: ignore[arg-type]
