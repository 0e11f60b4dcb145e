"""The configuration in force, reloaded when its file changes or on SIGHUP.

Each request reads `source.current` once at its start and keeps that snapshot to the end, so a
reload never changes a request half-way and never drops one. A new file that fails to load or
validate is logged with every problem and the previous configuration stays in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from switchyard.router.config import ConfigError, RouterConfig, load_config
from switchyard.runtime.logging import get_logger

__all__ = ["ConfigSource"]

log = get_logger(__name__)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigSource:
    """Holds the configuration in force; `watch()` reloads it on change and on SIGHUP."""

    def __init__(self, path: str | Path, *, poll_s: float = 1.0) -> None:
        self.path = Path(path)
        self._poll_s = poll_s
        self._stamp = _stamp(self.path)
        self.current: RouterConfig = load_config(self.path)  # start-up: errors are fatal
        self.generation = 1
        self._listeners: list[Callable[[RouterConfig], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._hup = asyncio.Event()

    def on_change(self, listener: Callable[[RouterConfig], None]) -> None:
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Load the file now. True when the new configuration is in force."""
        self._stamp = _stamp(self.path)
        try:
            new = load_config(self.path)
        except ConfigError as error:
            log.error(
                "configuration reload failed; the previous configuration stays in force",
                path=str(self.path),
                error=str(error),
            )
            return False
        old = self.current
        if new.ledger != old.ledger:
            log.warning(
                "ledger settings changed; they take effect at the next restart",
                path=str(self.path),
            )
        self.current = new
        self.generation += 1
        log.info("configuration reloaded", path=str(self.path), generation=self.generation)
        for listener in self._listeners:
            listener(new)
        return True

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hup.wait(), self._poll_s)
            if self._hup.is_set():
                self._hup.clear()
                log.info("SIGHUP: reloading configuration", path=str(self.path))
                self.reload()
                continue
            stamp = _stamp(self.path)
            if stamp is not None and stamp != self._stamp:
                self.reload()

    def request_reload(self) -> None:
        """Ask the watcher to reload now (what SIGHUP does)."""
        self._hup.set()

    def start(self, *, handle_sighup: bool = True) -> None:
        if self._task is not None:
            return
        if handle_sighup and hasattr(signal, "SIGHUP") and os.name == "posix":
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_reload)
            except (RuntimeError, ValueError):  # not the main thread: no signal handling
                log.warning("cannot install the SIGHUP handler; file changes still reload")
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
