"""The ledger's tables, written once and rendered for each backend's SQL dialect.

`schema_migrations` holds one row per applied version. Opening a ledger applies the missing
versions in order (`pending_migrations` decides which; PostgreSQL takes an advisory lock first,
so several router replicas starting at once do not race); a database whose newest version is
above `SCHEMA_VERSION` was written by newer code and is refused rather than misread.

The tables are described once (`REQUEST_COLUMNS`, `ATTEMPT_COLUMNS`: name, logical type,
constraint) and rendered per `Dialect`: SQLite and PostgreSQL differ only in type names, the
time column (integer microseconds since the epoch in SQLite, `timestamptz` in PostgreSQL), the
parameter marker and how an index covers a column.

Money is integer nano-dollars (`*_nusd`), so sums are exact and identical in both backends.

Versions:
1. `requests` and `attempts`, indexed by time and by (tenant, time) covering the cost.
2. `requests.operation`: `route` (a decision-only call), `complete` or `complete_stream`, so
   reports keep route-only calls apart. Rows written before it are backfilled: a successful
   request without attempts was a route-only call, everything else a completion.
3. Outcomes (docs/services/outcomes.md): `requests.classifier_model_version` and
   `requests.prompt_chars` (rows before it: "" and 0), and the `evaluations` (shadow
   evaluations and their judge verdicts) and `feedback` (callers' ratings) tables, each keyed by
   the request id it is about. No foreign key to `requests`: an outcome may be written before
   its request's row, which the ledger writes behind its journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from switchyard.router.ledger.interface import LedgerError
from switchyard.router.ledger.outcome_records import FeedbackVerdict, JudgeOrder, Verdict
from switchyard.router.ledger.records import OPERATIONS, ROUTE_ONLY, TARGET_KINDS

__all__ = [
    "ATTEMPT_COLUMNS",
    "EVALUATION_COLUMNS",
    "FEEDBACK_COLUMNS",
    "MIGRATIONS_TABLE",
    "POSTGRESQL",
    "REQUEST_COLUMNS",
    "SCHEMA_VERSION",
    "SQLITE",
    "Column",
    "Dialect",
    "Migration",
    "create_migrations_table",
    "migrations",
    "pending_migrations",
    "record_migration",
]

MIGRATIONS_TABLE = "schema_migrations"
SCHEMA_VERSION = 3

#: Time columns, by their logical names; SQLite stores integer microseconds since the epoch
#: under the name with `_us` appended, PostgreSQL a `timestamptz` under the name itself.
TIME = "occurred_at"
_TIME_COLUMNS = frozenset({TIME, "applied_at"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _to_us(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two backends' SQL."""

    name: str
    #: Parameter marker: "?" (sqlite3) or "%s" (psycopg).
    marker: str
    #: Logical type -> SQL type.
    types: dict[str, str]
    #: Whether an index can carry extra columns (`INCLUDE`); otherwise they join the key.
    include: bool
    #: How a time is stored (a UTC datetime in) and read back (a UTC datetime out).
    time_to_db: Callable[[datetime], Any]
    time_from_db: Callable[[Any], datetime]
    #: Appended to a time column's name ("_us" in SQLite: integer microseconds).
    time_suffix: str = ""

    def column(self, name: str) -> str:
        """The stored name of the column called `name` in `REQUEST_COLUMNS`."""
        return name + self.time_suffix if name in _TIME_COLUMNS else name

    @property
    def time_column(self) -> str:
        return self.column(TIME)

    def markers(self, count: int) -> str:
        return ", ".join([self.marker] * count)


SQLITE = Dialect(
    name="sqlite",
    marker="?",
    types={"text": "TEXT", "real": "REAL", "int": "INTEGER", "bigint": "INTEGER",
           "time": "INTEGER"},
    include=False,
    time_to_db=_to_us,
    time_from_db=_from_us,
    time_suffix="_us",
)  # fmt: skip
POSTGRESQL = Dialect(
    name="postgresql",
    marker="%s",
    types={"text": "text", "real": "double precision", "int": "integer", "bigint": "bigint",
           "time": "timestamptz"},
    include=True,
    time_to_db=_to_utc,
    time_from_db=_to_utc,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # a key of Dialect.types
    constraint: str = "NOT NULL"


def _non_negative(name: str, type_: str) -> Column:
    return Column(name, type_, f"NOT NULL CHECK ({name} >= 0)")


_KINDS = ", ".join(f"'{kind}'" for kind in sorted(TARGET_KINDS))
_OPERATIONS = ", ".join(f"'{operation}'" for operation in OPERATIONS)

#: `requests`, in the order `records.request_row` gives the values.
REQUEST_COLUMNS: tuple[Column, ...] = (
    Column("request_id", "text", "PRIMARY KEY"),
    Column(TIME, "time"),
    Column("tenant", "text"),
    Column("task_type", "text"),
    Column("complexity", "real", ""),
    Column("target", "text"),
    Column("target_kind", "text", f"NOT NULL CHECK (target_kind IN ({_KINDS}))"),
    Column("model", "text"),
    Column("reason", "text"),
    Column("escalation_score", "real", ""),
    Column("status", "text"),
    _non_negative("classifier_cost_nusd", "bigint"),
    _non_negative("total_cost_nusd", "bigint"),
    _non_negative("latency_ms", "real"),
    _non_negative("input_tokens", "bigint"),
    _non_negative("output_tokens", "bigint"),
    _non_negative("baseline_cost_nusd", "bigint"),
    # version 2
    Column(
        "operation",
        "text",
        f"NOT NULL DEFAULT 'complete' CHECK (operation IN ({_OPERATIONS}))",
    ),
    # version 3
    Column("classifier_model_version", "text", "NOT NULL DEFAULT ''"),
    Column("prompt_chars", "bigint", "NOT NULL DEFAULT 0 CHECK (prompt_chars >= 0)"),
)
_VERSION_1_REQUEST_COLUMNS = REQUEST_COLUMNS[:17]
_OPERATION = REQUEST_COLUMNS[17]
_VERSION_3_REQUEST_COLUMNS = REQUEST_COLUMNS[18:]


def _one_of(name: str, values: Iterable[str]) -> str:
    listed = ", ".join(f"'{value}'" for value in sorted(str(v) for v in values))
    return f"NOT NULL CHECK ({name} IN ({listed}))"


#: `evaluations` (version 3), in the order `outcome_rows.evaluation_row` gives the values.
EVALUATION_COLUMNS: tuple[Column, ...] = (
    Column("request_id", "text", "PRIMARY KEY"),
    Column(TIME, "time"),
    Column("tenant", "text"),
    Column("sample_share", "real", "NOT NULL CHECK (sample_share > 0 AND sample_share <= 1)"),
    Column("served_kind", "text", _one_of("served_kind", TARGET_KINDS)),
    Column("served_target", "text"),
    Column("served_model", "text"),
    Column("shadow_target", "text"),
    Column("shadow_model", "text"),
    Column("shadow_status", "text"),
    _non_negative("shadow_latency_ms", "real"),
    _non_negative("shadow_cost_nusd", "bigint"),
    _non_negative("shadow_input_tokens", "bigint"),
    _non_negative("shadow_output_tokens", "bigint"),
    Column("judge_target", "text"),
    Column("judge_model", "text"),
    Column("judge_status", "text"),
    Column("first_order", "text", _one_of("first_order", JudgeOrder)),
    Column("second_order", "text", _one_of("second_order", JudgeOrder)),
    Column("verdict", "text", _one_of("verdict", Verdict)),
    _non_negative("judge_cost_nusd", "bigint"),
    _non_negative("cost_nusd", "bigint"),
    Column("prompt", "text", ""),
    Column("judge_reply", "text", ""),
)

#: `feedback` (version 3), in the order `outcome_rows.feedback_row` gives the values.
FEEDBACK_COLUMNS: tuple[Column, ...] = (
    Column("request_id", "text", "PRIMARY KEY"),
    Column(TIME, "time"),
    Column("tenant", "text"),
    Column("served_kind", "text", _one_of("served_kind", TARGET_KINDS)),
    Column("served_target", "text"),
    Column("served_model", "text"),
    Column("verdict", "text", _one_of("verdict", FeedbackVerdict)),
    Column("reason", "text"),
)

#: `attempts`, in the order `records.attempt_rows` gives the values.
ATTEMPT_COLUMNS: tuple[Column, ...] = (
    Column("request_id", "text", "NOT NULL REFERENCES requests (request_id) ON DELETE CASCADE"),
    _non_negative("attempt_index", "int"),
    Column("target", "text"),
    Column("backend", "text"),
    Column("model", "text"),
    Column("status", "text"),
    _non_negative("latency_ms", "real"),
    _non_negative("cost_nusd", "bigint"),
    _non_negative("input_tokens", "bigint"),
    _non_negative("output_tokens", "bigint"),
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def _definition(dialect: Dialect, column: Column) -> str:
    return f"{dialect.column(column.name)} {dialect.types[column.type]} {column.constraint}".strip()


def _create_table(dialect: Dialect, name: str, columns: Sequence[Column], extra: str = "") -> str:
    lines = [_definition(dialect, column) for column in columns]
    if extra:
        lines.append(extra)
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {name} (\n    {body}\n)"


def create_migrations_table(dialect: Dialect) -> str:
    """`schema_migrations` (created when missing, before any migration runs)."""
    columns = (
        Column("version", "int", "PRIMARY KEY"),
        Column("description", "text"),
        Column("applied_at", "time"),
    )
    return _create_table(dialect, f"IF NOT EXISTS {MIGRATIONS_TABLE}", columns)


def _index(
    dialect: Dialect,
    name: str,
    key: Sequence[str],
    covering: Sequence[str] = (),
    table: str = "requests",
) -> str:
    key_columns = [dialect.column(column) for column in key]
    if covering and dialect.include:
        return (
            f"CREATE INDEX {name} ON {table} ({', '.join(key_columns)}) "
            f"INCLUDE ({', '.join(covering)})"
        )
    return f"CREATE INDEX {name} ON {table} ({', '.join([*key_columns, *covering])})"


def migrations(dialect: Dialect) -> tuple[Migration, ...]:
    """Every migration, in order, as `dialect`'s SQL."""
    return (
        Migration(
            1,
            "requests and attempts",
            (
                _create_table(dialect, "requests", _VERSION_1_REQUEST_COLUMNS),
                _create_table(
                    dialect, "attempts", ATTEMPT_COLUMNS, "PRIMARY KEY (request_id, attempt_index)"
                ),
                _index(dialect, "requests_occurred_at_idx", [TIME]),
                # Covers spend_since (the budget check): answered from the index alone.
                _index(
                    dialect,
                    "requests_tenant_occurred_at_idx",
                    ["tenant", TIME],
                    ["total_cost_nusd"],
                ),
            ),
        ),
        Migration(
            2,
            "requests.operation: route-only calls apart from completions",
            (
                f"ALTER TABLE requests ADD COLUMN {_definition(dialect, _OPERATION)}",
                f"UPDATE requests SET operation = '{ROUTE_ONLY}' WHERE status = 'OK' AND NOT "
                "EXISTS (SELECT 1 FROM attempts WHERE attempts.request_id = requests.request_id)",
            ),
        ),
        Migration(
            3,
            "outcomes: evaluations, feedback, the classifier model version of each request",
            (
                *(
                    f"ALTER TABLE requests ADD COLUMN {_definition(dialect, column)}"
                    for column in _VERSION_3_REQUEST_COLUMNS
                ),
                _create_table(dialect, "evaluations", EVALUATION_COLUMNS),
                _create_table(dialect, "feedback", FEEDBACK_COLUMNS),
                # the daily evaluation budget and the cost report's evaluation window
                _index(dialect, "evaluations_occurred_at_idx", [TIME], table="evaluations"),
            ),
        ),
    )


def pending_migrations(current: int, dialect: Dialect, where: str) -> tuple[Migration, ...]:
    """The migrations a database at version `current` still needs, in order.

    Raises `LedgerError` when the database is newer than this code (`where` names it)."""
    if current > SCHEMA_VERSION:
        raise LedgerError(
            f"the {where} has schema version {current}, newer than this router supports "
            f"({SCHEMA_VERSION}); upgrade the router"
        )
    return tuple(m for m in migrations(dialect) if m.version > current)


def record_migration(dialect: Dialect) -> str:
    """The statement that notes a migration as applied: (version, description, applied_at)."""
    return (
        f"INSERT INTO {MIGRATIONS_TABLE} (version, description, {dialect.column('applied_at')}) "
        f"VALUES ({dialect.markers(3)})"
    )


assert migrations(SQLITE)[-1].version == migrations(POSTGRESQL)[-1].version == SCHEMA_VERSION
