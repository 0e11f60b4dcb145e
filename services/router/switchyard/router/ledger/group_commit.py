"""`GroupCommit`: the journal's fdatasyncs as a pipeline of a few flusher threads.

Writes are numbered (`RecordJournal.write`). After a write the event loop calls
`request(write)`; an idle flusher then starts a sync at once, even while other flushers are
still in theirs, so a record written during a flush is covered by the next flush, started
right away, rather than waiting for the one in progress and then its own. At most `flushers`
syncs run at once (the bound); when all are busy the first to finish starts the next one in
its own thread, without a round trip through the loop. Each sync covers every write made
before it started (`sync(slot)` returns the number of the last one) and its result is posted
to the loop (`on_synced(covers)` or `on_failed(error)`, in the order the flusher finished),
so a caller is released by the first sync that covers its record, and never before one has
returned.

Each flusher has its own slot number (0 .. flushers-1), so the journal can give each its own
file descriptor: Linux reports a failed writeback once per open file, and a flusher that
shares a descriptor may miss an error another flusher just reported.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["GroupCommit"]


class GroupCommit:
    """Up to `flushers` concurrent syncs of everything written (see the module docstring)."""

    def __init__(
        self,
        sync: Callable[[int], int],
        *,
        flushers: int,
        on_synced: Callable[[int], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        if flushers < 1:
            raise ValueError("flushers must be at least 1")
        self._sync = sync
        self._flushers = flushers
        self._on_synced = on_synced
        self._on_failed = on_failed
        self._wake = threading.Condition()
        self._wanted = 0  # the last write number asked for
        self._asked = 0  # the last write number a started sync covers
        self._idle = 0  # flushers waiting for work
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def flushers(self) -> int:
        return self._flushers

    def request(self, write: int) -> None:
        """On the event loop, after write number `write`: make it durable (soon)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._threads = [
                threading.Thread(
                    target=self._flusher,
                    args=(slot,),
                    name=f"ledger-journal-sync-{slot}",
                    daemon=True,  # a writer never closed must not hold the interpreter up
                )
                for slot in range(self._flushers)
            ]
            for thread in self._threads:
                thread.start()
        with self._wake:
            if write > self._wanted:
                self._wanted = write
                if self._idle:
                    self._wake.notify()

    def close(self, timeout_s: float | None = None) -> bool:
        """Stop the flushers once every write asked for is synced (blocking, up to
        `timeout_s`); whether they all stopped."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        return not self._threads

    def _flusher(self, slot: int) -> None:
        while True:
            with self._wake:
                while self._wanted <= self._asked and not self._stopping:
                    self._idle += 1
                    self._wake.wait()
                    self._idle -= 1
                if self._wanted <= self._asked:
                    return  # stopping, nothing left to sync
                self._asked = self._wanted
            try:
                covers = self._sync(slot)
            except Exception as exc:  # OSError mostly: the loop decides what it means
                self._post(self._on_failed, exc)
            else:
                with self._wake:  # it may cover writes asked for while it ran: no sync for them
                    self._asked = max(self._asked, covers)
                self._post(self._on_synced, covers)

    def _post(self, callback: Callable[[Any], None], arg: object) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, arg)
        except RuntimeError:  # the loop is closed: nobody waits for the answer any more
            pass
