"""The journal's group commit as a pipeline, and its preallocated segments.

The fdatasync is injected: each call notes what the file held when it began (what that sync
makes durable) and blocks until the test lets it return, so the order of syncs and releases
is decided by the test, not by timing. The ledger behind the journal holds every batch (its
commit would also release a caller), so only the journal's syncs release anyone here.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from switchyard.router.ledger import AttemptRecord, RequestRecord
from switchyard.router.ledger.journal import RecordJournal, record_to_json
from switchyard.router.ledger.writer import LedgerWriter

NOW = datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC)  # just after a year turned
ATTEMPT = AttemptRecord("local", "local-inference", "smollm2", "OK", 80.0, 0.0004, 100, 20)


def record(request_id: str) -> RequestRecord:
    return RequestRecord(
        request_id=request_id, time=NOW, tenant="acme", task_type="MATH", complexity=0.3,
        target="local", target_kind="LOCAL", model="smollm2", reason="BELOW_THRESHOLD",
        escalation_score=0.1, status="OK", classifier_cost_usd=0.00001, total_cost_usd=0.00041,
        latency_ms=95.0, input_tokens=100, output_tokens=20, baseline_cost_usd=0.001,
        attempts=(ATTEMPT,),
    )  # fmt: skip


def ids_in(lines: Sequence[str]) -> frozenset[str]:
    return frozenset(json.loads(line)["request_id"] for line in lines)


@dataclass
class Sync:
    """One fdatasync call: the records it covers, and the event that lets it return."""

    number: int
    covers: frozenset[str]
    release: threading.Event = field(default_factory=threading.Event)


class HeldSyncs:
    """The injected fdatasync (see the module docstring). `events` is the order of things:
    ("begin", n), ("end", n), ("released", request_id); `covers[n]` what sync n covered."""

    def __init__(self) -> None:
        self.started: queue.Queue[Sync] = queue.Queue()
        self.events: list[tuple[str, int | str]] = []
        self.covers: dict[int, frozenset[str]] = {}
        self.free = threading.Event()  # set: every sync returns at once (the test is done)
        self._lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        held = os.pread(fd, os.fstat(fd).st_size, 0).decode()
        covers = ids_in(RecordJournal.lines(held))
        with self._lock:
            sync = Sync(len(self.covers) + 1, covers)
            self.covers[sync.number] = covers
            self.events.append(("begin", sync.number))
        self.started.put(sync)
        if not self.free.is_set():
            sync.release.wait()
        with self._lock:
            self.events.append(("end", sync.number))

    async def next(self) -> Sync:
        """The next sync to begin (waits for it; the timeout only keeps a broken test from
        hanging)."""
        return await asyncio.to_thread(self.started.get, timeout=30)

    def note_release(self, request_id: str, durable: asyncio.Future[None]) -> None:
        def released(_: asyncio.Future[None]) -> None:
            with self._lock:
                self.events.append(("released", request_id))

        durable.add_done_callback(released)

    def release_all(self) -> None:
        self.free.set()
        while not self.started.empty():
            self.started.get_nowait().release.set()


class HeldLedger:
    """A ledger that takes nothing until `open` is set (then keeps what it is given)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.rows: dict[str, RequestRecord] = {}

    async def record_many(self, records: Sequence[RequestRecord]) -> list[ValueError | None]:
        await self.open.wait()
        self.rows.update((r.request_id, r) for r in records)
        return [None] * len(records)

    async def existing_ids(self, ids: Collection[str]) -> set[str]:
        return set(ids) & set(self.rows)


def writer_with(
    syncs: HeldSyncs, ledger: HeldLedger, tmp_path: Path, flushers: int
) -> LedgerWriter:
    writer = LedgerWriter(
        ledger,  # type: ignore[arg-type]
        journal_dir=tmp_path / "journal",
        flushers=flushers,
        sync_file=syncs,
        linger_s=0,
    )
    writer.start()
    return writer


async def finish(writer: LedgerWriter, ledger: HeldLedger, syncs: HeldSyncs) -> None:
    syncs.release_all()
    ledger.open.set()
    await writer.flush()
    await writer.close()


async def test_a_record_written_during_a_flush_is_released_by_the_next_flush_alone(
    tmp_path: Path,
) -> None:
    syncs, ledger = HeldSyncs(), HeldLedger()
    writer = writer_with(syncs, ledger, tmp_path, flushers=2)
    first = writer.submit(record("r-1"))
    syncs.note_release("r-1", first)
    sync_1 = await syncs.next()
    assert sync_1.covers == {"r-1"}
    second = writer.submit(record("r-2"))  # while sync 1 is still in flight
    syncs.note_release("r-2", second)
    sync_2 = await syncs.next()  # starts at once, without waiting for sync 1 to return
    assert sync_2.covers == {"r-1", "r-2"}
    assert not first.done() and not second.done()
    sync_2.release.set()
    await second  # released by the one flush that covers it, sync 1 still running
    assert first.done(), "sync 2 covers r-1 too: r-1 need not wait for sync 1"
    assert syncs.events[:3] == [("begin", 1), ("begin", 2), ("end", 2)]
    assert sorted(syncs.events[3:]) == [("released", "r-1"), ("released", "r-2")]
    sync_1.release.set()
    await finish(writer, ledger, syncs)
    assert set(ledger.rows) == {"r-1", "r-2"}


async def test_at_most_the_bound_of_flushes_run_and_the_next_starts_when_one_returns(
    tmp_path: Path,
) -> None:
    syncs, ledger = HeldSyncs(), HeldLedger()
    writer = writer_with(syncs, ledger, tmp_path, flushers=2)
    writer.submit(record("r-1"))
    sync_1 = await syncs.next()
    writer.submit(record("r-2"))
    sync_2 = await syncs.next()
    third = writer.submit(record("r-3"))  # both flushers busy: r-3 waits for one of them
    sync_1.release.set()  # the flusher that returns starts the next sync itself
    sync_3 = await syncs.next()
    assert sync_3.covers == {"r-1", "r-2", "r-3"}
    assert syncs.events.index(("end", 1)) < syncs.events.index(("begin", 3))
    assert not third.done(), "sync 1 and 2 began before r-3 was written"
    sync_3.release.set()
    await third
    sync_2.release.set()
    await finish(writer, ledger, syncs)


async def test_no_caller_is_released_before_a_sync_of_its_own_record_returned(
    tmp_path: Path,
) -> None:
    """Records submitted in waves while syncs are held, syncs let go in a shuffled order."""
    syncs, ledger = HeldSyncs(), HeldLedger()
    writer = writer_with(syncs, ledger, tmp_path, flushers=3)
    shuffle = random.Random(11)
    durable: dict[str, asyncio.Future[None]] = {}
    in_flight: list[Sync] = []
    for wave in range(12):
        for i in range(shuffle.randint(1, 4)):
            request_id = f"r-{wave}-{i}"
            durable[request_id] = writer.submit(record(request_id))
            syncs.note_release(request_id, durable[request_id])
        if len(in_flight) < 3:
            in_flight.append(await syncs.next())
        if in_flight and shuffle.random() < 0.7:
            in_flight.pop(shuffle.randrange(len(in_flight))).release.set()
        await asyncio.sleep(0)  # let posted results reach the loop
    for sync in in_flight:
        sync.release.set()
    syncs.release_all()  # and those begun that the test did not take
    await asyncio.gather(*durable.values())
    await finish(writer, ledger, syncs)

    ended: set[str] = set()  # the records some returned sync covered, so far in the order
    for kind, what in syncs.events:
        if kind == "end":
            ended |= syncs.covers[what]  # type: ignore[index]
        elif kind == "released":
            assert what in ended, f"{what} released before any sync of it returned"
    assert {what for kind, what in syncs.events if kind == "released"} == set(durable)


async def test_close_returns_in_its_time_while_a_sync_hangs_on_the_disk(tmp_path: Path) -> None:
    syncs, ledger = HeldSyncs(), HeldLedger()
    writer = writer_with(syncs, ledger, tmp_path, flushers=2)
    durable = writer.submit(record("r-1"))
    hanging = await syncs.next()
    try:  # SIGTERM's drain: bounded by its timeout, not by the disk
        await asyncio.wait_for(writer.close(timeout_s=0.2), 30)
        assert not durable.done(), "never released without a sync that returned"
    finally:
        hanging.release.set()
        syncs.release_all()


def test_a_preallocated_segment_is_written_in_place_and_read_without_its_fill(
    tmp_path: Path,
) -> None:
    journal = RecordJournal(tmp_path, segment_bytes=64 << 10)
    journal.prepare_segment()
    path = journal.segment_path(1)
    before = os.stat(path)
    assert before.st_size == 64 << 10 and before.st_blocks * 512 >= 64 << 10  # written, not sparse
    assert RecordJournal.read(path) == []  # a fresh segment holds no record
    for i in range(3):
        journal.write([record(f"r-{i}")])
    assert journal.sync() == 3
    after = os.stat(path)
    # the size and the blocks never change: fdatasync has no metadata to commit
    assert (after.st_size, after.st_blocks) == (before.st_size, before.st_blocks)
    assert ids_in(RecordJournal.read(path)) == {"r-0", "r-1", "r-2"}
    # a write torn by a power cut leaves a partial line before the fill: read as its own
    # (unreadable) line, which replay moves to the quarantine file
    with path.open("r+b") as file:
        file.seek(len(path.read_bytes().rstrip(b"\x00")))
        file.write(b'{"request_id": "r-to')
    lines = RecordJournal.read(path)
    assert len(lines) == 4 and lines[-1] == '{"request_id": "r-to'
    journal.close()


def line_size(request_id: str) -> int:
    return len(json.dumps(record_to_json(record(request_id)), sort_keys=True)) + 1


def test_a_write_that_does_not_fit_starts_the_next_segment(tmp_path: Path) -> None:
    one = line_size("r-0")
    journal = RecordJournal(tmp_path, segment_bytes=3 * one + one // 2)
    for i in range(7):
        journal.write([record(f"r-{i}")])
    journal.write([record(f"big-{i}") for i in range(8)])  # larger than a whole segment
    journal.close()
    segments = sorted(tmp_path.glob("journal-*.jsonl"))
    assert [len(RecordJournal.read(path)) for path in segments] == [3, 3, 1, 8]
    # the last one grew past its preallocation: the batch is written whole, in one segment
    assert os.stat(segments[-1]).st_size == 8 * line_size("big-0")


def test_segment_bytes_0_appends(tmp_path: Path) -> None:
    journal = RecordJournal(tmp_path, segment_bytes=0)
    journal.prepare_segment()
    assert os.stat(journal.segment_path(1)).st_size == 0
    journal.append([record("r-1")])
    journal.append([record("r-2")])
    path = journal.segment_path(1)
    assert path.read_bytes().count(b"\n") == 2 and b"\x00" not in path.read_bytes()
    journal.close()
