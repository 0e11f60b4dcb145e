"""The interceptor every Switchyard server passes its calls through (inside OpenTelemetry's).

For each call, in this order:
- **undecodable requests** (malformed protobuf, invalid UTF-8 in a string field, a truncated
  message) are refused with INVALID_ARGUMENT and a short message before any servicer code runs
  (authentication included). grpc would answer UNKNOWN and log an ERROR traceback per call, so an
  anonymous caller could flood the logs; here at most one warning per method per
  `undecodable_log_interval_s` is written (`LogRateLimit`, counting what it held back);
- **draining**: once the server is shutting down (`CallGate.drain`), new calls are refused with
  UNAVAILABLE, which clients retry (on another replica); calls already running finish. Health and
  reflection are always answered, so probes see NOT_SERVING rather than an error;
- the **deadline** is checked on entry (DEADLINE_EXCEEDED when it has already passed);
- the call's **trace** is returned as W3C `traceresponse` trailing metadata
  (`00-<trace id>-<span id>-<flags>`), so a caller can find its request in Jaeger;
- **errors**: `SwitchyardError` -> its status code and message (cut to `MAX_DETAILS_BYTES`),
  anything else -> INTERNAL with a generic message naming the trace id, and a logged traceback.

Only unary-request methods (every Switchyard RPC, health's Check and Watch) get the decoding
check; reflection's bidirectional stream is passed through.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import StatusCode as SpanStatusCode

from switchyard.api.options import TRACE_RESPONSE_HEADER, format_traceresponse
from switchyard.runtime.errors import (
    DeadlineExceeded,
    InvalidArgument,
    SwitchyardError,
    Unavailable,
    bounded_details,
)
from switchyard.runtime.logging import LogRateLimit, get_logger

__all__ = ["UNTRACED_PREFIXES", "CallGate", "ErrorMappingInterceptor"]

log = get_logger(__name__)

#: Health checks and reflection: kept out of traces, never refused while draining.
UNTRACED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Handler = Any  # grpc.RpcMethodHandler (its stubs declare no attributes)


@dataclass(frozen=True, slots=True)
class _Undecodable:
    """What the tolerant deserializer hands on instead of a request it could not decode."""

    reason: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as exc:  # noqa: BLE001 - any failure here is the caller's bytes
            return _Undecodable(str(exc) or type(exc).__name__)

    return deserialize


class CallGate:
    """Counts the calls in flight and, once draining, turns new ones away (UNAVAILABLE)."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._last_arrival = 0.0

    def arrived_while_draining(self) -> None:
        self._last_arrival = time.monotonic()

    async def drain(self, grace_s: float, *, quiet_s: float = 0.1) -> None:
        """Refuse new calls from now on; return when none is in flight and none has arrived for
        `quiet_s` (calls gRPC has received but not yet handed over would otherwise be CANCELLED
        by the server's stop), or when `grace_s` has passed."""
        self.draining = True
        self._last_arrival = time.monotonic()
        deadline = time.monotonic() + grace_s
        while (now := time.monotonic()) < deadline:
            if self.in_flight == 0 and now - self._last_arrival >= quiet_s:
                return
            await asyncio.sleep(min(0.02, deadline - now))


def _trace_response(context: grpc.aio.ServicerContext) -> None:
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        value = format_traceresponse(
            span_context.trace_id, span_context.span_id, int(span_context.trace_flags)
        )
        context.set_trailing_metadata(((TRACE_RESPONSE_HEADER, value),))


async def _abort(context: grpc.aio.ServicerContext, error: SwitchyardError) -> None:
    message = bounded_details(error.message)
    span = trace.get_current_span()
    span.record_exception(error)
    span.set_status(SpanStatusCode.ERROR, f"{error.code.name}: {message}")
    await context.abort(error.code, message)


async def _internal(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    span = trace.get_current_span()
    span.record_exception(exc)
    span.set_status(SpanStatusCode.ERROR, type(exc).__name__)
    trace_id = format(span.get_span_context().trace_id, "032x")
    log.error("unhandled error", method=method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace id {trace_id})")


async def _fail(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    """The status a failed call ends with: a SwitchyardError's own code; INTERNAL (logged with
    its traceback) for anything unexpected; cancellation and grpc's own abort pass through."""
    if isinstance(exc, SwitchyardError):
        await _abort(context, exc)
    elif isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
        await _internal(context, method, exc)
    else:
        raise exc


def _check_deadline(context: grpc.aio.ServicerContext) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("deadline expired before the call started")


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """The checks and the error mapping of the module docstring, for one server."""

    def __init__(
        self,
        gate: CallGate | None = None,
        *,
        undecodable_log_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gate = gate or CallGate()
        self._undecodable_log = LogRateLimit(undecodable_log_interval_s, clock=clock)
        # The wrapped handler per method (grpc hands the same handler object for each call).
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Handler, method: str) -> Handler:
        exempt = method.startswith(UNTRACED_PREFIXES)
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, exempt),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method, exempt),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _admit(
        self, request: Any, context: grpc.aio.ServicerContext, method: str, exempt: bool
    ) -> bool:
        """Raise what refuses the call before the servicer sees it; otherwise count it in (the
        return value: whether it was counted, so the caller counts it out)."""
        if isinstance(request, _Undecodable):
            held_back = self._undecodable_log.admit(method)
            if held_back is not None:
                log.warning(
                    "undecodable request refused",
                    method=method,
                    reason=bounded_details(request.reason, 200),
                    held_back=held_back,
                )
            name = method.rsplit("/", 1)[-1]
            raise InvalidArgument(
                f"the {name} request could not be decoded: {bounded_details(request.reason, 200)}"
            )
        if exempt:
            _check_deadline(context)
            return False
        if self.gate.draining:
            self.gate.arrived_while_draining()
            raise Unavailable("the server is shutting down; retry the call")
        self.gate.in_flight += 1
        _trace_response(context)
        try:
            _check_deadline(context)
        except DeadlineExceeded:
            self.gate.in_flight -= 1
            raise
        return True

    def _wrap_unary(
        self, behavior: Callable[..., Any], method: str, exempt: bool
    ) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            counted = False
            try:
                counted = self._admit(request, context, method, exempt)
                return await behavior(request, context)
            except BaseException as exc:
                await _fail(context, method, exc)
            finally:
                if counted:
                    self.gate.in_flight -= 1

        return wrapper

    def _wrap_stream(
        self, behavior: Callable[..., Any], method: str, exempt: bool
    ) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            counted = False
            try:
                counted = self._admit(request, context, method, exempt)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            except BaseException as exc:
                await _fail(context, method, exc)
            finally:
                if counted:
                    self.gate.in_flight -= 1

        return wrapper
