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

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from switchyard.router.ledger import statements as sql
from switchyard.router.ledger.aggregate import (
    PERCENTILES,
    GroupTotals,
    build_report,
    build_rows,
)
from switchyard.router.ledger.interface import LedgerError, LedgerUnavailable
from switchyard.router.ledger.outcome_store import OutcomeQueries
from switchyard.router.ledger.records import (
    CostReport,
    CostReportRow,
    Grouping,
    RequestRecord,
    from_nanodollars,
    require_utc,
)
from switchyard.router.ledger.schema import (
    POSTGRESQL,
    create_migrations_table,
    pending_migrations,
    record_migration,
)
from switchyard.runtime.logging import get_logger

__all__ = ["PostgresLedger", "describe_dsn"]

log = get_logger(__name__)

# pg_advisory_xact_lock key for migrations: "SWYDLDGR" as a 64-bit integer.
_MIGRATION_LOCK = 0x535759444C444752

_INSERT_REQUEST = sql.insert_request(POSTGRESQL)
_INSERT_ATTEMPT = sql.insert_attempt(POSTGRESQL)
_PERCENTILES = tuple(
    f"percentile_cont({p!r}) WITHIN GROUP (ORDER BY latency_ms)" for p in PERCENTILES
)
#: A `requests` row's outcome in a batch: None (written) or why it was refused.
Outcome = ValueError | None


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


def _refused(record: RequestRecord, exc: psycopg.errors.IntegrityError) -> ValueError:
    if (
        isinstance(exc, psycopg.errors.UniqueViolation)
        and exc.diag.constraint_name == "requests_pkey"
    ):
        return ValueError(f"request {record.request_id!r} is already in the ledger")
    return ValueError(f"the ledger refused request {record.request_id!r}: {exc}")


def _scrub(message: str, dsn: str) -> str:
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return message


class PostgresLedger(OutcomeQueries):
    """`CostLedger` (and `OutcomeStore`) on PostgreSQL. Open it with `PostgresLedger.open(dsn)`."""

    _outcome_dialect = POSTGRESQL

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
        [outcome] = await self.record_many([record])
        if outcome is not None:
            raise outcome

    async def record_many(self, records: Sequence[RequestRecord]) -> list[Outcome]:
        """Write `records` in one transaction; per record, None or the ValueError that refused
        it. LedgerUnavailable (nothing written, or the outcome of COMMIT unknown) when the
        database cannot be reached."""
        self._check_open()
        rows = [sql.record_rows(POSTGRESQL, record) for record in records]
        if not rows:
            return []
        try:
            async with self._pool.connection() as conn:
                try:
                    async with conn.transaction(), conn.cursor() as cursor:
                        await cursor.executemany(_INSERT_REQUEST, [request for request, _ in rows])
                        attempts = [attempt for _, some in rows for attempt in some]
                        if attempts:
                            await cursor.executemany(_INSERT_ATTEMPT, attempts)
                    return [None] * len(rows)
                except psycopg.errors.IntegrityError:
                    pass  # one of them is refused: write each in its own savepoint
                outcomes: list[Outcome] = []
                async with conn.transaction():
                    for record, (request, attempts) in zip(records, rows, strict=True):
                        try:
                            async with conn.transaction(), conn.cursor() as cursor:
                                await cursor.execute(_INSERT_REQUEST, request)
                                if attempts:
                                    await cursor.executemany(_INSERT_ATTEMPT, attempts)
                        except psycopg.errors.IntegrityError as exc:
                            outcomes.append(_refused(record, exc))
                        else:
                            outcomes.append(None)
                return outcomes
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None

    async def _fetch(self, sql_text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A read-only statement's rows (`OutcomeQueries`)."""
        self._check_open()
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(sql_text, list(params))
                return list(await cursor.fetchall())
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None

    async def _execute(self, sql_text: str, params: Sequence[Any]) -> None:
        """One statement, committed when this returns (autocommit; `OutcomeQueries`)."""
        self._check_open()
        try:
            async with self._pool.connection() as conn:
                await conn.execute(sql_text, list(params))
        except psycopg.errors.IntegrityError as exc:
            raise ValueError(f"the ledger refused the row: {_scrub(str(exc), self._dsn)}") from None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None

    async def existing_ids(self, request_ids: Collection[str]) -> set[str]:
        self._check_open()
        ids = list(dict.fromkeys(request_ids))
        found: set[str] = set()
        try:
            async with self._pool.connection() as conn:
                for chunk in sql.chunks(ids):
                    cursor = await conn.execute(
                        sql.existing_ids_query(POSTGRESQL, len(chunk)), chunk
                    )
                    found.update(row[0] for row in await cursor.fetchall())
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None
        return found

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
        start, end = sql.report_arguments(start, end, group_by)
        where, params = sql.window(POSTGRESQL, start, end, tenant)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                rows = await _aggregate(conn, group_by, where, params)
                total = await _aggregate(conn, None, where, params)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None
        return build_report(start, end, group_by, tenant, rows, total)

    async def records(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        limit: int = 1000,
    ) -> list[RequestRecord]:
        self._check_open()
        start, end = sql.records_arguments(start, end, limit)
        where, params = sql.window(POSTGRESQL, start, end, tenant)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor = await conn.execute(sql.records_query(POSTGRESQL, where), (*params, limit))
                rows = await cursor.fetchall()
                attempts: list[Any] = []
                for chunk in sql.chunks([row[0] for row in rows]):
                    cursor = await conn.execute(sql.attempts_query(POSTGRESQL, len(chunk)), chunk)
                    attempts += await cursor.fetchall()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from None
        return sql.assemble_records(POSTGRESQL, rows, attempts)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()


async def _migrate(conn: psycopg.AsyncConnection[Any], name: str) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(create_migrations_table(POSTGRESQL))
        cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        for migration in pending_migrations(current, POSTGRESQL, f"PostgreSQL ledger {name}"):
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute(
                record_migration(POSTGRESQL),
                (migration.version, migration.description, datetime.now(UTC)),
            )
            log.info("ledger migrated", backend="postgresql", version=migration.version)


async def _aggregate(
    conn: psycopg.AsyncConnection[Any],
    group_by: Grouping | None,
    where: str,
    params: tuple[Any, ...],
) -> list[CostReportRow]:
    cursor = await conn.execute(sql.totals_query(group_by, where, _PERCENTILES), params)
    parts = [
        GroupTotals(str(row[0]), bool(row[1]), *(int(value) for value in row[2:8]), *row[8:])
        for row in await cursor.fetchall()
    ]
    return build_rows(parts)
