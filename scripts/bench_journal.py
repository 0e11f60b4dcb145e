#!/usr/bin/env python
"""Benchmark the ledger journal's group commit: how long a record waits to be durable.

Side by side in one run, in alternating rounds (each round visits every set-up, in an order
that rotates), on this machine's disk:

1. **Raw** (`--no-raw` skips): a producer thread writes a ~900-byte record every 1/rate s;
   `F` flusher threads each start an fdatasync as soon as a write is not covered by one
   already running; a record's wait is from its write to the return of the first sync that
   began after it. Set-ups: appended vs written in place into a preallocated file, one
   descriptor shared by the flushers vs one descriptor each vs one file each (records
   spread over the files), F = 1..4.
2. **LedgerWriter** (`--no-writer` skips): the router's writer with a real SQLite ledger
   behind it, records submitted at a fixed rate (like requests finishing) and awaited until
   durable (`fsync` mode); set-ups: `flushers` 1..4, segments preallocated (the default) or
   appended (`segment_bytes=0`).

Prints p50 / p90 / p99 per set-up, per-round p50s, and the raw fdatasync probe of the same
disk; the numbers go into docs/services/cost-ledger.md.

    flock /tmp/switchyard-bench.lock .venv/bin/python scripts/bench_journal.py \\
        [--rounds 3] [--seconds 2] [--rates 400 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.disk import fsync_probe, percentile  # noqa: E402

from switchyard.router.ledger import AttemptRecord, RequestRecord  # noqa: E402
from switchyard.router.ledger.sqlite import SqliteLedger  # noqa: E402
from switchyard.router.ledger.writer import Durability, LedgerWriter  # noqa: E402

RECORD = b"x" * 899 + b"\n"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# ---- 1. raw: threads and fdatasync only ------------------------------------------------------


def raw_waits(directory: Path, way: str, fds: str, flushers: int, rate: float, secs: float):  # noqa: ANN201
    """One measurement: the waits (ms) of records written at `rate` for `secs`."""
    files = flushers if fds == "file each" else 1
    paths = [directory / f"raw-{i}" for i in range(files)]
    write_fds = [os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644) for p in paths]
    if way == "in place":
        for fd in write_fds:
            os.write(fd, bytes(int(rate * secs * 1.2 + 1000) * len(RECORD)))
            os.fsync(fd)
    sync_fds = (
        [[os.open(p, os.O_RDONLY) for p in paths] for _ in range(flushers)]
        if fds == "fd each"
        else [write_fds] * flushers
    )
    wake = threading.Condition()
    state = {"writes": 0, "asked": 0, "durable": 0, "stop": False}
    written_at: dict[int, float] = {}
    waits: list[float] = []
    offsets = [0] * files

    def flusher(slot: int) -> None:
        while True:
            with wake:
                while not state["stop"] and state["writes"] <= state["asked"]:
                    wake.wait()
                if state["stop"]:
                    return
                covers = state["asked"] = state["writes"]
            for fd in sync_fds[slot]:
                os.fdatasync(fd)
            done = time.perf_counter()
            with wake:
                for write in range(state["durable"] + 1, covers + 1):
                    waits.append((done - written_at.pop(write)) * 1000)
                state["durable"] = max(state["durable"], covers)

    threads = [threading.Thread(target=flusher, args=(slot,)) for slot in range(flushers)]
    for thread in threads:
        thread.start()
    due = time.perf_counter()
    stop_at = due + secs
    for n in itertools.count():
        due += 1.0 / rate
        if due > stop_at:
            break
        if (pause := due - time.perf_counter()) > 0:
            time.sleep(pause)
        with wake:
            i = n % files
            if way == "in place":
                os.pwrite(write_fds[i], RECORD, offsets[i])
            else:
                os.write(write_fds[i], RECORD)
            offsets[i] += len(RECORD)
            state["writes"] += 1
            written_at[state["writes"]] = time.perf_counter()
            wake.notify()
    while True:  # let the last syncs return
        with wake:
            if state["durable"] >= state["writes"]:
                state["stop"] = True
                wake.notify_all()
                break
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    for fd in {fd for fds_ in sync_fds for fd in fds_} | set(write_fds):
        os.close(fd)
    for path in paths:
        path.unlink()
    return waits


# ---- 2. the LedgerWriter ---------------------------------------------------------------------


def make(i: int, tag: str) -> RequestRecord:
    attempt = AttemptRecord("local", "local-inference", "smollm2", "OK", 80.0, 0.0004, 100, 20)
    return RequestRecord(
        request_id=f"{tag}-{i}", time=T0, tenant="acme", task_type="MATH", complexity=0.3,
        target="local", target_kind="LOCAL", model="smollm2", reason="BELOW_THRESHOLD",
        escalation_score=0.1, status="OK", classifier_cost_usd=0.00001, total_cost_usd=0.00041,
        latency_ms=95.0, input_tokens=100, output_tokens=20, baseline_cost_usd=0.001,
        attempts=(attempt,),
    )  # fmt: skip


async def writer_waits(
    ledger: SqliteLedger, journal: Path, flushers: int, segment_bytes: int, rate: float,
    secs: float, tag: str,
) -> list[float]:  # fmt: skip
    writer = LedgerWriter(
        ledger, journal_dir=journal, durability=Durability.FSYNC, flushers=flushers,
        segment_bytes=segment_bytes,
    )  # fmt: skip
    writer.start()
    await asyncio.sleep(0.2)  # the first segment is prepared
    waits: list[float] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        await writer.submit(make(i, tag))
        waits.append((time.perf_counter() - started) * 1000)

    loop = asyncio.get_running_loop()
    pending: list[asyncio.Task[None]] = []
    due = loop.time()
    stop_at = due + secs
    for i in itertools.count():
        due += 1.0 / rate
        if due > stop_at:
            break
        if (pause := due - loop.time()) > 0:
            await asyncio.sleep(pause)
        pending.append(loop.create_task(one(i)))
    await asyncio.gather(*pending)
    await writer.flush()
    await writer.close()
    return waits


async def writer_part(
    args: argparse.Namespace, rate: float, tmp: Path
) -> dict[str, list[list[float]]]:
    setups = {
        f"{alloc}, flushers={f}": (f, size)
        for alloc, size in (("preallocated", 2 << 20), ("appended", 0))
        for f in args.flushers
    }
    ledger = await SqliteLedger.open(tmp / f"ledger-{rate:g}.db")
    results: dict[str, list[list[float]]] = {s: [] for s in setups}
    try:
        for round_, setup in alternating(list(setups), args.rounds):
            flushers, size = setups[setup]
            tag = f"{rate:g}-{round_}-{flushers}-{size}"
            waits = await writer_waits(
                ledger, tmp / f"journal-{tag}", flushers, size, rate, args.seconds, tag
            )
            results[setup].append(waits)
    finally:
        await ledger.close()
    return results


# ---- running set-ups side by side ------------------------------------------------------------


def alternating(setups: list[str], count: int) -> list[tuple[int, str]]:
    """(round, set-up): every set-up once a round, the order rotating from round to round."""
    order = []
    for round_ in range(count):
        shift = round_ % len(setups)
        order += [(round_, setup) for setup in setups[shift:] + setups[:shift]]
    return order


def raw_part(args: argparse.Namespace, rate: float, tmp: Path) -> dict[str, list[list[float]]]:
    setups = {
        f"{way}, {fds}, {f} flusher(s)": (way, fds, f)
        for way in ("append", "in place")
        for f in args.flushers
        for fds in (("one fd",) if f == 1 else ("one fd", "fd each", "file each"))
    }
    results: dict[str, list[list[float]]] = {s: [] for s in setups}
    for _, setup in alternating(list(setups), args.rounds):
        results[setup].append(raw_waits(tmp, *setups[setup], rate, args.seconds))
    return results


def report(title: str, results: dict[str, list[list[float]]]) -> None:
    print(f"\n{title}")
    print(f"  {'set-up':<40} {'p50':>8} {'p90':>8} {'p99':>8}   p50 per round")
    for setup, per_round in results.items():
        waits = [w for r in per_round for w in r]
        p50s = [round(percentile(r, 0.5), 2) for r in per_round]
        print(
            f"  {setup:<40} {percentile(waits, 0.5):6.2f}ms {percentile(waits, 0.9):6.2f}ms "
            f"{percentile(waits, 0.99):6.2f}ms   {p50s}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rates", type=float, nargs="+", default=[400.0, 2000.0])
    parser.add_argument("--flushers", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--no-raw", action="store_true")
    parser.add_argument("--no-writer", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    print(fsync_probe(tmp))
    for rate in args.rates:
        if not args.no_raw:
            report(
                f"raw: {rate:g} records/s, wait from write to covering fdatasync",
                raw_part(args, rate, tmp),
            )
        if not args.no_writer:
            results = asyncio.run(writer_part(args, rate, tmp))
            report(f"LedgerWriter, fsync mode, SQLite behind: {rate:g} records/s", results)
    print(f"\n{fsync_probe(tmp)}\n(load average at the end: {os.getloadavg()[0]:.1f})")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
