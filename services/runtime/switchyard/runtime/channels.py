"""Client channels for calls between services and from callers.

Every channel gets keepalive, bounded message sizes, trace-context propagation (W3C
tracecontext and baggage in metadata), a default deadline for calls made without one, and
gRPC's own retry policy for UNAVAILABLE only: gRPC retries a call only while no response has
been received, so a retried generation never duplicates output a caller saw.

A caller on a hot path that traces its calls itself (the router: its classify and generate spans
are the CLIENT spans of their calls) opens a bare channel (`open_channel(..., intercepted=False)`)
and sends `outgoing_metadata()` and a timeout with every call. grpc.aio runs client
interceptors in a task of their own per call, and passes every message of a stream through each
interceptor's wrapper: without them the router's gRPC client work fell from 0.61 to 0.39 ms per
unary request and from 2.58 to 1.04 ms per 16-chunk stream (docs/benchmarks.md, "Cheaper hops").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from opentelemetry import propagate
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from switchyard.api.options import DEFAULT_MAX_MESSAGE_BYTES, channel_options, retry_service_config

__all__ = [
    "DefaultDeadlineInterceptor",
    "channel_options",
    "open_channel",
    "outgoing_metadata",
    "remaining_timeout",
    "retry_service_config",
]


def _with_timeout(details: grpc.aio.ClientCallDetails, timeout: float) -> Any:
    if details.timeout is not None:
        return details
    return grpc.aio.ClientCallDetails(
        details.method, timeout, details.metadata, details.credentials, details.wait_for_ready
    )


class _UnaryUnaryDeadline(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(_with_timeout(client_call_details, self._timeout), request)


class _UnaryStreamDeadline(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(_with_timeout(client_call_details, self._timeout), request)


def DefaultDeadlineInterceptor(timeout: float) -> list[grpc.aio.ClientInterceptor]:  # noqa: N802
    """Interceptors giving every unary and server-streaming call without a deadline `timeout` s."""
    return [_UnaryUnaryDeadline(timeout), _UnaryStreamDeadline(timeout)]


def open_channel(
    target: str,
    *,
    default_timeout_s: float = 30.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    retry_attempts: int = 3,
    extra_interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    intercepted: bool = True,
) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to `target` with Switchyard's defaults (see module doc).

    `intercepted=False`: no interceptors at all (no default deadline, no client span, no trace
    propagation): for callers that pass a timeout and `outgoing_metadata()` on every call."""
    interceptors: list[grpc.aio.ClientInterceptor] = []
    if intercepted:
        interceptors = [
            *DefaultDeadlineInterceptor(default_timeout_s),
            *extra_interceptors,
            *aio_client_interceptors(),
        ]
    elif extra_interceptors:
        raise ValueError("extra_interceptors need an intercepted channel")
    return grpc.aio.insecure_channel(
        target,
        options=channel_options(max_message_bytes=max_message_bytes, retry_attempts=retry_attempts),
        interceptors=interceptors or None,
    )


def outgoing_metadata(
    metadata: Sequence[tuple[str, str]] = (),
) -> tuple[tuple[str, str], ...]:
    """`metadata` plus the current context's trace context and baggage (the configured
    propagators: W3C tracecontext and baggage), what the OpenTelemetry client interceptor sends;
    the current span is the call's parent on the other side."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (*metadata, *carrier.items())


def remaining_timeout(context: grpc.aio.ServicerContext, cap_s: float) -> float:
    """The deadline to give an outgoing call: the caller's remaining time, at most `cap_s`."""
    remaining = context.time_remaining()
    if remaining is None:
        return cap_s
    return max(0.0, min(cap_s, remaining))
