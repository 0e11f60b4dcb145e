"""One frontier call end to end: admit, pick the upstream, send, retry, relay, price, trace.

`FrontierProxy.generate` returns a whole priced answer; `FrontierProxy.stream` yields text
deltas as the upstream sends them and then one `PricedEnd`. Both go through ONE retry loop
(`_with_retries`), which:

- checks the caller's deadline and the upstream's circuit breaker before every attempt;
- retries 429, 5xx and connection failures with the policy's backoff (or the upstream's
  Retry-After), never past the caller's deadline. A unary attempt is the whole exchange; a
  stream's attempt lasts until its first text is ready to send (`_open_stream`), so a stream
  cut or refused before any text is retried, and once a delta has reached the caller a failure
  ends the stream in error;
- prices the usage the upstream reported (for streams: reported in the stream itself) with the
  model's prices, exactly the same way for unary and streamed calls;
- records one span per call (tracing.py) with the GenAI attributes, the cost, the attempts,
  one event per retry, and the error type when it failed.

Calls that cannot fit the model's context window are refused before anything is sent, and
calls without max_tokens get the model's default (admission.py). Failures are classified in
resilience/failures.py, and every upstream text that reaches a log, a span or an error passes
through the process's `Redactor` (switchyard.runtime.redaction) first. API keys go into request
headers only. Errors raised to the caller never chain the upstream's exception (`from None`),
so a recorded exception's stack trace carries no upstream text either.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import NoReturn, TypeVar

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span

from switchyard.frontier_proxy.admission import admit
from switchyard.frontier_proxy.catalog import Catalog, CatalogModel
from switchyard.frontier_proxy.completion import (
    CallTiming,
    ChatCall,
    Completion,
    PricedCompletion,
    PricedEnd,
    StreamDelta,
    TokenUsage,
)
from switchyard.frontier_proxy.pricing import PriceError
from switchyard.frontier_proxy.providers.dialects import DIALECTS, Dialect
from switchyard.frontier_proxy.providers.wire import (
    UNEXPECTED_SHAPE,
    StreamIncomplete,
    UpstreamStreamError,
    WireError,
    load_json,
)
from switchyard.frontier_proxy.relay import StreamRelay
from switchyard.frontier_proxy.resilience.failures import AttemptFailed, FailureClassifier
from switchyard.frontier_proxy.resilience.retry import RetryPolicy
from switchyard.frontier_proxy.resilience.status import circuit_open_error, deadline_error
from switchyard.frontier_proxy.tracing import CallTracer
from switchyard.frontier_proxy.upstream import Upstream
from switchyard.runtime.errors import NotFound, SwitchyardError, quote
from switchyard.runtime.logging import get_logger
from switchyard.runtime.redaction import Redactor
from switchyard.runtime.telemetry import get_tracer

__all__ = ["FrontierProxy"]

log = get_logger(__name__)
T = TypeVar("T")

# What reading a streamed body can raise; the classifier sorts them out.
_STREAM_FAILURES = (httpx.HTTPError, StreamIncomplete, UpstreamStreamError, WireError)


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
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.catalog = catalog
        self._upstreams = upstreams
        self._retry = retry
        self._rng = rng or random.Random()
        self._log_prompts = log_prompts
        self._redact = redactor if redactor is not None else Redactor(catalog.secrets())
        self._tracing = CallTracer(tracer or get_tracer(__name__), self._redact)
        self._failures = FailureClassifier(self._redact)
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep

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
        call = admit(model, call)
        upstream = self._upstreams[model.base_url]
        dialect = DIALECTS[model.provider]
        started = self._clock()
        span = self._tracing.start(model, call, stream=False)
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
            upstream.breaker.record_success()
            cost = self._price(model, completion.usage)
            now = self._clock()
            timing = CallTiming(first_chunk_s=now - started, total_s=now - started)
            self._tracing.finish(
                span,
                model,
                completion.model,
                completion.raw_finish_reason,
                completion.usage,
                cost,
                attempts,
                timing,
            )
            self._log_call(model, call, completion.text)
            return PricedCompletion(completion, cost, model.provider_name, timing)
        except BaseException as exc:
            self._tracing.fail(span, exc)
            raise
        finally:
            span.end()

    async def stream(
        self, model_name: str, call: ChatCall, deadline: float
    ) -> AsyncIterator[StreamDelta | PricedEnd]:
        """Text deltas as they arrive, then exactly one `PricedEnd`; or an error."""
        model = self.model(model_name)
        call = admit(model, call)
        upstream = self._upstreams[model.base_url]
        dialect = DIALECTS[model.provider]
        started = self._clock()
        span = self._tracing.start(model, call, stream=True)
        answer: list[str] = []
        try:
            (relay, delta), attempts = await self._with_retries(
                model,
                upstream,
                span,
                deadline,
                lambda remaining: self._open_stream(
                    model, upstream, dialect, call, deadline, remaining
                ),
            )
            first_chunk = self._clock() if delta is not None else None
            try:
                while delta is not None:
                    if self._log_prompts:
                        answer.append(delta.text)
                    yield delta
                    delta = await relay.next_delta()
                end = relay.end()
            except _STREAM_FAILURES as exc:  # after text was sent: no retry
                failure = self._failures.stream(model, exc, sent=True)
                self._give_up(failure, upstream, span, attempts)
            except (asyncio.CancelledError, GeneratorExit):
                upstream.breaker.release()
                raise
            finally:
                await relay.aclose()
            upstream.breaker.record_success()
            cost = self._price(model, end.usage)
            now = self._clock()
            timing = CallTiming(
                first_chunk_s=(first_chunk if first_chunk is not None else now) - started,
                total_s=now - started,
            )
            self._tracing.finish(
                span, model, end.model, end.raw_finish_reason, end.usage, cost, attempts, timing
            )
            self._log_call(model, call, "".join(answer))
            yield PricedEnd(end, cost, model.provider_name, timing)
        except BaseException as exc:
            self._tracing.fail(span, exc)
            raise
        finally:
            span.end()

    # --- the retry loop ----------------------------------------------------------------------

    async def _with_retries(
        self,
        model: CatalogModel,
        upstream: Upstream,
        span: Span,
        deadline: float,
        attempt: Callable[[float], Awaitable[T]],
    ) -> tuple[T, int]:
        """Run `attempt(remaining_s)` until it succeeds, retrying what may be retried.

        The caller records the breaker's success once its call is done (a stream's end).
        """
        attempts = 0
        while True:
            attempts += 1
            self._admit(model, upstream, span, deadline, attempts)
            remaining = deadline - self._clock()
            try:
                async with asyncio.timeout(remaining):
                    return await attempt(remaining), attempts
            except AttemptFailed as failure:
                await self._after_failure(failure, model, upstream, span, deadline, attempts)
            except TimeoutError:
                upstream.breaker.release()
                raise deadline_error(
                    model=model.name, provider=model.provider_name, attempts=attempts
                ) from None
            except asyncio.CancelledError:
                upstream.breaker.release()
                raise

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
            self._tracing.circuit_open(span)
            raise circuit_open_error(
                model=model.name,
                provider=model.provider_name,
                base_url=upstream.base_url,
                retry_in_s=refusal.retry_in_s,
                redact=self._redact,
            )

    def _record(self, failure: AttemptFailed, upstream: Upstream, span: Span) -> None:
        if failure.upstream_fault:
            upstream.breaker.record_failure()
        else:
            upstream.breaker.record_success()  # the upstream answered: it is up
        if failure.http_status is not None:
            self._tracing.upstream_status(span, failure.http_status)

    def _give_up(
        self, failure: AttemptFailed, upstream: Upstream, span: Span, attempts: int
    ) -> NoReturn:
        """Record `failure` and raise the caller's error (no retry: text was sent)."""
        self._record(failure, upstream, span)
        raise failure.make_error(attempts) from None

    async def _after_failure(
        self,
        failure: AttemptFailed,
        model: CatalogModel,
        upstream: Upstream,
        span: Span,
        deadline: float,
        attempts: int,
    ) -> None:
        """Record `failure`; wait before the next attempt, or raise the caller's error."""
        self._record(failure, upstream, span)
        delay = None
        if failure.retryable:
            remaining = deadline - self._clock()
            delay = self._retry.next_delay(attempts, failure.retry_after_s, remaining, self._rng)
        if delay is None:
            raise failure.make_error(attempts) from None
        self._tracing.retried(span, attempts, failure.reason, delay)
        log.warning(
            "retrying upstream call",
            model=model.name,
            upstream=self._redact(upstream.base_url),
            attempt=attempts,
            reason=failure.reason,
            delay_s=round(delay, 3),
        )
        await self._sleep(delay)

    # --- attempts ----------------------------------------------------------------------------

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
            upstream.url(dialect.path),
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
        """Send and check the status; a non-200 answer becomes `AttemptFailed`."""
        try:
            response = await upstream.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise self._failures.connection(model, exc) from None
            raise TimeoutError from None
        except httpx.TransportError as exc:
            raise self._failures.connection(model, exc) from None
        if response.status_code == 200:
            return response
        try:
            body = await response.aread()
        except httpx.HTTPError:
            body = b""
        finally:
            await response.aclose()
        raise self._failures.http(
            model, response.status_code, response.headers, body, self._wall_clock()
        )

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
        except httpx.DecodingError as exc:
            raise self._failures.malformed(model, exc) from None
        except httpx.TransportError as exc:
            raise self._failures.connection(model, exc) from None
        finally:
            await response.aclose()
        try:
            return dialect.parse(load_json(body))
        except UNEXPECTED_SHAPE as exc:  # WireError included
            raise self._failures.malformed(model, exc) from None

    async def _open_stream(
        self,
        model: CatalogModel,
        upstream: Upstream,
        dialect: Dialect,
        call: ChatCall,
        deadline: float,
        remaining: float,
    ) -> tuple[StreamRelay, StreamDelta | None]:
        """A stream's attempt: sent, answered 200, and read up to its first text; a stream with
        no text at all is read to its end and checked here, so its failures are retried too."""
        request = self._request(model, upstream, dialect, call, stream=True, remaining=remaining)
        response = await self._send(model, upstream, request)
        relay = StreamRelay(response, dialect.stream(), deadline=deadline, clock=self._clock)
        try:
            first = await relay.next_delta()
            if first is None:
                relay.end()  # raises if it ended early or malformed
            return relay, first
        except _STREAM_FAILURES as exc:
            await relay.aclose()
            raise self._failures.stream(model, exc, sent=False) from None
        except BaseException:
            await relay.aclose()
            raise

    # --- pricing and logging -----------------------------------------------------------------

    def _price(self, model: CatalogModel, usage: TokenUsage) -> Decimal:
        try:
            return model.prices.cost_usd(usage)
        except PriceError as exc:
            raise SwitchyardError(f"model {model.name!r}: {exc}") from None

    def _log_call(self, model: CatalogModel, call: ChatCall, answer: str) -> None:
        """The prompt and the answer, only where the operator opted in (`log_prompts`)."""
        if self._log_prompts:
            prompt = "\n".join(f"{t.role.value}: {t.content}" for t in call.turns)
            log.info("frontier call", model=model.name, prompt=prompt, answer=self._redact(answer))
