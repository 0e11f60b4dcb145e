"""The ledger journal: every record, appended (and fsynced) here before the request is answered.

A directory of segment files, `journal-<n>.jsonl`, one JSON record per line. The writer
appends each batch of records to the current segment with one write() (`write`), and flusher
threads make everything written so far durable with one fdatasync per file (`sync`; several
at once, see `group_commit.py`), so a batch can be written while earlier ones are being
synced (group commit, pipelined). A new segment starts after `segment_records` records or when
the next write no longer fits in its `segment_bytes`; a segment is removed once every record
in it is in the ledger. Segments found at start-up (a previous process was killed, or the
ledger was down) are replayed into the ledger before the router serves; any other `*.jsonl`
file put in the directory (say, an older router's spill file) is replayed the same way.
Records the ledger refuses for any reason but "already there" go to `quarantine.jsonl` with
the reason, never silently away.

**Preallocated segments.** A segment file is created ahead of need (`prepare_segment`, on a
worker thread) already `segment_bytes` long, filled with NUL bytes and fsynced, with a
directory sync so its name survives a power cut too. Records then overwrite the fill in
place: the file's size and block map never change, so an fdatasync only has to write the
data and flush the disk's cache; an append would also wait for the filesystem's journal to
commit the new size, a commit shared with every other file being written on that
filesystem (the ledger's own database among them). Readers stop at the fill (`read`).
`segment_bytes=0` appends instead (for copy-on-write filesystems, where overwriting in place
is not in place). A write larger than a whole segment still goes in, past the end.

`write` costs a write() into the page cache (microseconds): the router calls it on its event
loop, and never waits there for a disk. Writes are numbered; `sync(slot)` (fdatasync: as long
as the disk takes) runs on a flusher thread and says up to which write it made durable. Each
flusher slot syncs through its own descriptor of the file, opened when the file is created,
so each sees every writeback error (Linux reports one once per open file). `leftovers`,
`read`, `remove`, `quarantine` and `close` are blocking and run on a worker thread. They
share the list of open files, the write numbers and the prepared segment, under a lock.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from switchyard.router.ledger.records import (
    ROUTE_ONLY,
    AttemptRecord,
    RequestRecord,
)

__all__ = [
    "QUARANTINE_NAME",
    "RecordJournal",
    "record_from_json",
    "record_to_json",
]

QUARANTINE_NAME = "quarantine.jsonl"
_SEGMENT = re.compile(r"journal-(\d{8})\.jsonl")
_sync = getattr(os, "fdatasync", os.fsync)
_FILL = 1 << 20  # preallocation is written in chunks of this many bytes


_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord) if f.name != "attempts")
_ATTEMPT_FIELDS = tuple(f.name for f in fields(AttemptRecord))


def record_to_json(record: RequestRecord) -> dict[str, Any]:
    """A ledger record as JSON-ready data (the journal's line format)."""
    data = {name: getattr(record, name) for name in _RECORD_FIELDS}
    data["time"] = record.time.isoformat()
    data["attempts"] = [{n: getattr(a, n) for n in _ATTEMPT_FIELDS} for a in record.attempts]
    return data


def record_from_json(data: dict[str, Any]) -> RequestRecord:
    """The record of a journal line (ValueError, KeyError or TypeError when it is not one)."""
    data = dict(data)
    attempts = tuple(AttemptRecord(**attempt) for attempt in data.pop("attempts"))
    time_ = datetime.fromisoformat(data.pop("time"))
    if "operation" not in data:  # written before records carried it (schema version 1)
        data["operation"] = (
            ROUTE_ONLY if data.get("status") == "OK" and not attempts else "complete"
        )
    return RequestRecord(**data, time=time_, attempts=attempts)


def _line(record: RequestRecord) -> bytes:
    return (json.dumps(record_to_json(record), sort_keys=True) + "\n").encode()


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(eq=False)
class _Segment:
    seq: int
    fd: int  # written through (pwrite)
    sync_fds: tuple[int, ...]  # one per flusher slot, opened with the file
    capacity: int  # bytes preallocated (0: appended)
    offset: int = 0  # where the next write goes
    written: int = 0  # the write number of its last write (0: none)
    syncing: int = 0  # syncs running on it
    retired: bool = False  # rotated: no more writes; closed once synced

    def fits(self, size: int) -> bool:
        """Whether `size` more bytes go in without growing the file (or it is still empty:
        a write larger than a whole segment goes in anyway)."""
        return not self.capacity or not self.offset or self.offset + size <= self.capacity

    def close(self) -> None:
        for fd in (self.fd, *self.sync_fds):
            os.close(fd)


class RecordJournal:
    """The journal directory (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_records: int = 1024,
        segment_bytes: int = 2 << 20,
        flushers: int = 1,
        sync_file: Callable[[int], None] = _sync,
    ) -> None:
        if segment_records < 1:
            raise ValueError("segment_records must be at least 1")
        if segment_bytes < 0:
            raise ValueError("segment_bytes must not be negative")
        if flushers < 1:
            raise ValueError("flushers must be at least 1")
        self.directory = directory
        self._segment_records = segment_records
        self._segment_bytes = segment_bytes
        self._flushers = flushers
        self._sync_file = sync_file  # fdatasync; a test passes one that records the order
        self._lock = threading.Lock()
        self._preparing = threading.Lock()
        self._open: list[_Segment] = []  # the current segment last
        self._current: _Segment | None = None
        self._prepared: _Segment | None = None  # the next segment, created ahead of need
        self._own: set[int] = set()  # segments this journal created (never leftovers)
        self._count = 0  # records in the current segment
        self._next_seq = 1
        self._writes = 0  # writes numbered in order
        self._durable = 0  # every write up to this number is synced

    @property
    def quarantine_path(self) -> Path:
        return self.directory / QUARANTINE_NAME

    def segment_path(self, seq: int) -> Path:
        return self.directory / f"journal-{seq:08d}.jsonl"

    def leftovers(self) -> list[Path]:
        """Journal files already in the directory (replay them), oldest segment first.

        Creates the directory; later segments of this process are numbered after these."""
        self.directory.mkdir(parents=True, exist_ok=True)
        segments: list[tuple[int, Path]] = []
        others: list[Path] = []
        with self._lock:
            own = set(self._own)
        for path in self.directory.glob("*.jsonl"):
            if path.name == QUARANTINE_NAME:
                continue
            match = _SEGMENT.fullmatch(path.name)
            if match and int(match.group(1)) in own:
                continue  # this journal's own
            if match:
                segments.append((int(match.group(1)), path))
            else:
                others.append(path)
        segments.sort()
        if segments:
            with self._lock:
                self._next_seq = max(self._next_seq, segments[-1][0] + 1)
        return sorted(others) + [path for _, path in segments]

    def write(self, records: list[RequestRecord]) -> tuple[int, int]:
        """Append `records` with one write(); (their segment, the write's number). The write
        is durable once a `sync` returning that number or a higher one has returned."""
        data = b"".join(_line(record) for record in records)
        segment = self._current
        if segment is None or self._count >= self._segment_records or not segment.fits(len(data)):
            segment = self._switch_segment()
        view = memoryview(data)
        while view:
            done = os.pwrite(segment.fd, view, segment.offset)
            segment.offset += done
            view = view[done:]
        self._count += len(records)
        with self._lock:  # numbered only once written: a sync that sees it covers it
            self._writes += 1
            segment.written = self._writes
            return segment.seq, self._writes

    def append(self, records: list[RequestRecord]) -> int:
        """`write` then `sync`: appended and durable; their segment."""
        seq, _ = self.write(records)
        self.sync()
        return seq

    def sync(self, slot: int = 0) -> int:
        """fdatasync every file written since the last completed sync, through flusher
        `slot`'s descriptors; the number of the last write this covers. Several may run at
        once (the disk takes overlapping flushes faster than queued ones); rotated files are
        closed once synced and no sync uses them."""
        with self._lock:
            covers = self._writes
            pending = [s for s in self._open if s.written > self._durable]
            for segment in pending:
                segment.syncing += 1
        synced = False
        try:
            for segment in pending:
                self._sync_file(segment.sync_fds[slot])
            synced = True
        finally:
            with self._lock:
                for segment in pending:
                    segment.syncing -= 1
                if synced:
                    self._durable = max(self._durable, covers)
                done = [
                    s
                    for s in self._open
                    if s.retired and s.syncing == 0 and s.written <= self._durable
                ]
                self._open = [s for s in self._open if s not in done]
            for segment in done:
                segment.close()
        return covers

    def rotate(self) -> int:
        """Retire the current segment (the next write starts another); its number, or 0."""
        segment, self._current = self._current, None
        if segment is None:
            return 0
        with self._lock:
            segment.retired = True
        return segment.seq

    @property
    def needs_segment(self) -> bool:
        """Whether `prepare_segment` should run (no next segment is ready)."""
        with self._lock:
            return self._prepared is None

    def prepare_segment(self) -> None:
        """Create the next segment file ahead of need: preallocated (written with the fill,
        fsynced) and the directory synced for it."""
        with self._preparing:  # one at a time: a second caller waits and finds it ready
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._lock:
                if self._prepared is not None:
                    return
                seq = self._next_seq
                while self.segment_path(seq).exists():  # an earlier run's, left for replay
                    seq += 1
                self._next_seq = seq + 1
                self._own.add(seq)
            path = self.segment_path(seq)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            fds = [fd]
            try:
                # every flusher's descriptor is open before the first write: each one then
                # reports any writeback error of this file
                fds += [os.open(path, os.O_RDONLY | os.O_CLOEXEC) for _ in range(self._flushers)]
                if self._segment_bytes:
                    fill = bytes(_FILL)
                    for start in range(0, self._segment_bytes, _FILL):
                        os.pwrite(fd, fill[: self._segment_bytes - start], start)
                    os.fsync(fd)  # the size and the blocks: later syncs only write data
                _sync_directory(self.directory)  # the new file's name survives a power cut
            except BaseException:
                for opened in fds:
                    os.close(opened)
                path.unlink(missing_ok=True)
                raise
            with self._lock:
                self._prepared = _Segment(seq, fd, tuple(fds[1:]), self._segment_bytes)

    def _switch_segment(self) -> _Segment:
        self.rotate()
        if self.needs_segment:  # not prepared in time: create it here (blocking, rare)
            self.prepare_segment()
        with self._lock:
            segment, self._prepared = self._prepared, None
            assert segment is not None
            self._open.append(segment)
        self._current = segment
        self._count = 0
        return segment

    @staticmethod
    def read(path: Path) -> list[str]:
        """The records' lines of a journal file, without the fill ([] when it is gone)."""
        try:
            text = path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return RecordJournal.lines(text)

    @staticmethod
    def lines(text: str) -> list[str]:
        """The records' lines in a journal file's text: the fill after the last write (and
        any a torn write left) is not part of a line."""
        stripped = (line.strip("\x00") for line in text.split("\n"))
        return [line for line in stripped if line.strip()]

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)

    def quarantine(self, entries: list[dict[str, Any]]) -> None:
        """Append `entries` ({"reason", "record" or "line"}) to the quarantine file, fsynced."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.quarantine_path.open("ab") as out:
            out.write(b"".join((json.dumps(e, sort_keys=True) + "\n").encode() for e in entries))
            out.flush()
            os.fsync(out.fileno())

    def close(self) -> None:
        """Sync and close every file (call when no `write` or `sync` is running); remove the
        prepared segment that was never written."""
        self.rotate()
        try:
            self.sync()
        finally:
            with self._lock:
                prepared, self._prepared = self._prepared, None
                left, self._open = self._open, []  # synced (or failing): closed either way
            for segment in left:
                segment.close()
            if prepared is not None:
                prepared.close()
                self.segment_path(prepared.seq).unlink(missing_ok=True)
