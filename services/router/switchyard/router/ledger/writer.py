"""`LedgerWriter`: every request's record durable before the request is answered, written into
the ledger behind it in batches.

Two stages, each with group commit:

1. **Journal** (`RecordJournal`, the point of durability). `submit(record)` returns a future.
   A submitted record is written at once with one write() (into the page cache: microseconds,
   on the loop, into a preallocated segment); an fdatasync on a flusher thread then makes
   every write before it durable and resolves those futures (group commit: one sync covers
   every record written before it). The syncs are a pipeline (`GroupCommit`): a record
   written while others are being synced starts its own sync at once on an idle flusher, up
   to `flushers` (2) at once, and is released by the first sync that covers it, never
   before one has returned (2: at the router's rates a second flusher roughly halves the
   wait, more add little, and at higher rates each extra one costs more than it saves:
   `scripts/bench_journal.py`, docs/services/cost-ledger.md). The router awaits the future
   before it sends the answer, so a record whose answer reached the caller is on disk, and a
   request cut by a crash either has its line or never answered. `Durability.PAGE_CACHE`
   (opt-in, weaker) resolves after the write (the sync follows at once): it survives the
   router being killed, not a power cut or a kernel crash in the milliseconds before the
   sync. A ledger commit also resolves a record's future.
2. **Ledger** (write-behind). One task takes up to `max_batch` journaled records at a time and
   writes them with `CostLedger.record_many` (one transaction), waiting `linger_s` between
   small batches so the ledger commits (and fsyncs) less often. An unreachable ledger is
   retried with the whole batch (`retry_delays_s`); past that budget the batch and everything
   queued behind it is left to the journal at once ("spilled": nothing to write, it is on disk
   already) and replayed when the ledger answers again, or at the next start. A segment of the
   journal is removed once all its records are in the ledger.

Replay (`replay()` at start-up, and after an outage) drops a journal record only when the
ledger already holds its request id (asked with `existing_ids`, not guessed from an error);
a record the ledger refuses for any other reason goes to the quarantine file with the reason
and is logged. Nothing is deleted otherwise.

Without a journal (`journal_dir=None`, or when the journal cannot be written) a record is
durable only once the ledger commits it: the future resolves then, and fails (the request is
answered UNAVAILABLE) when the ledger cannot take it within the retry budget.

`close(timeout_s)` (SIGTERM): everything submitted is journaled, the ledger gets `timeout_s` to
take what is queued, and the rest stays in the journal; it returns within that time.

(Over 500 lines on purpose: the journal stage, the ledger stage and replay share one set of
entries and segment counts, and split apart they would pass that bookkeeping back and forth;
the file I/O is in `journal.py`, the sync threads in `group_commit.py`.)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from switchyard.router.ledger.group_commit import GroupCommit
from switchyard.router.ledger.interface import CostLedger, LedgerError, LedgerUnavailable
from switchyard.router.ledger.journal import RecordJournal, record_from_json, record_to_json
from switchyard.router.ledger.records import RequestRecord
from switchyard.runtime.logging import get_logger

__all__ = ["Durability", "LedgerWriter", "ReplayResult"]

log = get_logger(__name__)

T = TypeVar("T")


class Durability(StrEnum):
    """When a request may be answered, relative to its record reaching the disk."""

    #: After the journal's fdatasync (the default): survives kill -9 and a power cut.
    FSYNC = "fsync"
    #: After the journal's write(), before its fdatasync (opt-in, weaker): survives the router
    #: being killed, not a power cut or kernel crash just after the answer.
    PAGE_CACHE = "page-cache"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    written: int = 0  # records the ledger did not hold, now written
    present: int = 0  # records the ledger already held (dropped from the journal)
    quarantined: int = 0  # refused or unreadable: moved to the quarantine file
    kept: int = 0  # not settled (the ledger went away): still in the journal


@dataclass(slots=True, eq=False)
class _Entry:
    record: RequestRecord
    #: Resolved when the request may be answered; None for replayed records.
    durable: asyncio.Future[None] | None
    #: The journal segment holding it; None when it is not journaled (then it is durable only
    #: when the ledger commits it).
    segment: int | None = None


@dataclass(slots=True)
class _Segment:
    appended: int = 0
    settled: int = 0
    closed: bool = False


@dataclass(slots=True)
class _Outcomes:
    """What a batch came to: written (or already there), refused (with why), or not settled."""

    written: list[_Entry] = field(default_factory=list)
    refused: list[tuple[_Entry, str]] = field(default_factory=list)
    unsettled: list[_Entry] = field(default_factory=list)


def _resolve(entry: _Entry, error: BaseException | None = None) -> None:
    future = entry.durable
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class LedgerWriter:
    """The journal and the ledger's write-behind (see the module docstring)."""

    def __init__(
        self,
        ledger: CostLedger,
        on_written: Callable[[RequestRecord], None] | None = None,
        *,
        on_committing: Callable[[RequestRecord], None] | None = None,
        journal_dir: Path | None = None,
        durability: Durability = Durability.FSYNC,
        retry_delays_s: tuple[float, ...] = (0.1, 0.5, 2.0),
        max_batch: int = 512,
        segment_records: int = 1024,
        segment_bytes: int = 2 << 20,
        replay_interval_s: float = 5.0,
        linger_s: float = 0.05,
        flushers: int = 2,
        sync_file: Callable[[int], None] | None = None,
    ) -> None:
        """`segment_bytes`: each journal segment preallocated (0: appended, for
        copy-on-write filesystems); `flushers`: fdatasyncs in flight at most; `sync_file`:
        the fdatasync itself (a test injects one that records the order)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._ledger = ledger
        self._on_written = on_written
        self._on_committing = on_committing
        self._journal: RecordJournal | None = None
        self._group: GroupCommit | None = None
        if journal_dir is not None:
            self._journal = RecordJournal(
                journal_dir,
                segment_records=segment_records,
                segment_bytes=segment_bytes,
                flushers=flushers,
                **({"sync_file": sync_file} if sync_file is not None else {}),
            )
            self._group = GroupCommit(
                self._journal.sync,
                flushers=flushers,
                on_synced=self._synced_up_to,
                on_failed=self._sync_failed,
            )
        self._durability = durability
        self._retry_delays = retry_delays_s
        self._max_batch = max_batch
        self._replay_interval_s = replay_interval_s
        self._io = ThreadPoolExecutor(1, thread_name_prefix="ledger-journal")
        self._to_journal: list[_Entry] = []
        #: written, waiting for a sync: (write number, entries), in order
        self._to_sync: deque[tuple[int, list[_Entry]]] = deque()
        self._synced = asyncio.Event()
        self._synced.set()
        self._linger_s = linger_s
        self._to_ledger: list[_Entry] = []
        self._preparing: Future[None] | None = None
        self._ledger_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._outstanding = 0  # submitted, not yet written, refused or left to the journal
        self._segments: dict[int, _Segment] = {}
        self._current_segment = 0
        #: submitted, not yet in the ledger (nor refused, nor left to the journal), by id
        self._unwritten: dict[str, RequestRecord] = {}
        self._replay_paths: list[Path] = []  # journal files to write into the ledger
        self._handed_to_replay: set[int] = set()  # this run's segments among them
        self._leftovers_found = False

    @property
    def journal_dir(self) -> Path | None:
        return self._journal.directory if self._journal is not None else None

    # ---- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._journal is not None:
            self._preparing = self._io.submit(self._journal.prepare_segment)
        if self._ledger_task is None:
            self._ledger_task = asyncio.get_running_loop().create_task(
                self._ledger_loop(), name="ledger-writer"
            )

    async def close(self, timeout_s: float = 5.0) -> None:
        """Journal everything submitted, give the ledger `timeout_s` to take what is queued,
        leave the rest in the journal. Returns within about `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        if self._journal is not None:
            self._write_journal()
        try:
            await asyncio.wait_for(self._synced.wait(), timeout_s)
        except TimeoutError:
            log.error("stopping before the journal's last sync returned")
        flushers_stopped = True
        if self._group is not None:  # the flushers stop once idle (at once, normally)
            remaining = max(0.0, deadline - time.monotonic())
            flushers_stopped = await self._run_io(self._group.close, remaining)
        if self._ledger_task is not None:
            self._stopping.set()
            self._wake.set()
            remaining = max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait([self._ledger_task], timeout=remaining)
            if not done:
                self._ledger_task.cancel()
                await asyncio.gather(self._ledger_task, return_exceptions=True)
            self._ledger_task = None
        left = len(self._to_ledger)
        if left:
            log.warning(
                "stopping with records not yet in the ledger; they stay in the journal and are "
                "written at the next start",
                records=left,
                journal=str(self.journal_dir or ""),
            )
            self._left_to_journal(self._to_ledger)
            self._to_ledger = []
        if self._journal is not None and not flushers_stopped:
            # a sync still hangs on the disk: leave its files open (the process is exiting)
            log.error("stopping with a journal sync still running", journal=str(self.journal_dir))
        elif self._journal is not None:
            current = self._segments.get(self._current_segment)
            self._journal.rotate()  # on the loop, like write(); close() syncs and closes
            await self._run_io(self._journal.close)
            if current is not None:
                current.closed = True
                self._schedule_trim(self._current_segment)
        self._io.shutdown(wait=True)

    def unwritten(self, request_id: str) -> RequestRecord | None:
        """The record of `request_id` when it was submitted here and is not in the ledger yet
        (a caller may ask about a request the moment it is answered)."""
        return self._unwritten.get(request_id)

    async def flush(self) -> None:
        """Wait until everything submitted so far is written, refused or left to the journal."""
        await self._idle.wait()

    # ---- stage 1: the journal ----------------------------------------------------------------

    def submit(self, record: RequestRecord) -> asyncio.Future[None]:
        """Hand `record` over; the future resolves when the request may be answered."""
        loop = asyncio.get_running_loop()
        entry = _Entry(record, loop.create_future())
        self._unwritten[record.request_id] = record
        self._outstanding += 1
        self._idle.clear()
        if self._journal is None:
            self._queue_for_ledger([entry])
        else:
            # written at once (a write() into the page cache): in page-cache mode the future is
            # already done, and in fsync mode the sync can start in this very turn of the loop
            self._to_journal.append(entry)
            self._write_journal()
        return entry.durable  # type: ignore[return-value]

    def _write_journal(self) -> None:
        """Stage 1a, on the event loop: what was submitted, in one write() into the page cache
        (no disk wait), then to the sync stage and the ledger."""
        batch, self._to_journal = self._to_journal, []
        if not batch:
            return
        assert self._journal is not None
        try:
            seq, write = self._journal.write([entry.record for entry in batch])
        except Exception as exc:  # OSError mostly; the requests must not wait forever
            self._journal_failed(batch, exc, "written")
            self._queue_for_ledger(batch)
            return
        if self._journal.needs_segment and (self._preparing is None or self._preparing.done()):
            self._preparing = self._io.submit(self._journal.prepare_segment)
        self._note_appended(seq, len(batch))
        for entry in batch:
            entry.segment = seq
            if self._durability is Durability.PAGE_CACHE:
                _resolve(entry)
        self._to_sync.append((write, batch))
        self._synced.clear()
        assert self._group is not None
        self._group.request(write)  # stage 1b: a flusher syncs it (at once when one is idle)
        self._queue_for_ledger(batch)

    def _synced_up_to(self, covers: int) -> None:
        """Posted to the loop by a flusher: every write up to `covers` is durable."""
        while self._to_sync and self._to_sync[0][0] <= covers:
            for entry in self._to_sync.popleft()[1]:
                _resolve(entry)
        if not self._to_sync:
            self._synced.set()

    def _sync_failed(self, exc: BaseException) -> None:
        """Posted by a flusher whose fdatasync failed: nothing waiting is known to be on disk
        (Linux drops the pages of a failed writeback), so the ledger commit resolves them."""
        batch = [entry for _, entries in self._to_sync for entry in entries]
        self._to_sync.clear()
        self._journal_failed(batch, exc, "synced")
        self._synced.set()

    def _journal_failed(self, batch: list[_Entry], exc: BaseException, what: str) -> None:
        log.error(
            f"the ledger journal cannot be {what}: these records are durable only once the "
            "ledger commits them",
            journal=str(self.journal_dir or ""),
            records=len(batch),
            error=str(exc),
        )
        for entry in batch:
            entry.segment = None  # not in the journal: its future resolves on commit

    def _note_appended(self, seq: int, count: int) -> None:
        if seq in self._handed_to_replay:
            # appended while its segment was being left to replay: the replay writes these
            # (or finds them written), so they need no bookkeeping here
            return
        if seq != self._current_segment:
            previous = self._segments.get(self._current_segment)
            if previous is not None:
                previous.closed = True
                self._schedule_trim(self._current_segment)
            self._current_segment = seq
        self._segments.setdefault(seq, _Segment()).appended += count

    # ---- stage 2: the ledger -----------------------------------------------------------------

    def _queue_for_ledger(self, entries: list[_Entry]) -> None:
        self._to_ledger.extend(entries)
        self._wake.set()

    async def _ledger_loop(self) -> None:
        while True:
            if not self._to_ledger:
                if self._stopping.is_set():
                    return
                self._wake.clear()
                timeout = self._replay_interval_s if self._replay_paths else None
                try:  # asyncio.timeout, not wait_for: no task of its own per wait
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            if self._to_ledger:
                batch = self._to_ledger[: self._max_batch]
                del self._to_ledger[: len(batch)]
                outcome = await self._commit(batch)
                if outcome.unsettled:
                    self._spill(outcome.unsettled + self._to_ledger)
                    self._to_ledger = []
                    continue
                if self._journal is not None and len(self._to_ledger) < self._max_batch:
                    # journaled records can wait a moment: fewer, larger ledger commits
                    await self._pause(self._linger_s)
            if self._replay_paths and not self._stopping.is_set():
                await self._replay_files()

    async def _commit(self, batch: Sequence[_Entry]) -> _Outcomes:
        """Write `batch` into the ledger, retrying it whole while the ledger is unreachable."""
        records = [entry.record for entry in batch]
        result = _Outcomes()
        outcomes: list[ValueError | None] | None = None
        for delay in (*self._retry_delays, None):
            if self._on_committing is not None:
                for record in records:
                    self._on_committing(record)
            try:
                outcomes = await self._ledger.record_many(records)
                break
            except LedgerUnavailable as exc:
                if delay is None or self._stopping.is_set():
                    log.error(
                        "ledger unavailable past the retry budget",
                        records=len(records),
                        error=str(exc),
                    )
                    break
                log.warning(
                    "ledger unavailable; retrying the batch",
                    records=len(records), retry_in_s=delay, error=str(exc),
                )  # fmt: skip
                await self._pause(delay)
            except LedgerError as exc:
                log.error(
                    "the ledger failed to write a batch", records=len(records), error=str(exc)
                )
                break
        if outcomes is None:
            result.unsettled.extend(batch)
            return result
        refused = [(e, o) for e, o in zip(batch, outcomes, strict=True) if o is not None]
        present: set[str] = set()
        if refused:
            try:  # "already in the ledger" is asked, not read from the error
                present = await self._ledger.existing_ids([e.record.request_id for e, _ in refused])
            except LedgerError as exc:
                log.error("cannot check refused records against the ledger", error=str(exc))
                result.unsettled.extend(e for e, _ in refused)
                refused = []
        for entry, error in zip(batch, outcomes, strict=True):
            if error is None or entry.record.request_id in present:
                result.written.append(entry)
        result.refused.extend(
            (e, str(error)) for e, error in refused if e.record.request_id not in present
        )
        for entry in result.written:
            if self._on_written is not None:
                self._on_written(entry.record)
            _resolve(entry)
        if result.refused:
            await self._quarantine(result.refused)
        for entry in (*result.written, *(e for e, _ in result.refused)):
            self._settle(entry)
        return result

    async def _quarantine(self, refused: list[tuple[_Entry, str]]) -> None:
        for entry, reason in refused:
            log.error(
                "the ledger refused a record; moved to the quarantine file",
                request_id=entry.record.request_id,
                reason=reason,
                quarantine=str(self._journal.quarantine_path if self._journal else ""),
            )
        if self._journal is None:
            for entry, reason in refused:
                _resolve(entry, LedgerError(f"the ledger refused the request's record: {reason}"))
            return
        lines = [{"reason": reason, "record": record_to_json(e.record)} for e, reason in refused]
        try:
            await self._run_io(self._journal.quarantine, lines)
        except OSError as exc:
            log.error("the quarantine file cannot be written", error=str(exc))
        for entry, _ in refused:
            _resolve(entry)

    def _spill(self, entries: list[_Entry]) -> None:
        """Past the retry budget: leave `entries` to the journal, all at once."""
        journaled = [e for e in entries if e.segment is not None]
        lost = [e for e in entries if e.segment is None]
        if journaled:
            log.error(
                "ledger unavailable: records left in the journal, written when it is back",
                records=len(journaled),
                journal=str(self.journal_dir or ""),
            )
            self._left_to_journal(journaled)
        if lost:
            log.error("ledger unavailable and no journal: records not durable", records=len(lost))
            error = LedgerUnavailable("the ledger cannot take the request's cost record now")
            for entry in lost:
                self._unwritten.pop(entry.record.request_id, None)
                _resolve(entry, error)
            self._done(len(lost))

    def _left_to_journal(self, entries: list[_Entry]) -> None:
        """Their segments will be replayed from disk; the current one is closed for that."""
        for entry in entries:
            self._unwritten.pop(entry.record.request_id, None)
        segments = {e.segment for e in entries if e.segment is not None}
        if self._current_segment in segments and self._journal is not None:
            self._journal.rotate()  # on the loop, like write()
            self._segments.get(self._current_segment, _Segment()).closed = True
            self._current_segment = 0
        for seq in sorted(segments):
            if self._journal is not None and seq not in self._handed_to_replay:
                self._segments.pop(seq, None)
                self._handed_to_replay.add(seq)
                self._replay_paths.append(self._journal.segment_path(seq))
        self._done(len(entries))

    def _settle(self, entry: _Entry) -> None:
        self._unwritten.pop(entry.record.request_id, None)
        self._done(1)
        if entry.segment is None:
            return
        segment = self._segments.get(entry.segment)
        if segment is None:  # replayed from disk as a whole already
            return
        segment.settled += 1
        self._schedule_trim(entry.segment)

    def _done(self, count: int) -> None:
        self._outstanding -= count
        if self._outstanding <= 0:
            self._outstanding = 0
            self._idle.set()

    def _schedule_trim(self, seq: int) -> None:
        segment = self._segments.get(seq)
        if segment is not None and segment.closed and segment.settled >= segment.appended:
            del self._segments[seq]
            assert self._journal is not None
            self._io.submit(self._journal.remove, self._journal.segment_path(seq))

    # ---- replay ------------------------------------------------------------------------------

    async def replay(self) -> ReplayResult:
        """Write the journal files left by an earlier run into the ledger (at start-up, before
        serving); each file is removed once every record in it is settled."""
        if self._journal is None:
            return ReplayResult()
        if not self._leftovers_found:
            self._leftovers_found = True
            self._replay_paths[:0] = await self._run_io(self._journal.leftovers)
        return await self._replay_files()

    async def _replay_files(self) -> ReplayResult:
        assert self._journal is not None
        totals = {"written": 0, "present": 0, "quarantined": 0, "kept": 0}
        while self._replay_paths:
            path = self._replay_paths[0]
            counts = await self._replay_file(path)
            for name, value in counts.items():
                totals[name] += value
            if counts["kept"]:
                break  # the ledger went away again: the rest waits too
            self._replay_paths.pop(0)
            await self._run_io(self._journal.remove, path)
        result = ReplayResult(**totals)
        if any(totals.values()):
            log.info("ledger journal replayed", **totals)
        return result

    async def _replay_file(self, path: Path) -> dict[str, int]:
        assert self._journal is not None
        counts = {"written": 0, "present": 0, "quarantined": 0, "kept": 0}
        records: dict[str, RequestRecord] = {}
        unreadable: list[dict[str, Any]] = []
        for line in await self._run_io(self._journal.read, path):
            try:
                record = record_from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                unreadable.append({"reason": f"unreadable journal line: {exc}", "line": line})
                continue
            records.setdefault(record.request_id, record)
        if unreadable:
            log.error(
                "unreadable journal lines moved to the quarantine file",
                lines=len(unreadable),
                journal=str(path),
            )
            await self._run_io(self._journal.quarantine, unreadable)
            counts["quarantined"] += len(unreadable)
        try:
            present = await self._ledger.existing_ids(list(records))
        except LedgerError as exc:
            log.warning("journal replay waits: the ledger is unavailable", error=str(exc))
            counts["kept"] = len(records)
            return counts
        counts["present"] = len(present)
        missing = [_Entry(r, None) for rid, r in records.items() if rid not in present]
        for start in range(0, len(missing), self._max_batch):
            batch = missing[start : start + self._max_batch]
            self._outstanding += len(batch)
            outcome = await self._commit(batch)
            counts["written"] += len(outcome.written)
            counts["quarantined"] += len(outcome.refused)
            if outcome.unsettled:
                self._done(len(outcome.unsettled))
                counts["kept"] = len(missing) - start - len(outcome.written) - len(outcome.refused)
                return counts
        return counts

    # ---- helpers -----------------------------------------------------------------------------

    async def _run_io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, lambda: fn(*args, **kwargs))

    async def _pause(self, delay: float) -> None:
        """Sleep `delay` seconds, or less when the writer is stopping."""
        try:
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        except TimeoutError:
            pass
