"""The ledger's tables, as numbered migrations per backend.

`schema_migrations` holds one row per applied version. Opening a ledger applies the missing
versions in order, each in its own transaction (PostgreSQL: under an advisory lock, so several
router replicas starting at once do not race); a database whose newest version is above
`SCHEMA_VERSION` was written by newer code and is refused rather than misread.

Money is integer nano-dollars (`*_nusd`), so sums are exact and identical in both backends.
Times are UTC: `timestamptz` in PostgreSQL, integer microseconds since the epoch in SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MIGRATIONS_TABLE",
    "POSTGRES_MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLITE_MIGRATIONS",
    "Migration",
]

MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "requests and attempts",
        (
            """
            CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                occurred_at_us INTEGER NOT NULL,
                tenant TEXT NOT NULL,
                task_type TEXT NOT NULL,
                complexity REAL,
                target TEXT NOT NULL,
                target_kind TEXT NOT NULL CHECK (target_kind IN ('LOCAL', 'FRONTIER')),
                model TEXT NOT NULL,
                reason TEXT NOT NULL,
                escalation_score REAL,
                status TEXT NOT NULL,
                classifier_cost_nusd INTEGER NOT NULL CHECK (classifier_cost_nusd >= 0),
                total_cost_nusd INTEGER NOT NULL CHECK (total_cost_nusd >= 0),
                latency_ms REAL NOT NULL CHECK (latency_ms >= 0),
                input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
                output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
                baseline_cost_nusd INTEGER NOT NULL CHECK (baseline_cost_nusd >= 0)
            )
            """,
            """
            CREATE TABLE attempts (
                request_id TEXT NOT NULL REFERENCES requests (request_id) ON DELETE CASCADE,
                attempt_index INTEGER NOT NULL CHECK (attempt_index >= 0),
                target TEXT NOT NULL,
                backend TEXT NOT NULL,
                model TEXT NOT NULL,
                status TEXT NOT NULL,
                latency_ms REAL NOT NULL CHECK (latency_ms >= 0),
                cost_nusd INTEGER NOT NULL CHECK (cost_nusd >= 0),
                input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
                output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
                PRIMARY KEY (request_id, attempt_index)
            )
            """,
            "CREATE INDEX requests_occurred_at_idx ON requests (occurred_at_us)",
            # Covers spend_since (the budget check): answered from the index alone.
            "CREATE INDEX requests_tenant_occurred_at_idx "
            "ON requests (tenant, occurred_at_us, total_cost_nusd)",
        ),
    ),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "requests and attempts",
        (
            """
            CREATE TABLE requests (
                request_id text PRIMARY KEY,
                occurred_at timestamptz NOT NULL,
                tenant text NOT NULL,
                task_type text NOT NULL,
                complexity double precision,
                target text NOT NULL,
                target_kind text NOT NULL CHECK (target_kind IN ('LOCAL', 'FRONTIER')),
                model text NOT NULL,
                reason text NOT NULL,
                escalation_score double precision,
                status text NOT NULL,
                classifier_cost_nusd bigint NOT NULL CHECK (classifier_cost_nusd >= 0),
                total_cost_nusd bigint NOT NULL CHECK (total_cost_nusd >= 0),
                latency_ms double precision NOT NULL CHECK (latency_ms >= 0),
                input_tokens bigint NOT NULL CHECK (input_tokens >= 0),
                output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
                baseline_cost_nusd bigint NOT NULL CHECK (baseline_cost_nusd >= 0)
            )
            """,
            """
            CREATE TABLE attempts (
                request_id text NOT NULL REFERENCES requests (request_id) ON DELETE CASCADE,
                attempt_index integer NOT NULL CHECK (attempt_index >= 0),
                target text NOT NULL,
                backend text NOT NULL,
                model text NOT NULL,
                status text NOT NULL,
                latency_ms double precision NOT NULL CHECK (latency_ms >= 0),
                cost_nusd bigint NOT NULL CHECK (cost_nusd >= 0),
                input_tokens bigint NOT NULL CHECK (input_tokens >= 0),
                output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
                PRIMARY KEY (request_id, attempt_index)
            )
            """,
            "CREATE INDEX requests_occurred_at_idx ON requests (occurred_at)",
            "CREATE INDEX requests_tenant_occurred_at_idx "
            "ON requests (tenant, occurred_at) INCLUDE (total_cost_nusd)",
        ),
    ),
)

SCHEMA_VERSION = 1
assert SQLITE_MIGRATIONS[-1].version == POSTGRES_MIGRATIONS[-1].version == SCHEMA_VERSION
