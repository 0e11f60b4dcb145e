"""Context windows of the targets, learned from each backend's `ListModels`.

Every backend speaks `switchyard.inference.v1.InferenceService`, whose `ListModels` reports each
served model's `context_window` (local-inference: the engine's max model length; the frontier
proxy: its catalog). `ContextWindows` asks every backend of the configuration in force:

- at start-up (the router serves once the first round has answered or failed, each call within
  `timeout_s`);
- after every configuration reload (file change or SIGHUP), in the background;
- every `retry_s`, in the background, for each backend not reached yet (down at start-up, or
  its last `ListModels` failed) until it answers.

A target's window is its `targets.<name>.context_window` in router.yaml when set (that always
wins), else the window its backend reports for the target's model (for `model: ""`, the
backend's default, the window of the one model a single-model backend lists), else unknown. An
unknown window is not checked: the request goes to the target and the backend itself refuses a
prompt it cannot hold (INVALID_ARGUMENT, no fallback); each refresh logs the targets whose
window is unknown, and why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import grpc

from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.router.config import RouterConfig
from switchyard.runtime.channels import open_channel
from switchyard.runtime.logging import get_logger

__all__ = ["ContextWindows", "target_windows"]

log = get_logger(__name__)

#: Model name -> context window, as one backend listed them.
BackendModels = Mapping[str, int]

#: Asks a backend served in the router's process for its models (timeout in seconds).
ListModels = Callable[[float], Awaitable[inference_pb2.ListModelsResponse]]


def target_windows(
    config: RouterConfig, listed: Mapping[str, BackendModels]
) -> tuple[dict[str, int], dict[str, str]]:
    """(target -> learned window, target -> why unknown) from the models each backend address
    listed (`listed`). Configured `context_window` overrides are the policy's to apply."""
    windows: dict[str, int] = {}
    unknown: dict[str, str] = {}
    for name, target in config.targets.items():
        address = config.backends[target.backend].address
        models = listed.get(address)
        if models is None:
            unknown[name] = f"backend {target.backend} ({address}) has not answered ListModels"
            continue
        if target.model:
            window = models.get(target.model)
        else:
            window = next(iter(models.values())) if len(models) == 1 else None
        if window is None:
            model = repr(target.model) if target.model else "the default model"
            unknown[name] = (
                f"backend {target.backend} lists no context window for {model} "
                f"(it lists {sorted(models)})"
            )
            continue
        windows[name] = window
    return windows, unknown


class ContextWindows:
    """What each backend listed, refreshed as the module docstring says."""

    def __init__(
        self,
        config: Callable[[], RouterConfig],
        *,
        retry_s: float = 5.0,
        timeout_s: float = 5.0,
        in_process: Mapping[str, ListModels] | None = None,
    ) -> None:
        """`in_process`: by backend name, how to list the models of a backend the router serves
        in process (in_process_frontier.py); the others are asked at their address."""
        self._config = config
        self._in_process = dict(in_process or {})
        self._retry_s = retry_s
        self._timeout_s = timeout_s
        self._listed: dict[str, dict[str, int]] = {}
        self._failing: set[str] = set()
        #: (config, what was listed, its windows) of the last for_targets call
        self._cached: tuple[RouterConfig, dict[str, dict[str, int]], dict[str, int]] | None = None
        self._changed = asyncio.Event()

    def for_targets(self, config: RouterConfig) -> Mapping[str, int]:
        """Target name -> the window its backend reported (only targets whose window is known)."""
        cached = self._cached
        if cached is None or cached[0] is not config or cached[1] != self._listed:
            windows = target_windows(config, self._listed)[0]
            self._cached = cached = (config, dict(self._listed), windows)
        return cached[2]

    @staticmethod
    async def _ask(address: str, timeout_s: float) -> inference_pb2.ListModelsResponse:
        # A channel of its own for each round, closed after: a fresh channel connects at once,
        # where one that failed to connect backs off for up to minutes, and the serving channels
        # (`Connections`) never inherit a backoff from a backend that was still starting.
        channel = open_channel(address, default_timeout_s=timeout_s, retry_attempts=1)
        try:
            response: inference_pb2.ListModelsResponse = (
                await inference_pb2_grpc.InferenceServiceStub(channel).ListModels(
                    inference_pb2.ListModelsRequest(), timeout=timeout_s
                )
            )
            return response
        finally:
            await channel.close()

    async def _list(self, address: str, timeout_s: float, local: ListModels | None) -> None:
        try:
            response = await (
                local(timeout_s) if local is not None else self._ask(address, timeout_s)
            )
        except grpc.aio.AioRpcError as error:
            self._listed.pop(address, None)
            if address not in self._failing:  # once per outage, not every retry
                self._failing.add(address)
                log.warning(
                    "backend did not list its models; its context windows are unknown until "
                    "it does",
                    address=address,
                    status=error.code().name,
                    retry_s=self._retry_s,
                )
            return
        self._failing.discard(address)
        self._listed[address] = {
            m.name: m.context_window for m in response.models if m.context_window > 0
        }

    async def refresh(self, *, only_unreached: bool = False) -> None:
        """Ask the backends of the configuration in force (all, or those not reached yet)."""
        config = self._config()
        timeouts: dict[str, float] = {}
        local: dict[str, ListModels] = {}  # an address one of whose backends is in process
        for name, backend in config.backends.items():
            if only_unreached and backend.address in self._listed:
                continue
            cap = min(self._timeout_s, backend.timeout_s)
            timeouts[backend.address] = min(cap, timeouts.get(backend.address, cap))
            if name in self._in_process:
                local[backend.address] = self._in_process[name]
        if not timeouts:
            return
        before = dict(self._listed)
        await asyncio.gather(*(self._list(a, t, local.get(a)) for a, t in timeouts.items()))
        if only_unreached and self._listed == before:
            return  # still unreached: already logged
        windows, unknown = target_windows(config, self._listed)
        overridden = {n for n, t in config.targets.items() if t.context_window is not None}
        log.info(
            "context windows",
            learned=windows,
            configured={n: config.targets[n].context_window for n in sorted(overridden)},
        )
        for name, why in sorted(unknown.items()):
            if name not in overridden:
                log.warning(
                    "context window unknown: prompts are not checked against it "
                    f"(set targets.{name}.context_window to fix it)",
                    target=name,
                    why=why,
                )

    def config_changed(self, config: RouterConfig) -> None:
        """A reload listener: ask every backend again, in the background."""
        self._changed.set()

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._retry_s)
            changed = self._changed.is_set()
            self._changed.clear()
            await self.refresh(only_unreached=not changed)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Keep the windows fresh (reloads, unreached backends) while the block runs."""
        task = asyncio.get_running_loop().create_task(self._watch(), name="context-windows")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
