"""The spill journal: ledger records the ledger could not take, kept on disk until replayed.

One JSON record per line, appended and fsynced. `SpillJournal.replace` rewrites the file
atomically (temporary file + rename) with the lines still to keep.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from switchyard.router.ledger.records import AttemptRecord, RequestRecord

__all__ = ["SpillJournal", "record_from_json", "record_to_json"]


def record_to_json(record: RequestRecord) -> dict[str, Any]:
    """A ledger record as JSON-ready data (the spill journal's line format)."""
    data = asdict(record)
    data["time"] = record.time.isoformat()
    return data


def record_from_json(data: dict[str, Any]) -> RequestRecord:
    attempts = tuple(AttemptRecord(**attempt) for attempt in data.pop("attempts"))
    time_ = datetime.fromisoformat(data.pop("time"))
    return RequestRecord(**data, time=time_, attempts=attempts)


class SpillJournal:
    """The journal file at `path` (blocking I/O: call it from a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, records: list[RequestRecord]) -> None:
        """Append `records` and fsync before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as journal:
            for record in records:
                journal.write(json.dumps(record_to_json(record), sort_keys=True) + "\n")
            journal.flush()
            os.fsync(journal.fileno())

    def lines(self) -> list[str]:
        """The journal's non-empty lines ([] when there is no journal)."""
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text("utf-8").splitlines() if line.strip()]

    def replace(self, kept: list[str]) -> None:
        """Keep only `kept` (atomically); remove the file when nothing is kept."""
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept), "utf-8")
        os.replace(tmp, self.path)
        if not kept:
            self.path.unlink()
