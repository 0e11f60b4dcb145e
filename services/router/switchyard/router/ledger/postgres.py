"""The shared ledger: PostgreSQL through psycopg 3's async connection pool, for several routers.

Every router replica opens its own pool on the same database; each `record()` is one
transaction on a pooled connection, committed (PostgreSQL's default `synchronous_commit=on`:
flushed to the WAL) before it returns, so concurrent replicas simply insert side by side.
Schema migrations take a transaction-scoped advisory lock, so replicas starting together apply
each migration once. Percentiles are PostgreSQL's own `percentile_cont`.

The DSN's password never appears in errors or logs: they name the database as
`user@host:port/dbname`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from switchyard.router.ledger.aggregate import (
    GROUP_COLUMNS,
    PERCENTILES,
    GroupTotals,
    build_row,
    sort_rows,
)
from switchyard.router.ledger.interface import LedgerError, LedgerUnavailable
from switchyard.router.ledger.records import (
    AttemptRecord,
    CostReport,
    CostReportRow,
    Grouping,
    RequestRecord,
    attempt_from_row,
    attempt_rows,
    from_nanodollars,
    record_from_row,
    request_row,
    require_utc,
)
from switchyard.router.ledger.schema import MIGRATIONS_TABLE, POSTGRES_MIGRATIONS, SCHEMA_VERSION
from switchyard.runtime.logging import get_logger

__all__ = ["PostgresLedger", "describe_dsn"]

log = get_logger(__name__)

# pg_advisory_xact_lock key for migrations: "SWYDLDGR" as a 64-bit integer.
_MIGRATION_LOCK = 0x535759444C444752

_INSERT_REQUEST = """
INSERT INTO requests (
    request_id, occurred_at, tenant, task_type, complexity, target, target_kind, model,
    reason, escalation_score, status, classifier_cost_nusd, total_cost_nusd, latency_ms,
    input_tokens, output_tokens, baseline_cost_nusd
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_INSERT_ATTEMPT = """
INSERT INTO attempts (
    request_id, attempt_index, target, backend, model, status, latency_ms, cost_nusd,
    input_tokens, output_tokens
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_REQUEST_COLUMNS = (
    "request_id, occurred_at, tenant, task_type, complexity, target, target_kind, model, "
    "reason, escalation_score, status, classifier_cost_nusd, total_cost_nusd, latency_ms, "
    "input_tokens, output_tokens, baseline_cost_nusd"
)
_ATTEMPT_COLUMNS = (
    "request_id, attempt_index, target, backend, model, status, latency_ms, cost_nusd, "
    "input_tokens, output_tokens"
)


def describe_dsn(dsn: str) -> str:
    """`user@host:port/dbname` of a DSN, without its password (for errors and logs)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable PostgreSQL DSN>"
    user = str(parts.get("user") or "")
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    dbname = str(parts.get("dbname") or "")
    return f"{user + '@' if user else ''}{host}:{port}/{dbname}"


def _scrub(message: str, dsn: str) -> str:
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return message


class PostgresLedger:
    """`CostLedger` on PostgreSQL. Open it with `PostgresLedger.open(dsn)`."""

    def __init__(self, dsn: str, pool: AsyncConnectionPool) -> None:
        self._dsn = dsn
        self._pool = pool
        self._closed = False
        self.name = describe_dsn(dsn)

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        pool_size: int = 10,
        connect_timeout_s: float = 10.0,
    ) -> PostgresLedger:
        """Connect, apply missing migrations, and open a pool of up to `pool_size` connections."""
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        name = describe_dsn(dsn)
        try:
            # A direct first connection: its error (bad password, no such database) is precise,
            # where a pool would only time out.
            conn = await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, connect_timeout=max(1, round(connect_timeout_s))
            )
        except psycopg.Error as exc:
            raise LedgerUnavailable(
                f"cannot connect to the PostgreSQL ledger {name}: {_scrub(str(exc), dsn)}"
            ) from None
        try:
            await _migrate(conn, name)
        finally:
            await conn.close()
        pool = AsyncConnectionPool(
            dsn,
            kwargs={"autocommit": True},
            min_size=min(2, pool_size),
            max_size=pool_size,
            open=False,
            timeout=connect_timeout_s,
            check=AsyncConnectionPool.check_connection,
            name="switchyard-ledger",
        )
        try:
            await pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout:
            await pool.close()
            raise LedgerUnavailable(
                f"cannot open a connection pool to the PostgreSQL ledger {name}"
            ) from None
        log.info("ledger opened", backend="postgresql", database=name, pool_size=pool_size)
        return cls(dsn, pool)

    def _unavailable(self, exc: BaseException) -> LedgerUnavailable:
        return LedgerUnavailable(
            f"the PostgreSQL ledger {self.name} is unavailable: {_scrub(str(exc), self._dsn)}"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError("the ledger is closed")

    async def record(self, record: RequestRecord) -> None:
        if not isinstance(record, RequestRecord):
            raise TypeError(f"record must be a RequestRecord, got {type(record).__name__}")
        self._check_open()
        request = request_row(record, record.time)
        attempts = attempt_rows(record)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(_INSERT_REQUEST, request)
                if attempts:
                    async with conn.cursor() as cursor:
                        await cursor.executemany(_INSERT_ATTEMPT, attempts)
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "requests_pkey":
                raise ValueError(
                    f"request {record.request_id!r} is already in the ledger"
                ) from None
            raise ValueError(f"the ledger refused request {record.request_id!r}: {exc}") from None
        except psycopg.errors.IntegrityError as exc:
            raise ValueError(f"the ledger refused request {record.request_id!r}: {exc}") from None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None

    async def spend_since(
        self, tenant: str, since: datetime, exclude: Collection[str] = ()
    ) -> float:
        self._check_open()
        since = require_utc(since, "since")
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT COALESCE(SUM(total_cost_nusd), 0) FROM requests "
                    "WHERE tenant = %s AND occurred_at >= %s AND request_id <> ALL(%s)",
                    (tenant, since, list(exclude)),
                )
                row = await cursor.fetchone()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None
        assert row is not None
        return from_nanodollars(int(row[0]))

    async def report(
        self,
        start: datetime,
        end: datetime,
        group_by: Grouping,
        tenant: str | None = None,
    ) -> CostReport:
        self._check_open()
        start = require_utc(start, "start")
        end = require_utc(end, "end")
        if end <= start:
            raise ValueError("end must be after start")
        if not isinstance(group_by, Grouping):
            raise ValueError(f"group_by must be a Grouping, got {group_by!r}")
        where: sql.Composable = sql.SQL("occurred_at >= %s AND occurred_at < %s")
        params: tuple[Any, ...] = (start, end)
        if tenant is not None:
            where = sql.SQL("{} AND tenant = %s").format(where)
            params += (tenant,)
        column = sql.Identifier(GROUP_COLUMNS[group_by])
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                rows = await _aggregate(conn, column, where, params, grouped=True)
                total = await _aggregate(conn, sql.Literal(""), where, params, grouped=False)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None
        return CostReport(
            start=start,
            end=end,
            group_by=group_by,
            tenant=tenant,
            rows=sort_rows(rows),
            total=total[0],
        )

    async def records(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        limit: int = 1000,
    ) -> list[RequestRecord]:
        self._check_open()
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where = "occurred_at >= %s AND occurred_at < %s"
        params: tuple[Any, ...] = (require_utc(start, "start"), require_utc(end, "end"))
        if tenant is not None:
            where += " AND tenant = %s"
            params += (tenant,)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor = await conn.execute(
                    f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE {where} "  # noqa: S608
                    "ORDER BY occurred_at, request_id LIMIT %s",
                    (*params, limit),
                )
                rows = await cursor.fetchall()
                ids = [row[0] for row in rows]
                cursor = await conn.execute(
                    f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE request_id = ANY(%s) "
                    "ORDER BY request_id, attempt_index",
                    (ids,),
                )
                attempt_rows = await cursor.fetchall()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None
        attempts: dict[str, list[AttemptRecord]] = {}
        for a in attempt_rows:
            attempts.setdefault(a[0], []).append(attempt_from_row(a))
        return [record_from_row(r, r[1].astimezone(UTC), attempts.get(r[0], ())) for r in rows]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()


async def _migrate(conn: psycopg.AsyncConnection[Any], name: str) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(MIGRATIONS_TABLE))
        )
        cursor = await conn.execute(
            sql.SQL("SELECT COALESCE(MAX(version), 0) FROM {}").format(
                sql.Identifier(MIGRATIONS_TABLE)
            )
        )
        row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise LedgerError(
                f"the PostgreSQL ledger {name} has schema version {current}, newer than this "
                f"router supports ({SCHEMA_VERSION}); upgrade the router"
            )
        for migration in POSTGRES_MIGRATIONS:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                await conn.execute(statement)  # type: ignore[arg-type]
            await conn.execute(
                sql.SQL("INSERT INTO {} (version, description) VALUES (%s, %s)").format(
                    sql.Identifier(MIGRATIONS_TABLE)
                ),
                (migration.version, migration.description),
            )
            log.info("ledger migrated", backend="postgresql", version=migration.version)


async def _aggregate(
    conn: psycopg.AsyncConnection[Any],
    key: sql.Composable,
    where: sql.Composable,
    params: tuple[Any, ...],
    *,
    grouped: bool,
) -> list[CostReportRow]:
    query = sql.SQL(
        "SELECT {key}, count(*), count(*) FILTER (WHERE status <> 'OK'), "
        "COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0), "
        "COALESCE(sum(total_cost_nusd), 0), COALESCE(sum(baseline_cost_nusd), 0), "
        "{percentiles} FROM requests WHERE {where}{group}"
    ).format(
        key=key,
        percentiles=sql.SQL(", ").join(
            sql.SQL("percentile_cont({}) WITHIN GROUP (ORDER BY latency_ms)").format(sql.Literal(p))
            for p in PERCENTILES
        ),
        where=where,
        group=sql.SQL(" GROUP BY 1") if grouped else sql.SQL(""),
    )
    cursor = await conn.execute(query, params)
    rows = []
    for row in await cursor.fetchall():
        totals = GroupTotals(str(row[0]), *(int(value) for value in row[1:7]))
        rows.append(build_row(totals, *row[7:]))
    return rows
