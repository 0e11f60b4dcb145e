"""The model in force, reloaded when its directory's manifest changes or on SIGHUP.

Like the router's configuration reload (``switchyard.router.reloading``): a watcher polls
``manifest.json`` of the configured model directory (``SWITCHYARD_CLASSIFIER_MODEL_DIR``;
``model_reload_poll_s``, 0: SIGHUP only) and reloads on change or SIGHUP. The new model is loaded
and warmed up in a worker thread while the old one keeps serving; only a model that loads (every
file present and matching its manifest hash) and answers the warm-up replaces it. A directory
that fails is logged with the reason and the previous model stays in force; the watcher tries
again at the next change. ``promote`` writes the manifest last, so a half-copied directory is
never loaded.

Each model run reads ``source.current`` once (``predict``), and every prediction names the model
that made it (``Prediction.model_version``), so a request in flight during a swap finishes on the
model it started with and says so; none is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from switchyard.classifier.model import MANIFEST_NAME, ClassifierModel, ModelLoadError, Prediction
from switchyard.runtime.logging import get_logger

__all__ = ["ModelSource"]

log = get_logger(__name__)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ModelSource:
    """Holds the model in force; ``start()`` watches its directory (see the module docs)."""

    def __init__(
        self,
        model: ClassifierModel,
        load: Callable[[Path], ClassifierModel],
        *,
        poll_s: float = 1.0,
        warmup: Sequence[str] = (),
    ) -> None:
        self.current = model
        self.directory = model.directory
        self._load = load
        self._poll_s = poll_s
        self._warmup = list(warmup)
        self._stamp = _stamp(self.directory / MANIFEST_NAME)
        self._task: asyncio.Task[None] | None = None
        self._hup = asyncio.Event()
        self._handles_sighup = False
        self.reloads = 0

    def predict(self, prompts: Sequence[str]) -> list[Prediction]:
        """The model in force's predictions (the batcher's ``predict``)."""
        return self.current.predict(prompts)

    def _load_checked(self) -> ClassifierModel:
        model = self._load(self.directory)
        if self._warmup:
            model.predict(self._warmup)
        return model

    async def reload(self) -> bool:
        """Load the directory now; True when the new model is in force."""
        self._stamp = _stamp(self.directory / MANIFEST_NAME)
        try:
            model = await asyncio.to_thread(self._load_checked)
        except ModelLoadError as error:
            log.error(
                "model reload failed; the previous model stays in force",
                directory=str(self.directory),
                model_version=self.current.version,
                error=error.message,
            )
            return False
        except Exception as error:  # onnxruntime and the tokenizer raise their own types
            log.error(
                "model reload failed; the previous model stays in force",
                directory=str(self.directory),
                model_version=self.current.version,
                error=f"{type(error).__name__}: {error}",
            )
            return False
        previous, self.current = self.current, model
        self.reloads += 1
        log.info(
            "model reloaded",
            directory=str(self.directory),
            model_version=model.version,
            previous_model_version=previous.version,
        )
        return True

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hup.wait(), self._poll_s or None)
            if self._hup.is_set():
                self._hup.clear()
                log.info("SIGHUP: reloading the model", directory=str(self.directory))
                await self.reload()
                continue
            stamp = _stamp(self.directory / MANIFEST_NAME)
            if stamp is not None and stamp != self._stamp:
                await self.reload()

    def request_reload(self) -> None:
        """Ask the watcher to reload now (what SIGHUP does)."""
        self._hup.set()

    def start(self, *, handle_sighup: bool = True) -> None:
        if self._task is not None:
            return
        if handle_sighup and hasattr(signal, "SIGHUP") and os.name == "posix":
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_reload)
                self._handles_sighup = True
            except (RuntimeError, ValueError):  # not the main thread: no signal handling
                log.warning("cannot install the SIGHUP handler; manifest changes still reload")
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._handles_sighup:  # never another owner's (the router's, in process)
            self._handles_sighup = False
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
