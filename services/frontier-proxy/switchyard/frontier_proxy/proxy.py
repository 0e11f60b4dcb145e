"""One frontier call end to end: pick the upstream, send, retry, price, trace.

`FrontierProxy.generate` returns a whole priced answer; `FrontierProxy.stream` yields text
deltas as the upstream sends them and then one `PricedEnd`. Both:

- check the upstream's circuit breaker before every attempt;
- retry 429, 5xx and connection failures with the policy's backoff (or the upstream's
  Retry-After), never past the caller's deadline, and only while nothing has reached the
  caller: once a stream has yielded a delta, a failure ends it in error;
- price the usage the upstream reported (for streams: reported in the stream itself) with the
  model's prices, exactly the same way for unary and streamed calls;
- record one span per call (`chat {model}`) with the GenAI attributes, the cost, the attempts,
  one event per retry, and the error type when it failed.

API keys go into request headers only; every upstream text passed on is scrubbed of them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace import StatusCode as SpanStatusCode

from switchyard.frontier_proxy.catalog import Catalog, CatalogModel
from switchyard.frontier_proxy.completion import (
    ChatCall,
    Completion,
    StreamDelta,
    StreamEnd,
    TokenUsage,
)
from switchyard.frontier_proxy.dialects import DIALECTS, Dialect
from switchyard.frontier_proxy.pricing import PriceError
from switchyard.frontier_proxy.retry import RetryPolicy, is_retryable_status, parse_retry_after
from switchyard.frontier_proxy.sse import SseDecoder
from switchyard.frontier_proxy.status import (
    circuit_open_error,
    deadline_error,
    http_error,
    transport_error,
)
from switchyard.frontier_proxy.upstream import Upstream
from switchyard.frontier_proxy.wire import (
    StreamIncomplete,
    UpstreamStreamError,
    WireError,
    load_json,
)
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import NotFound, SwitchyardError, quote
from switchyard.runtime.logging import get_logger
from switchyard.runtime.telemetry import get_tracer

__all__ = ["CallTiming", "FrontierProxy", "PricedCompletion", "PricedEnd"]

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallTiming:
    """Seconds from the call's start to its first text chunk and to its end."""

    first_chunk_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class PricedCompletion:
    completion: Completion
    cost_usd: Decimal
    provider: str
    timing: CallTiming


@dataclass(frozen=True, slots=True)
class PricedEnd:
    end: StreamEnd
    cost_usd: Decimal
    provider: str
    timing: CallTiming


class _AttemptFailed(Exception):
    """One attempt failed. `retryable`: may be retried; `upstream_fault`: counts for the breaker."""

    def __init__(
        self,
        reason: str,
        make_error: Callable[[int], SwitchyardError],
        *,
        retryable: bool,
        upstream_fault: bool,
        retry_after_s: float | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.make_error = make_error
        self.retryable = retryable
        self.upstream_fault = upstream_fault
        self.retry_after_s = retry_after_s
        self.http_status = http_status


class FrontierProxy:
    """Serves chat calls for every model of `catalog` through `upstreams` (keyed by base URL)."""

    def __init__(
        self,
        catalog: Catalog,
        upstreams: Mapping[str, Upstream],
        retry: RetryPolicy,
        *,
        rng: random.Random | None = None,
        log_prompts: bool = False,
        tracer: trace.Tracer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.catalog = catalog
        self._upstreams = upstreams
        self._retry = retry
        self._rng = rng or random.Random()
        self._log_prompts = log_prompts
        self._tracer = tracer or get_tracer(__name__)
        self._clock = clock
        self._sleep = sleep
        self._secrets = tuple(catalog.secrets())

    # --- public ----------------------------------------------------------------------------

    def model(self, name: str) -> CatalogModel:
        model = self.catalog.get(name)
        if model is None:
            known = ", ".join(sorted(self.catalog.models))
            raise NotFound(f"unknown model {quote(name)}; this frontier proxy serves: {known}")
        return model

    async def generate(self, model_name: str, call: ChatCall, deadline: float) -> PricedCompletion:
        """One unary call; `deadline` is on this proxy's clock (`time.monotonic`)."""
        model = self.model(model_name)
        upstream = self._upstreams[model.base_url]
        dialect = DIALECTS[model.provider]
        started = self._clock()
        span = self._start_span(model, call, stream=False)
        try:
            with trace.use_span(span, end_on_exit=False):
                completion, attempts = await self._with_retries(
                    model,
                    upstream,
                    span,
                    deadline,
                    lambda remaining: self._unary_attempt(
                        model, upstream, dialect, call, remaining
                    ),
                )
            cost = self._price(model, completion.usage)
            now = self._clock()
            timing = CallTiming(first_chunk_s=now - started, total_s=now - started)
            self._finish_span(
                span,
                model,
                completion.model,
                completion.raw_finish_reason,
                completion.usage,
                cost,
                attempts,
                timing,
            )
            if self._log_prompts:
                log.info(
                    "frontier call", model=model.name, prompt=_prompt(call), answer=completion.text
                )
            return PricedCompletion(completion, cost, model.provider_name, timing)
        except BaseException as exc:
            _fail_span(span, exc)
            raise
        finally:
            span.end()

    async def stream(
        self, model_name: str, call: ChatCall, deadline: float
    ) -> AsyncIterator[StreamDelta | PricedEnd]:
        """Text deltas as they arrive, then exactly one `PricedEnd`; or an error."""
        model = self.model(model_name)
        upstream = self._upstreams[model.base_url]
        dialect = DIALECTS[model.provider]
        started = self._clock()
        first_chunk: float | None = None
        span = self._start_span(model, call, stream=True)
        answer: list[str] = []
        attempts = 0
        try:
            while True:
                attempts += 1
                try:
                    response = await self._open(model, upstream, dialect, call, deadline, span)
                    fold = dialect.stream()
                    decoder = SseDecoder()
                    body: AsyncGenerator[bytes, None] = response.aiter_bytes()  # type: ignore[assignment]
                    try:
                        # Events that arrive in one read go to the caller as one delta: under
                        # load this saves gRPC messages; unloaded, each read holds one event.
                        async for data in body:
                            text: list[str] = []
                            reasoning: list[str] = []
                            for event in decoder.feed_bytes(data):
                                delta = fold.feed(event)
                                if delta is not None:
                                    text.append(delta.text)
                                    reasoning.append(delta.reasoning_text)
                                if fold.done:
                                    break
                            if any(text) or any(reasoning):
                                if first_chunk is None:
                                    first_chunk = self._clock()
                                merged = StreamDelta("".join(text), "".join(reasoning))
                                if self._log_prompts:
                                    answer.append(merged.text)
                                yield merged
                            if fold.done:
                                break
                        if fold.done:
                            await _drain(body, deadline - self._clock())
                        elif (tail := decoder.flush()) is not None:
                            fold.feed(tail)
                        end = fold.end()
                    finally:
                        await body.aclose()
                        await response.aclose()
                except _AttemptFailed as failure:
                    await self._after_failure(
                        failure,
                        model,
                        upstream,
                        span,
                        deadline,
                        attempts,
                        sent=first_chunk is not None,
                    )
                    continue
                except (
                    httpx.TransportError,
                    StreamIncomplete,
                    UpstreamStreamError,
                    WireError,
                ) as exc:
                    classified = self._classify_stream_failure(model, exc, first_chunk is not None)
                    await self._after_failure(
                        classified,
                        model,
                        upstream,
                        span,
                        deadline,
                        attempts,
                        sent=first_chunk is not None,
                    )
                    continue
                except (asyncio.CancelledError, GeneratorExit):
                    upstream.breaker.release()
                    raise
                upstream.breaker.record_success()
                break
            cost = self._price(model, end.usage)
            now = self._clock()
            timing = CallTiming(
                first_chunk_s=(first_chunk if first_chunk is not None else now) - started,
                total_s=now - started,
            )
            self._finish_span(
                span, model, end.model, end.raw_finish_reason, end.usage, cost, attempts, timing
            )
            if self._log_prompts:
                log.info(
                    "frontier call", model=model.name, prompt=_prompt(call), answer="".join(answer)
                )
            yield PricedEnd(end, cost, model.provider_name, timing)
        except BaseException as exc:
            _fail_span(span, exc)
            raise
        finally:
            span.end()

    # --- attempts ----------------------------------------------------------------------------

    async def _with_retries(
        self,
        model: CatalogModel,
        upstream: Upstream,
        span: Span,
        deadline: float,
        attempt: Callable[[float], Awaitable[T]],
    ) -> tuple[T, int]:
        attempts = 0
        while True:
            attempts += 1
            self._admit(model, upstream, span, deadline, attempts)
            remaining = deadline - self._clock()
            try:
                async with asyncio.timeout(remaining):
                    result = await attempt(remaining)
            except _AttemptFailed as failure:
                await self._after_failure(
                    failure, model, upstream, span, deadline, attempts, sent=False
                )
                continue
            except TimeoutError:
                upstream.breaker.release()
                raise deadline_error(
                    model=model.name, provider=model.provider_name, attempts=attempts
                ) from None
            except asyncio.CancelledError:
                upstream.breaker.release()
                raise
            upstream.breaker.record_success()
            return result, attempts

    def _admit(
        self, model: CatalogModel, upstream: Upstream, span: Span, deadline: float, attempts: int
    ) -> None:
        """Raise unless an attempt may start now (deadline left, circuit closed or probing)."""
        if deadline - self._clock() <= 0:
            raise deadline_error(
                model=model.name, provider=model.provider_name, attempts=attempts - 1
            )
        refusal = upstream.breaker.acquire()
        if refusal is not None:
            span.add_event(attr.EVENT_FRONTIER_CIRCUIT_OPEN)
            raise circuit_open_error(
                model=model.name,
                provider=model.provider_name,
                base_url=upstream.base_url,
                retry_in_s=refusal.retry_in_s,
            )

    async def _after_failure(
        self,
        failure: _AttemptFailed,
        model: CatalogModel,
        upstream: Upstream,
        span: Span,
        deadline: float,
        attempts: int,
        *,
        sent: bool,
    ) -> None:
        """Record `failure`; wait before the next attempt, or raise the caller's error."""
        if failure.upstream_fault:
            upstream.breaker.record_failure()
        else:
            upstream.breaker.record_success()  # the upstream answered: it is up
        if failure.http_status is not None:
            span.set_attribute(attr.HTTP_RESPONSE_STATUS_CODE, failure.http_status)
        delay = None
        if failure.retryable and not sent:
            remaining = deadline - self._clock()
            delay = self._retry.next_delay(attempts, failure.retry_after_s, remaining, self._rng)
        if delay is None:
            raise failure.make_error(attempts)
        span.add_event(
            attr.EVENT_FRONTIER_RETRY,
            {
                attr.FRONTIER_RETRY_ATTEMPT: attempts,
                attr.FRONTIER_RETRY_REASON: failure.reason,
                attr.FRONTIER_RETRY_DELAY_S: delay,
            },
        )
        log.warning(
            "retrying upstream call",
            model=model.name,
            upstream=upstream.base_url,
            attempt=attempts,
            reason=failure.reason,
            delay_s=round(delay, 3),
        )
        await self._sleep(delay)

    def _request(
        self,
        model: CatalogModel,
        upstream: Upstream,
        dialect: Dialect,
        call: ChatCall,
        *,
        stream: bool,
        remaining: float,
    ) -> httpx.Request:
        headers = dialect.auth_headers(model.api_key.reveal() if model.api_key else None)
        if stream:
            headers["accept"] = "text/event-stream"
        return upstream.client.build_request(
            "POST",
            dialect.path,
            json=dialect.body(model, call, stream),
            headers=headers,
            timeout=httpx.Timeout(
                min(remaining, upstream.client.timeout.connect or remaining),
                read=remaining,
                write=remaining,
                pool=remaining,
            ),
        )

    async def _send(
        self, model: CatalogModel, upstream: Upstream, request: httpx.Request
    ) -> httpx.Response:
        """Send and check the status; a non-200 answer becomes `_AttemptFailed`."""
        try:
            response = await upstream.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise self._connection_failure(model, exc) from None
            raise TimeoutError from None
        except httpx.TransportError as exc:
            raise self._connection_failure(model, exc) from None
        if response.status_code == 200:
            return response
        try:
            body = await response.aread()
        except httpx.TransportError:
            body = b""
        finally:
            await response.aclose()
        raise self._http_failure(model, response.status_code, response.headers, body)

    async def _unary_attempt(
        self,
        model: CatalogModel,
        upstream: Upstream,
        dialect: Dialect,
        call: ChatCall,
        remaining: float,
    ) -> Completion:
        request = self._request(model, upstream, dialect, call, stream=False, remaining=remaining)
        response = await self._send(model, upstream, request)
        try:
            body = await response.aread()
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.TransportError as exc:
            raise self._connection_failure(model, exc) from None
        finally:
            await response.aclose()
        try:
            return dialect.parse(load_json(body))
        except WireError as exc:
            raise self._malformed(model, exc) from None

    async def _open(
        self,
        model: CatalogModel,
        upstream: Upstream,
        dialect: Dialect,
        call: ChatCall,
        deadline: float,
        span: Span,
    ) -> httpx.Response:
        """Open a stream: admitted, sent and answered 200 within the caller's deadline."""
        self._admit(model, upstream, span, deadline, 1)
        remaining = deadline - self._clock()
        request = self._request(model, upstream, dialect, call, stream=True, remaining=remaining)
        try:
            async with asyncio.timeout(remaining):
                return await self._send(model, upstream, request)
        except TimeoutError:
            upstream.breaker.release()
            raise deadline_error(
                model=model.name, provider=model.provider_name, attempts=1
            ) from None

    # --- failure classification --------------------------------------------------------------

    def _http_failure(
        self, model: CatalogModel, status: int, headers: httpx.Headers, body: bytes
    ) -> _AttemptFailed:
        message = DIALECTS[model.provider].error_message(body)
        retryable = is_retryable_status(status)

        def make(attempts: int) -> SwitchyardError:
            return http_error(
                status,
                message,
                model=model.name,
                upstream_model=model.upstream_model,
                provider=model.provider_name,
                key_source=model.key_source,
                attempts=attempts,
                secrets=self._secrets,
            )

        return _AttemptFailed(
            f"HTTP {status}",
            make,
            retryable=retryable,
            upstream_fault=status >= 500,
            retry_after_s=parse_retry_after(headers, time.time()) if retryable else None,
            http_status=status,
        )

    def _connection_failure(self, model: CatalogModel, exc: Exception) -> _AttemptFailed:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

        def make(attempts: int) -> SwitchyardError:
            return transport_error(
                what,
                model=model.name,
                provider=model.provider_name,
                attempts=attempts,
                secrets=self._secrets,
            )

        return _AttemptFailed(type(exc).__name__, make, retryable=True, upstream_fault=True)

    def _malformed(self, model: CatalogModel, exc: Exception) -> _AttemptFailed:
        def make(attempts: int) -> SwitchyardError:
            return transport_error(
                f"malformed answer: {exc}",
                model=model.name,
                provider=model.provider_name,
                attempts=attempts,
                secrets=self._secrets,
            )

        return _AttemptFailed("malformed answer", make, retryable=False, upstream_fault=True)

    def _classify_stream_failure(
        self, model: CatalogModel, exc: Exception, sent: bool
    ) -> _AttemptFailed:
        if isinstance(exc, UpstreamStreamError):
            status = exc.http_status
            body_message = f"{exc.kind}: {exc.message}"

            def make(attempts: int) -> SwitchyardError:
                return (
                    http_error(
                        status,
                        body_message,
                        model=model.name,
                        upstream_model=model.upstream_model,
                        provider=model.provider_name,
                        key_source=model.key_source,
                        attempts=attempts,
                        secrets=self._secrets,
                    )
                    if not sent
                    else transport_error(
                        f"stream ended with an error after text was sent ({body_message})",
                        model=model.name,
                        provider=model.provider_name,
                        attempts=attempts,
                        secrets=self._secrets,
                    )
                )

            return _AttemptFailed(
                f"stream error {exc.kind}",
                make,
                retryable=is_retryable_status(status),
                upstream_fault=status >= 500,
            )
        if isinstance(exc, WireError):
            return self._malformed(model, exc)
        if isinstance(exc, httpx.TimeoutException):

            def deadline(attempts: int) -> SwitchyardError:
                return deadline_error(
                    model=model.name, provider=model.provider_name, attempts=attempts
                )

            return _AttemptFailed("timeout", deadline, retryable=False, upstream_fault=False)
        what = (
            f"the stream was cut mid-way ({type(exc).__name__}: {exc}); the answer is incomplete"
            if sent
            else f"the stream was cut before any text ({type(exc).__name__}: {exc})"
        )

        def make_cut(attempts: int) -> SwitchyardError:
            return transport_error(
                what,
                model=model.name,
                provider=model.provider_name,
                attempts=attempts,
                secrets=self._secrets,
            )

        return _AttemptFailed("stream cut", make_cut, retryable=True, upstream_fault=True)

    # --- pricing and tracing -----------------------------------------------------------------

    def _price(self, model: CatalogModel, usage: TokenUsage) -> Decimal:
        try:
            return model.prices.cost_usd(usage)
        except PriceError as exc:
            raise SwitchyardError(f"model {model.name!r}: {exc}") from None

    def _start_span(self, model: CatalogModel, call: ChatCall, *, stream: bool) -> Span:
        attributes: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
            attr.GEN_AI_PROVIDER_NAME: model.provider_name,
            attr.GEN_AI_REQUEST_MODEL: model.upstream_model,
            attr.FRONTIER_MODEL: model.name,
            attr.FRONTIER_STREAM: stream,
            attr.FRONTIER_PRICE_SOURCE: model.prices.source,
            attr.SERVER_ADDRESS: model.base_url,
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
    def _finish_span(
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


# After the terminal event (`[DONE]`, `message_stop`) only the end of the HTTP body is left,
# normally in the same read. Reading it lets the pool reuse the connection: a response closed
# before its end closes the connection, and the next call pays a new TCP (and TLS) handshake.
_DRAIN_TIMEOUT_S = 0.25
_DRAIN_MAX_BYTES = 65536


async def _drain(body: AsyncIterator[bytes], remaining_s: float) -> None:
    """Read what is left of `body`, briefly; give up (the connection closes) if it drags."""
    left = _DRAIN_MAX_BYTES
    try:
        async with asyncio.timeout(max(0.0, min(_DRAIN_TIMEOUT_S, remaining_s))):
            async for data in body:
                left -= len(data)
                if left < 0:
                    return
    except (TimeoutError, httpx.HTTPError):
        return


def _fail_span(span: Span, exc: BaseException) -> None:
    if isinstance(exc, SwitchyardError):
        span.set_attribute(attr.ERROR_TYPE, exc.code.name)
        span.set_status(SpanStatusCode.ERROR, f"{exc.code.name}: {exc.message}")
    elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
        span.set_attribute(attr.ERROR_TYPE, "CANCELLED")
        span.set_status(SpanStatusCode.ERROR, "cancelled by the caller")
    else:
        span.set_attribute(attr.ERROR_TYPE, type(exc).__name__)
        span.set_status(SpanStatusCode.ERROR, type(exc).__name__)
    # The exception itself is recorded by the server interceptor on the parent span; its
    # message (already scrubbed) goes in the status above.


def _prompt(call: ChatCall) -> str:
    return "\n".join(f"{t.role.value}: {t.content}" for t in call.turns)
