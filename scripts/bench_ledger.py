#!/usr/bin/env python
"""Benchmark the router's cost ledger: durable writes under concurrency, and the report.

Side by side in one run, on this machine:
- SQLite, one transaction (one fsync) per record (`max_batch=1`);
- SQLite with group commit (records arriving together share a transaction, each in its own
  SAVEPOINT), the default;
- PostgreSQL (a throwaway local cluster with fsync ON, started like the tests' one).

For each, `record()` latency p50 / p99 and records per second at 1, 50 and 200 concurrent
writers; then, over a preloaded table, `spend_since` and `report` latency.

Then the router's `LedgerWriter` on each durable backend (`--writer`): records journaled and
then written behind in batches, as the router does it. For 50 and 200 concurrent submitters
(each submits a record and waits until it is durable, like a request before its answer), in
both durability modes: the wait p50 / p99 and durable records/s; then a burst of records
submitted at once and the time until all are in the ledger (the rate the ledger sustains
behind the journal), next to the writer before this change (one `record()` at a time). A raw
`fdatasync` probe of the same disk runs in the same run: no fsynced answer can be faster.
Prints tables; the numbers go into docs/services/cost-ledger.md.

    .venv/bin/python scripts/bench_ledger.py [--rows 20000] [--writes 2000] [--no-writer]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the PostgreSQL fixture module, tests/support/postgres.py

from support.disk import fsync_probe  # noqa: E402
from support.postgres import PostgresServer  # noqa: E402

from switchyard.router.ledger import (  # noqa: E402
    AttemptRecord,
    CostLedger,
    Grouping,
    RequestRecord,
    open_ledger,
)
from switchyard.router.ledger.sqlite import SqliteLedger  # noqa: E402
from switchyard.router.ledger.writer import Durability, LedgerWriter  # noqa: E402

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


async def bench_writer_waits(
    ledger: CostLedger, journal: Path, durability: Durability, submitters: int, seconds: float
) -> str:
    writer = LedgerWriter(ledger, journal_dir=journal, durability=durability)
    writer.start()
    waits: list[float] = []
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def submitter(w: int) -> None:
        while time.perf_counter() < stop_at:
            record = make(next(counter), f"wr-{durability.value}-{submitters}", timedelta(hours=1))
            started = time.perf_counter()
            await writer.submit(record)
            waits.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(submitter(w) for w in range(submitters)))
    elapsed = time.perf_counter() - started
    await writer.flush()
    await writer.close()
    return (
        f"{durability.value:>10} {submitters:>4} submitters  wait p50 {pct(waits, 0.5):6.2f} ms"
        f"  p99 {pct(waits, 0.99):7.2f} ms  {len(waits) / elapsed:7.0f} durable records/s"
    )


async def bench_writer_burst(ledger: CostLedger, journal: Path, count: int, tag: str) -> str:
    """`count` records submitted at once; how fast they reach the ledger behind the journal."""
    writer = LedgerWriter(ledger, journal_dir=journal, durability=Durability.PAGE_CACHE)
    writer.start()
    records = [make(i, f"burst-{tag}", timedelta(hours=1)) for i in range(count)]
    started = time.perf_counter()
    durable = [writer.submit(r) for r in records]
    await asyncio.gather(*durable)
    journaled = time.perf_counter() - started
    await writer.flush()
    elapsed = time.perf_counter() - started
    await writer.close()
    return (
        f"burst of {count}: journaled in {journaled * 1000:.0f} ms, all in the ledger after "
        f"{elapsed * 1000:.0f} ms: {count / elapsed:,.0f} records/s"
    )


async def bench_serial(ledger: CostLedger, count: int, tag: str) -> str:
    """The writer before this change: one `record()` at a time, each awaited."""
    records = [make(i, f"serial-{tag}", timedelta(hours=1)) for i in range(count)]
    started = time.perf_counter()
    for record in records:
        await ledger.record(record)
    elapsed = time.perf_counter() - started
    return f"before (one record() at a time, awaited): {count / elapsed:,.0f} records/s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--rows", type=int, default=20_000, help="rows preloaded for reads")
    parser.add_argument("--writes", type=int, default=2000, help="records per concurrency level")
    parser.add_argument("--no-writer", action="store_true", help="skip the LedgerWriter part")
    parser.add_argument("--no-backends", action="store_true", help="skip the record() part")
    parser.add_argument("--seconds", type=float, default=5.0, help="per writer measurement")
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
        for name, opener in backends.items() if not args.no_backends else ():
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
        if not args.no_writer:
            await bench_writer(args, server, tmp)
    finally:
        server.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


async def bench_writer(args: argparse.Namespace, server: PostgresServer, tmp: Path) -> None:
    print(f"\n== LedgerWriter (journal + ledger behind it); {fsync_probe(tmp)}")
    openers = {
        "sqlite": lambda: SqliteLedger.open(tmp / "writer.db"),
        "postgresql 15, fsync on": lambda: open_ledger(server.create_database()),
    }
    for name, opener in openers.items():
        ledger = await opener()
        try:
            print(f"  -- ledger: {name}")
            for durability in (Durability.FSYNC, Durability.PAGE_CACHE):
                for submitters in (50, 200):
                    journal = tmp / f"journal-{name[:6]}-{durability.value}-{submitters}"
                    line = await bench_writer_waits(
                        ledger, journal, durability, submitters, args.seconds
                    )
                    print("    " + line)
            tag = name[:6]
            print("    " + await bench_writer_burst(ledger, tmp / f"burst-{tag}", 20_000, tag))
            print("    " + await bench_serial(ledger, 1000, tag))
        finally:
            await ledger.close()
    print(f"  (load average at the end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    asyncio.run(main())
