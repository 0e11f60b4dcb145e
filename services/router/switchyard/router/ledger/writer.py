"""`LedgerWriter`: ledger records written off the request path, in order.

Nothing a request cost is dropped: a write that fails because the ledger is unreachable is
retried with backoff (`retry_delays_s`); a record still not written after that, or one the
ledger refuses, is appended to the spill journal (`switchyard.router.ledger.journal`) and
logged. `replay_spill()` (run at start-up) writes spilled records into the ledger and keeps only
those that still fail. The tenant's spend counts a record from the moment it is submitted
(`SpendTracker.add_pending`), written or not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from switchyard.router.ledger.interface import CostLedger, LedgerError, LedgerUnavailable
from switchyard.router.ledger.journal import SpillJournal, record_from_json
from switchyard.router.ledger.records import RequestRecord
from switchyard.runtime.logging import get_logger

__all__ = ["LedgerWriter"]

log = get_logger(__name__)


class LedgerWriter:
    """Writes ledger records in order on one task; `close()` drains what is queued."""

    def __init__(
        self,
        ledger: CostLedger,
        on_written: Callable[[RequestRecord], None] | None = None,
        *,
        on_committing: Callable[[RequestRecord], None] | None = None,
        spill_path: Path | None = None,
        retry_delays_s: tuple[float, ...] = (0.1, 0.5, 2.0),
    ):
        self._ledger = ledger
        self._queue: asyncio.Queue[RequestRecord | None] = asyncio.Queue()
        self._on_written = on_written
        self._on_committing = on_committing
        self._journal = SpillJournal(spill_path) if spill_path is not None else None
        self._retry_delays = retry_delays_s
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._pending = 0

    @property
    def _spill_path(self) -> Path | None:
        return self._journal.path if self._journal is not None else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, record: RequestRecord) -> None:
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(record)

    async def _write(self, record: RequestRecord) -> None:
        for delay in (*self._retry_delays, None):
            try:
                if self._on_committing is not None:
                    self._on_committing(record)
                await self._ledger.record(record)
                return
            except LedgerUnavailable as exc:
                if delay is None:
                    raise
                log.warning(
                    "ledger unavailable; retrying",
                    request_id=record.request_id, retry_in_s=delay, error=str(exc),
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _run(self) -> None:
        while True:
            record = await self._queue.get()
            if record is None:
                return
            try:
                await self._write(record)
                if self._on_written is not None:
                    self._on_written(record)
            except Exception as exc:  # the request is answered; keep the router serving
                try:
                    spilled = await asyncio.to_thread(self._spill, [record])
                    outcome = (
                        "record kept in the spill journal"
                        if spilled
                        else ("record lost (no spill journal configured)")
                    )
                except OSError as spill_error:
                    outcome = f"record lost (spill journal not writable: {spill_error})"
                log.error(
                    f"ledger write failed; {outcome}",
                    request_id=record.request_id,
                    spill_path=str(self._spill_path or ""),
                    exc_info=exc,
                )
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    def _spill(self, records: list[RequestRecord]) -> bool:
        if self._journal is None:
            return False
        self._journal.append(records)
        return True

    async def replay_spill(self) -> int:
        """Write the spill journal's records into the ledger; return how many were written.

        Records the ledger already holds (same request id) count as written. Those that still
        fail stay in the journal.
        """
        if self._journal is None:
            return 0
        lines = await asyncio.to_thread(self._journal.lines)
        if not lines:
            return 0
        kept: list[str] = []
        written = 0
        for line in lines:
            try:
                record = record_from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable spill journal line kept", error=str(exc))
                kept.append(line)
                continue
            try:
                await self._ledger.record(record)
                written += 1
            except ValueError:
                written += 1  # already in the ledger (duplicate request id)
            except LedgerError as exc:
                log.error("spilled record still not written", request_id=record.request_id,
                          error=str(exc))  # fmt: skip
                kept.append(line)
        await asyncio.to_thread(self._journal.replace, kept)
        log.info("spill journal replayed", written=written, kept=len(kept))
        return written

    async def flush(self) -> None:
        """Wait until everything submitted so far is written (tests, shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None
