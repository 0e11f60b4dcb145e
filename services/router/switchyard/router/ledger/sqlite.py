"""The embedded ledger: one SQLite file in WAL mode, the default for a single router.

No SQL runs on the event loop. All writes go through one writer thread that owns the only
writing connection (SQLite allows one writer at a time anyway); readers use their own
connections on a small thread pool, and WAL lets them read while the writer writes.

Group commit: records that arrive while the writer is busy are written together in one
transaction (`executemany`); when the database refuses one (duplicate id, a value out of
range), the batch is written again with each record inside its own SAVEPOINT, so the refused
record is rolled back alone and the others commit. Every `record()` returns only after the
COMMIT that holds its row, with `synchronous=FULL`, so a returned record survives a crash or a
power cut. `max_batch=1` gives one transaction per record (the benchmark compares both).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from switchyard.router.ledger import statements as sql
from switchyard.router.ledger.aggregate import (
    PERCENTILES,
    GroupTotals,
    build_report,
    build_rows,
    interpolate,
    percentile_ranks,
)
from switchyard.router.ledger.interface import LedgerError, LedgerUnavailable
from switchyard.router.ledger.outcome_store import OutcomeQueries
from switchyard.router.ledger.records import (
    ROUTE_ONLY,
    CostReport,
    CostReportRow,
    Grouping,
    RequestRecord,
    from_nanodollars,
    require_utc,
)
from switchyard.router.ledger.schema import (
    SQLITE,
    create_migrations_table,
    pending_migrations,
    record_migration,
)
from switchyard.runtime.logging import get_logger

__all__ = ["SqliteLedger"]

log = get_logger(__name__)

T = TypeVar("T")

_INSERT_REQUEST = sql.insert_request(SQLITE)
_INSERT_ATTEMPT = sql.insert_attempt(SQLITE)
#: A `requests` row's outcome in a batch: None (written) or why it was refused.
Outcome = ValueError | None


def _refused(record: RequestRecord, error: sqlite3.IntegrityError) -> ValueError:
    text = str(error)
    if "UNIQUE" in text and "requests.request_id" in text:
        return ValueError(f"request {record.request_id!r} is already in the ledger")
    return ValueError(f"the ledger refused request {record.request_id!r}: {text}")


class SqliteLedger(OutcomeQueries):
    """`CostLedger` (and `OutcomeStore`) on one SQLite file. Open it with
    `SqliteLedger.open(path)`."""

    _outcome_dialect = SQLITE

    def __init__(self, path: Path, *, max_batch: int, busy_timeout_s: float, readers: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if readers < 1:
            raise ValueError("readers must be at least 1")
        self.path = path
        self._max_batch = max_batch
        self._busy_timeout_s = busy_timeout_s
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(
            readers, thread_name_prefix="ledger-sqlite-reader", initializer=self._open_reader
        )
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._pending: list[tuple[RequestRecord, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        max_batch: int = 256,
        busy_timeout_s: float = 30.0,
        readers: int = 2,
    ) -> SqliteLedger:
        """Open (creating the file, its directories and the schema) the ledger at `path`."""
        ledger = cls(
            Path(path), max_batch=max_batch, busy_timeout_s=busy_timeout_s, readers=readers
        )
        try:
            await ledger._in_writer(ledger._open_writer)
        except BaseException:
            await ledger.close()
            raise
        log.info("ledger opened", backend="sqlite", path=str(ledger.path))
        return ledger

    # --- connections (each runs on its own thread) --------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # transactions are explicit
            check_same_thread=False,  # used by one thread; closed by close() from another
        )
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open_writer(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise LedgerUnavailable(f"cannot open the SQLite ledger at {self.path}: {exc}") from exc
        self._writer = conn
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerError(
                f"the SQLite ledger at {self.path} cannot use WAL mode (got {mode!r}); "
                "put it on a local filesystem"
            )
        conn.execute("PRAGMA synchronous = FULL")
        self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(create_migrations_table(SQLITE))
            [(current,)] = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            for migration in pending_migrations(current, SQLITE, f"SQLite ledger at {self.path}"):
                for statement in migration.statements:
                    conn.execute(statement)
                applied_at = SQLITE.time_to_db(datetime.now(UTC))
                conn.execute(
                    record_migration(SQLITE), (migration.version, migration.description, applied_at)
                )
                log.info("ledger migrated", backend="sqlite", version=migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _open_reader(self) -> None:
        conn = self._connect()
        conn.execute("PRAGMA query_only = ON")
        self._local.conn = conn
        with self._readers_lock:
            self._readers.append(conn)

    async def _in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn, *args)

    async def _in_reader(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise LedgerError("the ledger is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader_pool, fn, *args)
        except sqlite3.OperationalError as exc:  # locked past the timeout, I/O error, ...
            raise LedgerUnavailable(f"the SQLite ledger at {self.path} failed: {exc}") from None

    # --- writing ------------------------------------------------------------------------------

    async def record(self, record: RequestRecord) -> None:
        if not isinstance(record, RequestRecord):
            raise TypeError(f"record must be a RequestRecord, got {type(record).__name__}")
        if self._closed:
            raise LedgerError("the ledger is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="ledger-sqlite-flush")
        await future

    async def record_many(self, records: Sequence[RequestRecord]) -> list[Outcome]:
        """Write `records` in one transaction, each in its own SAVEPOINT; per record, None or
        the ValueError that refused it. LedgerUnavailable (nothing written) when the file
        cannot be written."""
        for record in records:
            if not isinstance(record, RequestRecord):
                raise TypeError(f"record must be a RequestRecord, got {type(record).__name__}")
        if self._closed:
            raise LedgerError("the ledger is closed")
        if not records:
            return []
        try:
            return await self._in_writer(self._write_batch, list(records))
        except Exception as exc:
            raise self._write_error(exc) from None

    def _write_error(self, exc: Exception) -> LedgerError:
        if isinstance(exc, LedgerError):
            return exc
        if isinstance(exc, sqlite3.OperationalError):  # locked past the timeout, I/O, read-only
            return LedgerUnavailable(f"the SQLite ledger at {self.path} failed to write: {exc}")
        return LedgerError(f"the SQLite ledger at {self.path} failed to write: {exc}")

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            records = [record for record, _ in batch]
            try:
                outcomes = await self._in_writer(self._write_batch, records)
            except Exception as exc:
                error = self._write_error(exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled; the row is written regardless
                    continue
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)

    def _write_batch(self, records: Sequence[RequestRecord]) -> list[Outcome]:
        """One transaction: all rows at once; if any is refused, again with one SAVEPOINT per
        record so only the refused ones are left out."""
        conn = self._writer
        if conn is None:
            raise LedgerError("the ledger is closed")
        rows = [sql.record_rows(SQLITE, record) for record in records]
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                conn.executemany(_INSERT_REQUEST, [request for request, _ in rows])
                conn.executemany(_INSERT_ATTEMPT, [a for _, attempts in rows for a in attempts])
                outcomes: list[Outcome] = [None] * len(rows)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                outcomes = [
                    self._write_one(conn, r, row) for r, row in zip(records, rows, strict=True)
                ]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    @staticmethod
    def _write_one(
        conn: sqlite3.Connection,
        record: RequestRecord,
        row: tuple[tuple[Any, ...], list[tuple[Any, ...]]],
    ) -> Outcome:
        request, attempts = row
        conn.execute("SAVEPOINT record")
        try:
            conn.execute(_INSERT_REQUEST, request)
            conn.executemany(_INSERT_ATTEMPT, attempts)
        except sqlite3.IntegrityError as error:
            conn.execute("ROLLBACK TO record")
            return _refused(record, error)
        finally:
            conn.execute("RELEASE record")
        return None

    async def _execute(self, sql_text: str, params: Sequence[Any]) -> None:
        """One statement in its own transaction on the writer thread (`OutcomeQueries`)."""
        if self._closed:
            raise LedgerError("the ledger is closed")

        def write() -> None:
            conn = self._writer
            if conn is None:
                raise LedgerError("the ledger is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(sql_text, tuple(params))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        try:
            await self._in_writer(write)
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"the ledger refused the row: {exc}") from None
        except Exception as exc:
            raise self._write_error(exc) from None

    # --- reading ------------------------------------------------------------------------------

    async def _fetch(self, sql_text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A read-only statement's rows, on a reader thread (`OutcomeQueries`)."""

        def query() -> list[tuple[Any, ...]]:
            return list(self._reader().execute(sql_text, tuple(params)).fetchall())

        return await self._in_reader(query)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = self._local.conn
        return conn

    async def existing_ids(self, request_ids: Collection[str]) -> set[str]:
        ids = list(dict.fromkeys(request_ids))

        def query() -> set[str]:
            found: set[str] = set()
            for chunk in sql.chunks(ids):
                rows = self._reader().execute(sql.existing_ids_query(SQLITE, len(chunk)), chunk)
                found.update(row[0] for row in rows.fetchall())
            return found

        return await self._in_reader(query) if ids else set()

    async def spend_since(
        self, tenant: str, since: datetime, exclude: Collection[str] = ()
    ) -> float:
        since_us = SQLITE.time_to_db(require_utc(since, "since"))
        # One JSON parameter, however many requests this router has pending.
        sql_text = (
            "SELECT COALESCE(SUM(total_cost_nusd), 0) FROM requests "
            "WHERE tenant = ? AND occurred_at_us >= ? "
            "AND request_id NOT IN (SELECT value FROM json_each(?))"
        )
        excluded = json.dumps(list(exclude))

        def query() -> int:
            # fetchall, not fetchone: a statement left unfinished keeps its read transaction
            # (and so a stale snapshot) open on this reader connection.
            [row] = self._reader().execute(sql_text, (tenant, since_us, excluded)).fetchall()
            return int(row[0])

        return from_nanodollars(await self._in_reader(query))

    async def report(
        self,
        start: datetime,
        end: datetime,
        group_by: Grouping,
        tenant: str | None = None,
    ) -> CostReport:
        start, end = sql.report_arguments(start, end, group_by)
        where, params = sql.window(SQLITE, start, end, tenant)

        def query() -> tuple[list[CostReportRow], list[CostReportRow]]:
            conn = self._reader()
            conn.execute("BEGIN")  # one snapshot for the rows and the total
            try:
                rows = self._aggregate(conn, group_by, where, params)
                total = self._aggregate(conn, None, where, params)
            finally:
                conn.execute("COMMIT")
            return rows, total

        rows, total = await self._in_reader(query)
        return build_report(start, end, group_by, tenant, rows, total)

    @staticmethod
    def _aggregate(
        conn: sqlite3.Connection, group_by: Grouping | None, where: str, params: tuple[Any, ...]
    ) -> list[CostReportRow]:
        totals = conn.execute(sql.totals_query(group_by, where), params).fetchall()
        # Only the latencies at the ranks each percentile interpolates between, per group and
        # kind of call.
        key = sql.group_key(group_by)
        partition = f"PARTITION BY {key}, operation = '{ROUTE_ONLY}'"
        rank_terms = " OR ".join(
            f"rn = CAST((n - 1) * {p!r} AS INTEGER) OR rn = CAST((n - 1) * {p!r} AS INTEGER) + 1"
            for p in PERCENTILES
        )
        ranked: dict[tuple[str, bool], dict[int, float]] = {}
        for group, route_only, rank, latency in conn.execute(
            f"SELECT key, route_only, rn, latency_ms FROM ("
            f"  SELECT {key} AS key, operation = '{ROUTE_ONLY}' AS route_only, latency_ms,"
            f"    ROW_NUMBER() OVER ({partition} ORDER BY latency_ms) - 1 AS rn,"
            f"    COUNT(*) OVER ({partition}) AS n"
            f"  FROM requests WHERE {where}"
            f") WHERE {rank_terms}",
            params,
        ):
            ranked.setdefault((group, bool(route_only)), {})[rank] = latency
        parts = []
        for group, route_only, *sums in totals:
            values = ranked[(group, bool(route_only))]
            quantiles = []
            for p in PERCENTILES:
                lower, upper, fraction = percentile_ranks(int(sums[0]), p)
                quantiles.append(interpolate(values[lower], values[upper], fraction))
            parts.append(
                GroupTotals(group, bool(route_only), *(int(value) for value in sums), *quantiles)
            )
        return build_rows(parts)

    async def records(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        limit: int = 1000,
    ) -> list[RequestRecord]:
        start, end = sql.records_arguments(start, end, limit)
        where, params = sql.window(SQLITE, start, end, tenant)

        def query() -> list[RequestRecord]:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                rows = conn.execute(sql.records_query(SQLITE, where), (*params, limit)).fetchall()
                attempts: list[Any] = []
                for chunk in sql.chunks([row[0] for row in rows]):
                    attempts += conn.execute(sql.attempts_query(SQLITE, len(chunk)), chunk)
            finally:
                conn.execute("COMMIT")
            return sql.assemble_records(SQLITE, rows, attempts)

        return await self._in_reader(query)

    # --- closing ------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer_pool, writer.close)
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
