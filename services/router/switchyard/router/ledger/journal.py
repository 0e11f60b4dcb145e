"""The ledger journal: every record, appended (and fsynced) here before the request is answered.

A directory of segment files, `journal-<n>.jsonl`, one JSON record per line. The writer
appends each batch of records to the current segment with one write and one `fdatasync`
(group commit); a new segment starts after `segment_records` records, and creating one also
syncs the directory, so the file itself survives a power cut. A segment is removed once every
record in it is in the ledger. Segments found at start-up (a previous process was killed, or
the ledger was down) are replayed into the ledger before the router serves; any other
`*.jsonl` file put in the directory (say, an older router's spill file) is replayed the same
way. Records the ledger refuses for any reason but "already there" go to `quarantine.jsonl`
with the reason, never silently away.

Blocking I/O throughout: the writer calls it from one worker thread, so calls never overlap.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import IO, Any

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


def record_to_json(record: RequestRecord) -> dict[str, Any]:
    """A ledger record as JSON-ready data (the journal's line format)."""
    data = asdict(record)
    data["time"] = record.time.isoformat()
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


class RecordJournal:
    """The journal directory (see the module docstring). Not thread-safe: one caller thread."""

    def __init__(self, directory: Path, *, segment_records: int = 1024) -> None:
        if segment_records < 1:
            raise ValueError("segment_records must be at least 1")
        self.directory = directory
        self._segment_records = segment_records
        self._file: IO[bytes] | None = None
        self._seq = 0
        self._count = 0  # records in the current segment
        self._next_seq = 1

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
        for path in self.directory.glob("*.jsonl"):
            if path.name == QUARANTINE_NAME:
                continue
            match = _SEGMENT.fullmatch(path.name)
            if match:
                segments.append((int(match.group(1)), path))
            else:
                others.append(path)
        segments.sort()
        if segments:
            self._next_seq = max(self._next_seq, segments[-1][0] + 1)
        return sorted(others) + [path for _, path in segments]

    def append(self, records: list[RequestRecord], *, sync: bool) -> int:
        """Append `records` with one write (and, when `sync`, one fdatasync); their segment."""
        if self._file is None or self._count >= self._segment_records:
            self._start_segment()
        assert self._file is not None
        self._file.write(b"".join(_line(record) for record in records))
        self._file.flush()
        if sync:
            _sync(self._file.fileno())
        self._count += len(records)
        return self._seq

    def sync(self) -> None:
        """fdatasync what was appended without `sync`."""
        if self._file is not None:
            _sync(self._file.fileno())

    def rotate(self) -> int:
        """Close the current segment (the next append starts another); the closed one's number,
        0 when none was open."""
        closed = self._seq if self._file is not None else 0
        self._close_file()
        return closed

    def _start_segment(self) -> None:
        self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq = self._next_seq
        self._next_seq += 1
        self._file = open(self.segment_path(self._seq), "ab")  # noqa: SIM115 - kept open
        self._count = 0
        _sync_directory(self.directory)  # the new file's name survives a power cut too

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.flush()
            _sync(self._file.fileno())
            self._file.close()
            self._file = None

    @staticmethod
    def read(path: Path) -> list[str]:
        """The non-empty lines of a journal file ([] when it is gone)."""
        try:
            text = path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()]

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
        self._close_file()
