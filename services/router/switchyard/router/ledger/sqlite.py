"""The embedded ledger: one SQLite file in WAL mode, the default for a single router.

No SQL runs on the event loop. All writes go through one writer thread that owns the only
writing connection (SQLite allows one writer at a time anyway); readers use their own
connections on a small thread pool, and WAL lets them read while the writer writes.

Group commit: records that arrive while the writer is busy are written together in one
transaction, each inside its own SAVEPOINT, so a refused record (duplicate id, a value out of
range) is rolled back alone and the others commit. Every `record()` returns only after the
COMMIT that holds its row, with `synchronous=FULL`, so a returned record survives a crash or a
power cut. `max_batch=1` gives one transaction per record (the benchmark compares both).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from switchyard.router.ledger.aggregate import (
    GROUP_COLUMNS,
    PERCENTILES,
    GroupTotals,
    build_row,
    interpolate,
    percentile_ranks,
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
from switchyard.router.ledger.schema import MIGRATIONS_TABLE, SCHEMA_VERSION, SQLITE_MIGRATIONS
from switchyard.runtime.logging import get_logger

__all__ = ["SqliteLedger"]

log = get_logger(__name__)

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_INSERT_REQUEST = """
INSERT INTO requests (
    request_id, occurred_at_us, tenant, task_type, complexity, target, target_kind, model,
    reason, escalation_score, status, classifier_cost_nusd, total_cost_nusd, latency_ms,
    input_tokens, output_tokens, baseline_cost_nusd
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_ATTEMPT = """
INSERT INTO attempts (
    request_id, attempt_index, target, backend, model, status, latency_ms, cost_nusd,
    input_tokens, output_tokens
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_REQUEST_COLUMNS = (
    "request_id, occurred_at_us, tenant, task_type, complexity, target, target_kind, model, "
    "reason, escalation_score, status, classifier_cost_nusd, total_cost_nusd, latency_ms, "
    "input_tokens, output_tokens, baseline_cost_nusd"
)
_ATTEMPT_COLUMNS = (
    "request_id, attempt_index, target, backend, model, status, latency_ms, cost_nusd, "
    "input_tokens, output_tokens"
)


def _to_us(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _refused(record: RequestRecord, error: sqlite3.IntegrityError) -> ValueError:
    text = str(error)
    if "UNIQUE" in text and "requests.request_id" in text:
        return ValueError(f"request {record.request_id!r} is already in the ledger")
    return ValueError(f"the ledger refused request {record.request_id!r}: {text}")


class SqliteLedger:
    """`CostLedger` on one SQLite file. Open it with `SqliteLedger.open(path)`."""

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
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "applied_at_us INTEGER NOT NULL)"
            )
            current = conn.execute(f"SELECT MAX(version) FROM {MIGRATIONS_TABLE}").fetchone()[0]
            current = current or 0
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"the SQLite ledger at {self.path} has schema version {current}, newer than "
                    f"this router supports ({SCHEMA_VERSION}); upgrade the router"
                )
            for migration in SQLITE_MIGRATIONS:
                if migration.version <= current:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, description, applied_at_us) "
                    "VALUES (?, ?, ?)",
                    (migration.version, migration.description, _to_us(datetime.now(UTC))),
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

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            records = [record for record, _ in batch]
            try:
                outcomes = await self._in_writer(self._write_batch, records)
            except Exception as exc:
                if isinstance(exc, LedgerError):
                    error: LedgerError = exc
                elif isinstance(exc, sqlite3.OperationalError):  # locked past the timeout, I/O
                    error = LedgerUnavailable(
                        f"the SQLite ledger at {self.path} failed to write: {exc}"
                    )
                else:
                    error = LedgerError(f"the SQLite ledger at {self.path} failed to write: {exc}")
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

    def _write_batch(self, records: Sequence[RequestRecord]) -> list[ValueError | None]:
        conn = self._writer
        if conn is None:
            raise LedgerError("the ledger is closed")
        outcomes: list[ValueError | None] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                conn.execute("SAVEPOINT record")
                try:
                    conn.execute(_INSERT_REQUEST, request_row(record, _to_us(record.time)))
                    conn.executemany(_INSERT_ATTEMPT, attempt_rows(record))
                except sqlite3.IntegrityError as error:
                    conn.execute("ROLLBACK TO record")
                    outcomes.append(_refused(record, error))
                else:
                    outcomes.append(None)
                conn.execute("RELEASE record")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    # --- reading ------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = self._local.conn
        return conn

    async def spend_since(
        self, tenant: str, since: datetime, exclude: Collection[str] = ()
    ) -> float:
        since_us = _to_us(require_utc(since, "since"))
        excluded = tuple(exclude)
        sql = (
            "SELECT COALESCE(SUM(total_cost_nusd), 0) FROM requests "
            "WHERE tenant = ? AND occurred_at_us >= ?"
        )
        if excluded:
            sql += f" AND request_id NOT IN ({', '.join('?' * len(excluded))})"

        def query() -> int:
            # fetchall, not fetchone: a statement left unfinished keeps its read transaction
            # (and so a stale snapshot) open on this reader connection.
            [row] = self._reader().execute(sql, (tenant, since_us, *excluded)).fetchall()
            return int(row[0])

        return from_nanodollars(await self._in_reader(query))

    async def report(
        self,
        start: datetime,
        end: datetime,
        group_by: Grouping,
        tenant: str | None = None,
    ) -> CostReport:
        start = require_utc(start, "start")
        end = require_utc(end, "end")
        if end <= start:
            raise ValueError("end must be after start")
        if not isinstance(group_by, Grouping):
            raise ValueError(f"group_by must be a Grouping, got {group_by!r}")
        column = GROUP_COLUMNS[group_by]
        where = "occurred_at_us >= ? AND occurred_at_us < ?"
        params: tuple[Any, ...] = (_to_us(start), _to_us(end))
        if tenant is not None:
            where += " AND tenant = ?"
            params += (tenant,)

        def query() -> tuple[list[CostReportRow], CostReportRow]:
            conn = self._reader()
            conn.execute("BEGIN")  # one snapshot for the rows and the total
            try:
                rows = self._aggregate(conn, column, where, params)
                total = self._aggregate(conn, "''", where, params)
            finally:
                conn.execute("COMMIT")
            return rows, (total[0] if total else build_row(GroupTotals("", 0, 0, 0, 0, 0, 0), 0, 0))

        rows, total = await self._in_reader(query)
        return CostReport(
            start=start,
            end=end,
            group_by=group_by,
            tenant=tenant,
            rows=sort_rows(rows),
            total=total,
        )

    @staticmethod
    def _aggregate(
        conn: sqlite3.Connection, key: str, where: str, params: tuple[Any, ...]
    ) -> list[CostReportRow]:
        totals = {
            row[0]: GroupTotals(row[0], *(int(value) for value in row[1:]))
            for row in conn.execute(
                f"SELECT {key} AS key, COUNT(*), SUM(status <> 'OK'), SUM(input_tokens), "
                "SUM(output_tokens), SUM(total_cost_nusd), SUM(baseline_cost_nusd) "
                f"FROM requests WHERE {where} GROUP BY 1",
                params,
            )
        }
        # Only the latencies at the ranks each percentile interpolates between.
        rank_terms = " OR ".join(
            f"rn = CAST((n - 1) * {p!r} AS INTEGER) OR rn = CAST((n - 1) * {p!r} AS INTEGER) + 1"
            for p in PERCENTILES
        )
        ranked: dict[str, dict[int, float]] = {}
        for group, rank, latency in conn.execute(
            f"SELECT key, rn, latency_ms FROM ("
            f"  SELECT {key} AS key, latency_ms,"
            f"    ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY latency_ms) - 1 AS rn,"
            f"    COUNT(*) OVER (PARTITION BY {key}) AS n"
            f"  FROM requests WHERE {where}"
            f") WHERE {rank_terms}",
            params,
        ):
            ranked.setdefault(group, {})[rank] = latency
        rows = []
        for group, group_totals in totals.items():
            values = ranked[group]
            quantiles = []
            for p in PERCENTILES:
                lower, upper, fraction = percentile_ranks(group_totals.requests, p)
                quantiles.append(interpolate(values[lower], values[upper], fraction))
            rows.append(build_row(group_totals, *quantiles))
        return rows

    async def records(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        limit: int = 1000,
    ) -> list[RequestRecord]:
        where = "occurred_at_us >= ? AND occurred_at_us < ?"
        params: tuple[Any, ...] = (
            _to_us(require_utc(start, "start")),
            _to_us(require_utc(end, "end")),
        )
        if tenant is not None:
            where += " AND tenant = ?"
            params += (tenant,)
        if limit < 1:
            raise ValueError("limit must be at least 1")

        def query() -> list[RequestRecord]:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE {where} "
                    "ORDER BY occurred_at_us, request_id LIMIT ?",
                    (*params, limit),
                ).fetchall()
                attempts: dict[str, list[AttemptRecord]] = {}
                ids = [row[0] for row in rows]
                for chunk_start in range(0, len(ids), 500):
                    chunk = ids[chunk_start : chunk_start + 500]
                    marks = ", ".join("?" * len(chunk))
                    for a in conn.execute(
                        f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE request_id IN ({marks}) "
                        "ORDER BY request_id, attempt_index",
                        chunk,
                    ):
                        attempts.setdefault(a[0], []).append(attempt_from_row(a))
            finally:
                conn.execute("COMMIT")
            return [record_from_row(r, _from_us(r[1]), attempts.get(r[0], ())) for r in rows]

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
