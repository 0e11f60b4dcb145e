"""How long this machine's disk takes to make a journal record durable: the floor under any
answer that waits for an fsynced record (the benchmarks print it beside their numbers).

Two ways of writing a ~1.5 KB record, alternating so both see the same disk weather:
appended to a growing file (fdatasync also commits the new size in the filesystem's journal)
and written in place into a preallocated, already-synced file (fdatasync writes the data and
flushes the disk's cache), which is what the ledger journal does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["fdatasync_times", "fsync_probe", "percentile"]

RECORD = b"x" * 1499 + b"\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def fdatasync_times(directory: Path, count: int = 200) -> dict[str, list[float]]:
    """fdatasync after each of `count` records per way, in `directory`: milliseconds."""
    size = count * len(RECORD)
    appended = directory / "fsync-probe-append"
    in_place = directory / "fsync-probe-in-place"
    append_fd = os.open(appended, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    place_fd = os.open(in_place, os.O_RDWR | os.O_CREAT, 0o644)
    times: dict[str, list[float]] = {"append": [], "in place": []}
    try:
        os.write(place_fd, bytes(size))
        os.fsync(place_fd)
        for i in range(count):
            for way in ("append", "in place") if i % 2 else ("in place", "append"):
                if way == "append":
                    fd = append_fd
                    os.write(fd, RECORD)
                else:
                    fd = place_fd
                    os.pwrite(fd, RECORD, i * len(RECORD))
                started = time.perf_counter()
                os.fdatasync(fd)
                times[way].append((time.perf_counter() - started) * 1000)
    finally:
        os.close(append_fd)
        os.close(place_fd)
        appended.unlink()
        in_place.unlink()
    return times


def fsync_probe(directory: Path, count: int = 200) -> str:
    """`fdatasync_times` as one line with each way's p50 and p99."""
    times = fdatasync_times(directory, count)
    parts = [
        f"{way} p50 {percentile(t, 0.5):.2f} ms, p99 {percentile(t, 0.99):.2f} ms"
        for way, t in times.items()
    ]
    return "raw fdatasync of this disk: " + "; ".join(parts)
