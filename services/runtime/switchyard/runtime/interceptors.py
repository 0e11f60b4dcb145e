"""The one interceptor every Switchyard server passes its calls through.

For each call, in this order:
- the call's **SERVER span** (`/package.Service/Method`, with `rpc.system`, `rpc.service`,
  `rpc.method`, `rpc.grpc.status_code` and the peer's `network.peer.address` / `.port`),
  continuing the W3C `traceparent` and `baggage` the caller sent in metadata (the configured
  propagators); the servicer runs with it current. Health checks and reflection are not traced;
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
  The span gets the code; its status is ERROR (with the exception recorded) only for the codes
  OpenTelemetry's gRPC conventions count as the server's fault (UNKNOWN, DEADLINE_EXCEEDED,
  UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS): a refused request is the caller's.

One wrapper does all of it, built once per method and reused for every call. It replaced
OpenTelemetry's own gRPC server interceptor (`opentelemetry-instrumentation-grpc`, still used
for client channels), which rebuilt its wrappers on every call, wrapped each servicer context in
a proxy object and ran as a second coroutine layer (docs/benchmarks.md, "Cheaper hops").

Only unary-request methods (every Switchyard RPC, health's Check and Watch) are wrapped;
reflection's bidirectional stream is passed through.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace import StatusCode as SpanStatusCode

from switchyard.api.options import TRACE_RESPONSE_HEADER, format_traceresponse
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import (
    DeadlineExceeded,
    InvalidArgument,
    SwitchyardError,
    Unavailable,
    bounded_details,
)
from switchyard.runtime.logging import LogRateLimit, get_logger
from switchyard.runtime.telemetry import get_tracer

__all__ = ["UNTRACED_PREFIXES", "CallGate", "ServerCallInterceptor"]

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


#: The codes OpenTelemetry's gRPC conventions mark as a server span's error (the rest are the
#: caller's: the span keeps the code, its status stays unset).
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_OK = grpc.StatusCode.OK.value[0]
_CANCELLED = grpc.StatusCode.CANCELLED.value[0]


def _peer_attributes(peer: str) -> dict[str, Any]:
    """`network.peer.*` from grpc's peer string (`ipv4:127.0.0.1:57284`, `ipv6:[::1]:57284`,
    the brackets sometimes percent-encoded; a unix socket or anything else: none)."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return {}
    address, _, port = unquote(rest.split(",", 1)[0]).rpartition(":")
    address = address.removeprefix("[").removesuffix("]")
    if not address or not port.isdigit():
        return {}
    return {attr.NETWORK_PEER_ADDRESS: address, attr.NETWORK_PEER_PORT: int(port)}


def _trace_response(context: grpc.aio.ServicerContext, span: Span) -> None:
    span_context = span.get_span_context()
    if span_context.is_valid:
        value = format_traceresponse(
            span_context.trace_id, span_context.span_id, int(span_context.trace_flags)
        )
        context.set_trailing_metadata(((TRACE_RESPONSE_HEADER, value),))


def _end_code(
    span: Span | None, code: grpc.StatusCode, description: str, exc: BaseException
) -> None:
    if span is None:
        return
    span.set_attribute(attr.RPC_GRPC_STATUS_CODE, code.value[0])
    if code in SERVER_FAULTS:
        span.record_exception(exc)
        span.set_status(SpanStatusCode.ERROR, description)


async def _fail(
    context: grpc.aio.ServicerContext, method: str, exc: BaseException, span: Span | None
) -> None:
    """The status a failed call ends with: a SwitchyardError's own code; INTERNAL (logged with
    its traceback) for anything unexpected; cancellation and grpc's own abort pass through."""
    if isinstance(exc, SwitchyardError):
        message = bounded_details(exc.message)
        _end_code(span, exc.code, f"{exc.code.name}: {message}", exc)
        await context.abort(exc.code, message)
    elif isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
        _end_code(span, grpc.StatusCode.INTERNAL, type(exc).__name__, exc)
        trace_id = format(span.get_span_context().trace_id, "032x") if span else "none"
        log.error("unhandled error", method=method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace id {trace_id})")
    else:
        if span is not None and isinstance(exc, asyncio.CancelledError):
            span.set_attribute(attr.RPC_GRPC_STATUS_CODE, _CANCELLED)
        raise exc


def _check_deadline(context: grpc.aio.ServicerContext) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("deadline expired before the call started")


@dataclass(frozen=True, slots=True)
class _Method:
    """What is fixed about one method: its name, span name and span attributes at start."""

    name: str
    traced: bool
    attributes: dict[str, Any]


def _method(method: str) -> _Method:
    service, _, name = method.lstrip("/").partition("/")
    return _Method(
        name=method,
        traced=not method.startswith(UNTRACED_PREFIXES),
        attributes={
            attr.RPC_SYSTEM: "grpc",
            attr.RPC_SERVICE: service,
            attr.RPC_METHOD: name,
            attr.RPC_GRPC_STATUS_CODE: _OK,
        },
    )


class ServerCallInterceptor(grpc.aio.ServerInterceptor):
    """The span, checks and error mapping of the module docstring, for one server."""

    def __init__(
        self,
        gate: CallGate | None = None,
        *,
        undecodable_log_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.gate = gate or CallGate()
        self._undecodable_log = LogRateLimit(undecodable_log_interval_s, clock=clock)
        self._tracer = tracer or get_tracer(__name__)
        # The metadata keys the configured propagators read (traceparent, tracestate, baggage).
        self._carrier_keys = frozenset(propagate.get_global_textmap().fields)
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
        wrapped = self._wrap(handler, _method(method))
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Handler, method: _Method) -> Handler:
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _start_span(
        self, context: grpc.aio.ServicerContext, method: _Method
    ) -> tuple[Span, Token[Context]]:
        """The call's SERVER span, child of the caller's trace context, made current."""
        keys = self._carrier_keys
        carrier = {key: value for key, value in context.invocation_metadata() or () if key in keys}
        parent = propagate.extract(carrier) if carrier else None
        attributes = method.attributes
        peer = _peer_attributes(context.peer())
        if peer:
            attributes = {**attributes, **peer}
        span = self._tracer.start_span(
            method.name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    def _admit(
        self, request: Any, context: grpc.aio.ServicerContext, method: _Method, span: Span | None
    ) -> bool:
        """Raise what refuses the call before the servicer sees it; otherwise count it in (the
        return value: whether it was counted, so the caller counts it out)."""
        if isinstance(request, _Undecodable):
            held_back = self._undecodable_log.admit(method.name)
            if held_back is not None:
                log.warning(
                    "undecodable request refused",
                    method=method.name,
                    reason=bounded_details(request.reason, 200),
                    held_back=held_back,
                )
            name = method.name.rsplit("/", 1)[-1]
            raise InvalidArgument(
                f"the {name} request could not be decoded: {bounded_details(request.reason, 200)}"
            )
        if span is None:
            _check_deadline(context)
            return False
        if self.gate.draining:
            self.gate.arrived_while_draining()
            raise Unavailable("the server is shutting down; retry the call")
        self.gate.in_flight += 1
        _trace_response(context, span)
        try:
            _check_deadline(context)
        except DeadlineExceeded:
            self.gate.in_flight -= 1
            raise
        return True

    def _wrap_unary(self, behavior: Callable[..., Any], method: _Method) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            span, token = self._start_span(context, method) if method.traced else (None, None)
            counted = False
            try:
                counted = self._admit(request, context, method, span)
                return await behavior(request, context)
            except BaseException as exc:
                await _fail(context, method.name, exc, span)
            finally:
                if counted:
                    self.gate.in_flight -= 1
                if token is not None:
                    otel_context.detach(token)
                if span is not None:
                    span.end()

        return wrapper

    def _wrap_stream(self, behavior: Callable[..., Any], method: _Method) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            span, token = self._start_span(context, method) if method.traced else (None, None)
            counted = False
            try:
                counted = self._admit(request, context, method, span)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            except BaseException as exc:
                await _fail(context, method.name, exc, span)
            finally:
                if counted:
                    self.gate.in_flight -= 1
                if token is not None:
                    otel_context.detach(token)
                if span is not None:
                    span.end()

        return wrapper
