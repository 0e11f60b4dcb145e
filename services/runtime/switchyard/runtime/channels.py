"""Client channels for calls between services and from callers.

Every channel gets keepalive, bounded message sizes, trace-context propagation (W3C
tracecontext and baggage in metadata), a default deadline for calls made without one, and
gRPC's own retry policy for UNAVAILABLE only: gRPC retries a call only while no response has
been received, so a retried generation never duplicates output a caller saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from switchyard.api.options import DEFAULT_MAX_MESSAGE_BYTES, channel_options, retry_service_config

__all__ = [
    "DefaultDeadlineInterceptor",
    "channel_options",
    "open_channel",
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
) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to `target` with Switchyard's defaults (see module doc)."""
    interceptors: list[grpc.aio.ClientInterceptor] = [
        *DefaultDeadlineInterceptor(default_timeout_s),
        *extra_interceptors,
        *aio_client_interceptors(),
    ]
    return grpc.aio.insecure_channel(
        target,
        options=channel_options(max_message_bytes=max_message_bytes, retry_attempts=retry_attempts),
        interceptors=interceptors,
    )


def remaining_timeout(context: grpc.aio.ServicerContext, cap_s: float) -> float:
    """The deadline to give an outgoing call: the caller's remaining time, at most `cap_s`."""
    remaining = context.time_remaining()
    if remaining is None:
        return cap_s
    return max(0.0, min(cap_s, remaining))
