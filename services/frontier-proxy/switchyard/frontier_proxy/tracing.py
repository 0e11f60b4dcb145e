"""The span of one frontier call: `chat {upstream model}` (kind CLIENT) with the GenAI attributes.

Attribute keys and event names come from `switchyard.runtime.attributes`. Whatever text of
the upstream's or of the configuration reaches the span (the base URL, a retry's reason, an
error's message) goes through the process's `Redactor` first.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace import StatusCode as SpanStatusCode

from switchyard.frontier_proxy.catalog import CatalogModel
from switchyard.frontier_proxy.completion import CallTiming, ChatCall, TokenUsage
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import SwitchyardError
from switchyard.runtime.redaction import Redactor

__all__ = ["CallTracer"]


class CallTracer:
    """Starts, annotates and ends the span of each call."""

    __slots__ = ("_addresses", "_redact", "_tracer")

    def __init__(self, tracer: trace.Tracer, redact: Redactor) -> None:
        self._tracer = tracer
        self._redact = redact
        self._addresses: dict[str, str] = {}  # base URL -> redacted, once per upstream

    def _address(self, base_url: str) -> str:
        address = self._addresses.get(base_url)
        if address is None:
            address = self._addresses[base_url] = self._redact(base_url)
        return address

    def start(self, model: CatalogModel, call: ChatCall, *, stream: bool) -> Span:
        """The call's span; `call` is the call as sent (its max_tokens resolved)."""
        attributes: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
            attr.GEN_AI_PROVIDER_NAME: model.provider_name,
            attr.GEN_AI_REQUEST_MODEL: model.upstream_model,
            attr.FRONTIER_MODEL: model.name,
            attr.FRONTIER_STREAM: stream,
            attr.FRONTIER_PRICE_SOURCE: model.prices.source,
            attr.SERVER_ADDRESS: self._address(model.base_url),
        }
        s = call.sampling
        if s.max_tokens is not None:
            attributes[attr.GEN_AI_REQUEST_MAX_TOKENS] = s.max_tokens
        if s.temperature is not None:
            attributes[attr.GEN_AI_REQUEST_TEMPERATURE] = s.temperature
        if s.top_p is not None:
            attributes[attr.GEN_AI_REQUEST_TOP_P] = s.top_p
        return self._tracer.start_span(
            f"{attr.GEN_AI_OPERATION_CHAT} {model.upstream_model}",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
        )

    @staticmethod
    def retried(span: Span, attempt: int, reason: str, delay_s: float) -> None:
        """One retry; `reason` is already redacted (failure classification made it)."""
        span.add_event(
            attr.EVENT_FRONTIER_RETRY,
            {
                attr.FRONTIER_RETRY_ATTEMPT: attempt,
                attr.FRONTIER_RETRY_REASON: reason,
                attr.FRONTIER_RETRY_DELAY_S: delay_s,
            },
        )

    @staticmethod
    def circuit_open(span: Span) -> None:
        span.add_event(attr.EVENT_FRONTIER_CIRCUIT_OPEN)

    @staticmethod
    def upstream_status(span: Span, status: int) -> None:
        span.set_attribute(attr.HTTP_RESPONSE_STATUS_CODE, status)

    @staticmethod
    def finish(
        span: Span,
        model: CatalogModel,
        response_model: str,
        raw_finish: str,
        usage: TokenUsage,
        cost: Decimal,
        attempts: int,
        timing: CallTiming,
    ) -> None:
        span.set_attributes(
            {
                attr.GEN_AI_RESPONSE_MODEL: response_model or model.upstream_model,
                attr.GEN_AI_RESPONSE_FINISH_REASONS: [raw_finish] if raw_finish else [],
                attr.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
                attr.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
                attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cached_input_tokens,
                attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: usage.cache_write_tokens,
                attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: usage.reasoning_tokens,
                attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: timing.first_chunk_s,
                attr.COST_USD: float(cost),
                attr.GEN_AI_USAGE_COST: float(cost),
                attr.FRONTIER_ATTEMPTS: attempts,
            }
        )

    def fail(self, span: Span, exc: BaseException) -> None:
        """Mark the span failed with the error's code and (redacted) message.

        The server interceptor records the exception on the parent span when its code is a
        server fault (switchyard.runtime.interceptors.SERVER_FAULTS); the
        errors raised here carry no chained upstream exception (they are raised `from None`).
        """
        if isinstance(exc, SwitchyardError):
            span.set_attribute(attr.ERROR_TYPE, exc.code.name)
            span.set_status(SpanStatusCode.ERROR, f"{exc.code.name}: {self._redact(exc.message)}")
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            span.set_attribute(attr.ERROR_TYPE, "CANCELLED")
            span.set_status(SpanStatusCode.ERROR, "cancelled by the caller")
        else:
            span.set_attribute(attr.ERROR_TYPE, type(exc).__name__)
            span.set_status(SpanStatusCode.ERROR, type(exc).__name__)
