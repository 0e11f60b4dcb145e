"""The frontier proxy in the router's own process: an opt-in for co-located deployments.

With `SWITCHYARD_ROUTER_FRONTIER_PROXY_IN_PROCESS=frontier-proxy` (a comma-separated list of
router.yaml backend names: FRONTIER ones, or a LOCAL one that is an OpenAI-compatible server the
proxy's catalog names, such as vLLM's own) the router opens a frontier proxy at start and
serves those backends' calls itself: no gRPC hop to `switchyard-frontier-proxy`, whose address in
router.yaml is then unused for them. The separate service stays the default: it scales and
restarts on its own, and it keeps the provider API keys and their HTTP pools out of the router
(in process, the router's environment holds the keys). In process, a co-located deployment saves
the gRPC client and server work of one call per request (docs/benchmarks.md has the numbers).

Nothing is copied: the proxy and its servicer are the frontier-proxy distribution's own
(`switchyard-router[frontier-proxy]` installs it), configured by the same
`SWITCHYARD_FRONTIER_PROXY_*` variables as the service (catalog, deadlines, retries, breaker,
pool). `InProcessFrontier` has the stub's call signatures (`Generate`, `GenerateStream`,
`ListModels`), so the router's attempt loop, fallbacks, shadow evaluation and context-window
learning are the same code either way: the proxy's refusals are raised as the
`grpc.aio.AioRpcError` the service would have answered with (same code, same redacted message),
and a call past its timeout as DEADLINE_EXCEEDED. The proxy's CLIENT span (`chat {model}`, with
the GenAI attributes and the cost) becomes a child of the router's generate span; the proxy's
gRPC SERVER span, which only the network hop had, is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from switchyard.api.inference.v1 import inference_pb2
from switchyard.router.in_process import rpc_error, service_settings
from switchyard.runtime.errors import FailedPrecondition, SwitchyardError, bounded_details
from switchyard.runtime.logging import get_logger

__all__ = ["InProcessFrontier", "in_process_backends"]

log = get_logger(__name__)

_INSTALL = (
    "the in-process frontier proxy needs switchyard-frontier-proxy: "
    "pip install 'switchyard-router[frontier-proxy]'"
)


def in_process_backends(setting: str) -> list[str]:
    """The backend names of SWITCHYARD_ROUTER_FRONTIER_PROXY_IN_PROCESS (comma-separated)."""
    return [name.strip() for name in setting.split(",") if name.strip()]


def _as_rpc_error(exc: Exception) -> grpc.aio.AioRpcError:
    """The error the service would have answered with: a SwitchyardError's code and message
    (already redacted by the proxy), past the deadline DEADLINE_EXCEEDED, anything else INTERNAL
    (logged with its traceback, as the service's interceptor does)."""
    if isinstance(exc, TimeoutError):
        return rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "frontier proxy call timed out")
    if isinstance(exc, SwitchyardError):
        return rpc_error(exc.code, bounded_details(exc.message))
    log.error("in-process frontier proxy failed", error_type=type(exc).__name__, exc_info=exc)
    return rpc_error(
        grpc.StatusCode.INTERNAL, f"frontier proxy internal error ({type(exc).__name__})"
    )


class _Deadline:
    """The one part of a servicer context the proxy's servicer reads: the time remaining."""

    __slots__ = ("_at",)

    def __init__(self, timeout: float | None) -> None:
        self._at = None if timeout is None else time.monotonic() + timeout

    def time_remaining(self) -> float | None:
        return None if self._at is None else max(0.0, self._at - time.monotonic())

    def loop_deadline(self) -> float | None:
        """The deadline on the event loop's clock (asyncio.timeout_at)."""
        if self._at is None:
            return None
        return asyncio.get_running_loop().time() + max(0.0, self._at - time.monotonic())


class _Stream:
    """What `GenerateStream` returns: an async iterator of responses with the call's `cancel`."""

    def __init__(
        self, events: AsyncIterator[inference_pb2.GenerateStreamResponse], deadline: _Deadline
    ) -> None:
        self._events = events
        self._deadline = deadline.loop_deadline()
        self._closing: asyncio.Task[None] | None = None

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> inference_pb2.GenerateStreamResponse:
        try:
            async with asyncio.timeout_at(self._deadline):
                return await anext(self._events)
        except StopAsyncIteration:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes the call's status
            if isinstance(exc, TimeoutError):
                await self._aclose()
            raise _as_rpc_error(exc) from None

    async def _aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    def cancel(self) -> bool:
        """Close the proxy's stream (its upstream response, its breaker slot) in the background,
        as cancelling a gRPC call does; the caller does not wait for it."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._aclose())
            self._closing.add_done_callback(_retrieve)
        return True


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("closing an in-process frontier stream failed", error=str(task.exception()))


class InProcessFrontier:
    """The frontier proxy's servicer called in process (see the module docstring)."""

    def __init__(self, servicer: Any, stack: contextlib.AsyncExitStack) -> None:
        self._servicer = servicer
        self._stack = stack

    @classmethod
    async def open(cls) -> InProcessFrontier:
        """Open the proxy (SWITCHYARD_FRONTIER_PROXY_* settings) and its upstream clients."""
        try:
            from switchyard.frontier_proxy.service import open_proxy
            from switchyard.frontier_proxy.servicer import FrontierInferenceServicer
            from switchyard.frontier_proxy.settings import FrontierProxySettings
        except ImportError:
            raise FailedPrecondition(_INSTALL) from None
        settings = service_settings(FrontierProxySettings)
        stack = contextlib.AsyncExitStack()  # nothing to close if opening fails
        proxy = await stack.enter_async_context(open_proxy(settings))
        servicer = FrontierInferenceServicer(proxy, settings.default_deadline_s)
        log.info("frontier proxy opened in process", models=sorted(proxy.catalog.models))
        return cls(servicer, stack)

    async def Generate(  # noqa: N802 - the stub's method name
        self,
        request: inference_pb2.GenerateRequest,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> inference_pb2.GenerateResponse:
        """What the service's Generate answers; `metadata` is unused (same process, same trace)."""
        deadline = _Deadline(timeout)
        try:
            async with asyncio.timeout_at(deadline.loop_deadline()):
                response: inference_pb2.GenerateResponse = await self._servicer.Generate(
                    request, deadline
                )
                return response
        except Exception as exc:  # noqa: BLE001 - every failure becomes the call's status
            raise _as_rpc_error(exc) from None

    def GenerateStream(  # noqa: N802 - the stub's method name
        self,
        request: inference_pb2.GenerateStreamRequest,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> _Stream:
        """What the service's GenerateStream sends, as the stub's call object (iterate it;
        `cancel()` ends it)."""
        deadline = _Deadline(timeout)
        return _Stream(self._servicer.GenerateStream(request, deadline), deadline)

    async def ListModels(  # noqa: N802 - the stub's method name
        self, request: inference_pb2.ListModelsRequest, *, timeout: float | None = None
    ) -> inference_pb2.ListModelsResponse:
        response: inference_pb2.ListModelsResponse = await self._servicer.ListModels(
            request, _Deadline(timeout)
        )
        return response

    async def close(self) -> None:
        await self._stack.aclose()
