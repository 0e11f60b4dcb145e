"""Failure classification: what went wrong with one attempt, whether to retry it, and the error
the caller sees if it is the last (pure: the wall clock is passed in).

Every piece of upstream text (an error body's message, an in-stream error event, an exception's
message) enters the proxy's error path here, and goes through the process's `Redactor` before
it reaches a retry reason (span event, log line) or an error message (`status`).

| failure                                   | retried?                 | counts for the breaker |
|-------------------------------------------|--------------------------|------------------------|
| HTTP 429, 5xx                             | yes (Retry-After honoured) | 5xx only             |
| other HTTP errors (400, 401, 404, ...)    | no                       | no (the upstream is up) |
| connection error, stream cut before text  | yes                      | yes                    |
| in-stream error event before text         | as its HTTP status would be | as its status would |
| malformed answer                          | no                       | yes                    |
| read timeout                              | no (the deadline passed) | no                     |

Once text has reached the caller nothing is retried (`sent`), whatever the failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from switchyard.frontier_proxy.catalog import CatalogModel
from switchyard.frontier_proxy.providers.wire import UpstreamStreamError, WireError, error_message
from switchyard.frontier_proxy.resilience.retry import is_retryable_status, parse_retry_after
from switchyard.frontier_proxy.resilience.status import deadline_error, http_error, transport_error
from switchyard.runtime.errors import SwitchyardError
from switchyard.runtime.redaction import Redactor

__all__ = ["AttemptFailed", "FailureClassifier"]


class AttemptFailed(Exception):
    """One attempt failed. `reason`: short and redacted (span events, logs); `retryable`: may be
    retried; `upstream_fault`: counts for the circuit breaker; `make_error(attempts)`: the
    caller's error if no retry follows."""

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


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class FailureClassifier:
    """Turns upstream failures into `AttemptFailed`, redacting upstream text with `redact`."""

    __slots__ = ("_redact",)

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact

    def http(
        self, model: CatalogModel, status: int, headers: Mapping[str, str], body: bytes, now: float
    ) -> AttemptFailed:
        """A non-200 answer; `now` is the wall clock (epoch seconds) for HTTP-date Retry-After."""
        retryable = is_retryable_status(status)
        return AttemptFailed(
            f"HTTP {status}",
            self._http(model, status, error_message(body)),
            retryable=retryable,
            upstream_fault=status >= 500,
            retry_after_s=parse_retry_after(headers, now) if retryable else None,
            http_status=status,
        )

    def connection(self, model: CatalogModel, exc: Exception) -> AttemptFailed:
        """The request could not be sent or its answer not read (refused, reset, TLS, ...)."""
        return AttemptFailed(
            type(exc).__name__,
            self._transport(model, _described(exc)),
            retryable=True,
            upstream_fault=True,
        )

    def malformed(self, model: CatalogModel, exc: Exception) -> AttemptFailed:
        """An answer that does not follow its API's format (never retried: it would again)."""
        return AttemptFailed(
            "malformed answer",
            self._transport(model, f"malformed answer: {exc}"),
            retryable=False,
            upstream_fault=True,
        )

    def timeout(self, model: CatalogModel) -> AttemptFailed:
        """A read timed out: the caller's deadline (which bounds every read) has passed."""

        def make(attempts: int) -> SwitchyardError:
            return deadline_error(model=model.name, provider=model.provider_name, attempts=attempts)

        return AttemptFailed("timeout", make, retryable=False, upstream_fault=False)

    def stream(self, model: CatalogModel, exc: Exception, *, sent: bool) -> AttemptFailed:
        """A failure while reading a streamed body; `sent`: text had reached the caller."""
        if isinstance(exc, UpstreamStreamError):
            return self._stream_error(model, exc, sent=sent)
        if isinstance(exc, WireError):
            return self.malformed(model, exc)
        if isinstance(exc, httpx.TimeoutException):
            return self.timeout(model)
        if isinstance(exc, httpx.DecodingError):  # a content-encoding that does not decode
            return self.malformed(model, exc)
        what = (
            f"the stream was cut mid-way ({_described(exc)}); the answer is incomplete"
            if sent
            else f"the stream was cut before any text ({_described(exc)})"
        )
        return AttemptFailed(
            "stream cut", self._transport(model, what), retryable=True, upstream_fault=True
        )

    def _stream_error(
        self, model: CatalogModel, exc: UpstreamStreamError, *, sent: bool
    ) -> AttemptFailed:
        status = exc.http_status
        said = f"{exc.kind}: {exc.message}"
        make = (
            # After text, the caller has a partial answer: the stream is broken, whatever the
            # error's class; before text it means what the same error outside a stream would.
            self._transport(model, f"stream ended with an error after text was sent ({said})")
            if sent
            else self._http(model, status, said)
        )
        return AttemptFailed(
            # The event's type is upstream text too.
            f"stream error {' '.join(self._redact(exc.kind).split())[:80]}",
            make,
            retryable=is_retryable_status(status),
            upstream_fault=status >= 500,
        )

    def _http(
        self, model: CatalogModel, status: int, said: str
    ) -> Callable[[int], SwitchyardError]:
        redact = self._redact

        def make(attempts: int) -> SwitchyardError:
            return http_error(
                status,
                said,
                model=model.name,
                upstream_model=model.upstream_model,
                provider=model.provider_name,
                key_source=model.key_source,
                attempts=attempts,
                redact=redact,
            )

        return make

    def _transport(self, model: CatalogModel, what: str) -> Callable[[int], SwitchyardError]:
        redact = self._redact

        def make(attempts: int) -> SwitchyardError:
            return transport_error(
                what,
                model=model.name,
                provider=model.provider_name,
                attempts=attempts,
                redact=redact,
            )

        return make
