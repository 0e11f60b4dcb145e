#!/usr/bin/env python
"""Benchmark the router's cost ledger: durable writes under concurrency, and the report.

Side by side in one run, on this machine:
- SQLite, one transaction (one fsync) per record (`max_batch=1`);
- SQLite with group commit (records arriving together share a transaction, each in its own
  SAVEPOINT), the default;
- PostgreSQL (a throwaway local cluster with fsync ON, started like the tests' one).

For each, `record()` latency p50 / p99 and records per second at 1, 50 and 200 concurrent
writers; then, over a preloaded table, `spend_since` and `report` latency. Prints a table;
the numbers go into docs/services/cost-ledger.md.

    .venv/bin/python scripts/bench_ledger.py [--rows 20000] [--writes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the PostgreSQL fixture module, tests/support/postgres.py

from support.postgres import PostgresServer  # noqa: E402

from switchyard.router.ledger import (  # noqa: E402
    AttemptRecord,
    CostLedger,
    Grouping,
    RequestRecord,
    open_ledger,
)
from switchyard.router.ledger.sqlite import SqliteLedger  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = ("smollm2-135m", "qwen2.5-0.5b", "gpt-4.1", "gpt-4.1-mini")
TENANTS = ("acme", "globex", "initech", "umbrella")


def make(i: int, prefix: str, spread: timedelta) -> RequestRecord:
    model = MODELS[i % len(MODELS)]
    attempt = AttemptRecord("t", "b", model, "OK", 10.0 + i % 997, 0.0002, 300, 80)
    return RequestRecord(
        request_id=f"{prefix}-{i}",
        time=T0 + spread * ((i * 7919) % 10_000) / 10_000,
        tenant=TENANTS[i % len(TENANTS)],
        task_type="MATH",
        complexity=0.5,
        target="t",
        target_kind="LOCAL",
        model=model,
        reason="BELOW_THRESHOLD",
        escalation_score=0.2,
        status="OK" if i % 13 else "UNAVAILABLE",
        classifier_cost_usd=0.00001,
        total_cost_usd=0.00021,
        latency_ms=12.0 + (i * 31) % 1500,
        input_tokens=300,
        output_tokens=80,
        baseline_cost_usd=0.003,
        attempts=(attempt,),
    )


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


async def bench_writes(ledger: CostLedger, writers: int, total: int, prefix: str) -> str:
    latencies: list[float] = []
    per_writer = max(1, total // writers)

    async def writer(w: int) -> None:
        for j in range(per_writer):
            record = make(w * per_writer + j, f"{prefix}-{writers}", timedelta(hours=1))
            started = time.perf_counter()
            await ledger.record(record)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - started
    return (
        f"{writers:>4} writers  {len(latencies):>5} records  "
        f"p50 {pct(latencies, 0.5):7.2f} ms  p99 {pct(latencies, 0.99):7.2f} ms  "
        f"{len(latencies) / elapsed:8.0f} records/s"
    )


async def bench_reads(ledger: CostLedger, rows: int) -> list[str]:
    spread = timedelta(hours=24)
    batch = 2000
    for start in range(0, rows, batch):  # preload (concurrently: group commit / the pool)
        await asyncio.gather(
            *(ledger.record(make(i, "pre", spread)) for i in range(start, min(rows, start + batch)))
        )
    lines = []
    for label, call in (
        ("spend_since(tenant, day)", lambda: ledger.spend_since("acme", T0)),
        (
            f"report(24h, by model) over {rows} rows",
            lambda: ledger.report(T0, T0 + spread, Grouping.MODEL),
        ),
        (
            f"report(24h, by tenant, one tenant) over {rows} rows",
            lambda: ledger.report(T0, T0 + spread, Grouping.TENANT, tenant="acme"),
        ),
    ):
        times = []
        for _ in range(10):
            started = time.perf_counter()
            await call()
            times.append((time.perf_counter() - started) * 1000)
        lines.append(f"{label:<48} median {statistics.median(times):8.2f} ms")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--rows", type=int, default=20_000, help="rows preloaded for reads")
    parser.add_argument("--writes", type=int, default=2000, help="records per concurrency level")
    args = parser.parse_args()

    server = PostgresServer.start(fsync=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    try:
        backends = {
            "sqlite, one transaction per record": lambda: SqliteLedger.open(
                tmp / "one.db", max_batch=1
            ),
            "sqlite, group commit (default)": lambda: SqliteLedger.open(tmp / "group.db"),
            "postgresql 15, fsync on, pool 10": lambda: open_ledger(server.create_database()),
        }
        for name, opener in backends.items():
            ledger = await opener()
            try:
                print(f"\n== {name}")
                for writers in (1, 50, 200):
                    total = min(args.writes, 300) if writers == 1 else args.writes
                    print("  " + await bench_writes(ledger, writers, total, "w"))
                for line in await bench_reads(ledger, args.rows):
                    print("  " + line)
            finally:
                await ledger.close()
    finally:
        server.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
