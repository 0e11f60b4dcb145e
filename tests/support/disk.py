"""How long this machine's disk takes to make an append durable: the floor under any answer
that waits for an fsynced record (the benchmarks print it beside their numbers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["fsync_probe"]


def fsync_probe(directory: Path, count: int = 200) -> str:
    """fdatasync after a 1.5 KB append (about one journal record), `count` times, in
    `directory`; a line with the p50 and p99."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    times = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 1500)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"raw fdatasync of this disk: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
