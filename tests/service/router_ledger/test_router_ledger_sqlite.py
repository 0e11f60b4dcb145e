"""SQLite-only behaviour: WAL and durability settings, the event loop stays free, group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from router_ledger_data import T0, make_record

from switchyard.router.ledger import Grouping, LedgerUnavailable, open_ledger
from switchyard.router.ledger.sqlite import SqliteLedger


async def test_creates_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    ledger = await open_ledger(f"sqlite://{path}")
    try:
        await ledger.record(make_record("r", time=T0))
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("SELECT count(*) FROM attempts").fetchone() == (1,)
    finally:
        await ledger.close()


async def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = await open_ledger("sqlite:data/ledger.db")
    await ledger.close()
    assert (tmp_path / "data" / "ledger.db").is_file()


async def test_unwritable_location_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LedgerUnavailable, match="cannot open the SQLite ledger"):
        await open_ledger(f"sqlite://{blocker}/ledger.db")


async def test_a_blocked_write_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """Another connection holds the write lock: record() waits in its thread while the loop
    keeps running other coroutines, and completes once the lock is released."""
    path = tmp_path / "ledger.db"
    ledger = await open_ledger(f"sqlite://{path}")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock
        pending = asyncio.create_task(ledger.record(make_record("waits", time=T0)))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not pending.done()
        # Reads are not blocked by the writer either (WAL).
        assert await ledger.spend_since("acme", T0) == 0.0
        holder.execute("COMMIT")
        await asyncio.wait_for(pending, timeout=30)
        assert await ledger.spend_since("acme", T0) > 0
    finally:
        holder.close()
        await ledger.close()


async def test_record_runs_its_sql_off_the_loop_thread(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = await open_ledger(f"sqlite://{path}")
    assert isinstance(ledger, SqliteLedger)
    seen: list[str] = []
    original = ledger._write_batch

    def spy(records):  # type: ignore[no-untyped-def]
        seen.append(threading.current_thread().name)
        return original(records)

    ledger._write_batch = spy  # type: ignore[method-assign]
    try:
        await ledger.record(make_record("r", time=T0))
    finally:
        await ledger.close()
    assert seen and all(name != threading.current_thread().name for name in seen)
    assert all(name.startswith("ledger-sqlite-writer") for name in seen)


@pytest.mark.parametrize("max_batch", [1, 256], ids=["one-per-transaction", "group-commit"])
async def test_a_refused_record_in_a_batch_fails_alone(tmp_path: Path, max_batch: int) -> None:
    ledger = await SqliteLedger.open(tmp_path / "ledger.db", max_batch=max_batch)
    try:
        records = [make_record(f"r-{i}", time=T0 + timedelta(milliseconds=i)) for i in range(50)]
        records.insert(25, make_record("r-3", time=T0))  # a duplicate among good records
        outcomes = await asyncio.gather(
            *(ledger.record(r) for r in records), return_exceptions=True
        )
        failures = [o for o in outcomes if o is not None]
        assert len(failures) == 1 and isinstance(failures[0], ValueError)
        report = await ledger.report(T0, T0 + timedelta(hours=1), Grouping.MODEL)
        assert report.total.requests == 50
    finally:
        await ledger.close()


async def test_two_ledgers_on_one_file_both_write(tmp_path: Path) -> None:
    """Two router processes pointed at one file (not the recommended set-up) wait on the lock
    instead of failing."""
    url = f"sqlite://{tmp_path}/ledger.db"
    first, second = await open_ledger(url), await open_ledger(url)
    try:
        await asyncio.gather(
            *(first.record(make_record(f"a-{i}", time=T0)) for i in range(100)),
            *(second.record(make_record(f"b-{i}", time=T0)) for i in range(100)),
        )
        report = await first.report(T0, T0 + timedelta(seconds=1), Grouping.MODEL)
        assert report.total.requests == 200
    finally:
        await first.close()
        await second.close()


async def test_close_waits_for_pending_writes(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/ledger.db"
    ledger = await open_ledger(url)
    tasks = [asyncio.create_task(ledger.record(make_record(f"r-{i}", time=T0))) for i in range(30)]
    await asyncio.sleep(0)  # they are queued
    await ledger.close()
    await asyncio.gather(*tasks)
    reopened = await open_ledger(url)
    try:
        assert len(await reopened.records(T0, T0 + timedelta(seconds=1))) == 30
    finally:
        await reopened.close()


async def test_a_lock_held_past_the_timeout_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = await SqliteLedger.open(path, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LedgerUnavailable, match="locked"):
            await ledger.record(make_record("blocked", time=T0))
        holder.execute("COMMIT")
        await ledger.record(make_record("blocked", time=T0))  # nothing of the first attempt stayed
        assert len(await ledger.records(T0, T0 + timedelta(seconds=1))) == 1
    finally:
        holder.close()
        await ledger.close()
