"""Upstream failures -> Switchyard errors (and so gRPC status codes). Pure.

| upstream                                  | caller sees                                        |
|-------------------------------------------|----------------------------------------------------|
| 400, 413, 422                             | INVALID_ARGUMENT with the upstream's message       |
| 401, 403 (our key is wrong)               | FAILED_PRECONDITION naming the model and where |
|                                           | its key comes from (never the key)                 |
| 404                                       | NOT_FOUND (the upstream does not know the model)   |
| 429 after retries                         | RESOURCE_EXHAUSTED                                 |
| 5xx, connection errors after retries      | UNAVAILABLE                                        |
| circuit open                              | UNAVAILABLE (with when the next probe goes)        |
| caller's deadline                         | DEADLINE_EXCEEDED                                  |
| stream cut mid-way, malformed answer      | UNAVAILABLE: the answer is incomplete              |

Upstream text is passed on only for 400-class request errors and 404/429/5xx explanations,
through the process's `Redactor` (switchyard.runtime.redaction: every held key, fragments of
one, anything credential-shaped) and bounded in length (`quote`). Authentication errors never
pass the upstream's text on: OpenAI's 401 message quotes part of the key.
"""

from __future__ import annotations

from switchyard.runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SwitchyardError,
    Unavailable,
)
from switchyard.runtime.redaction import Redactor

__all__ = [
    "MAX_UPSTREAM_MESSAGE",
    "circuit_open_error",
    "deadline_error",
    "http_error",
    "quote",
    "transport_error",
]

MAX_UPSTREAM_MESSAGE = 500


def quote(text: str, redact: Redactor) -> str:
    """Upstream `text` as it may appear in an error message: redacted, on one line, bounded."""
    text = " ".join(redact(text).split())
    if len(text) > MAX_UPSTREAM_MESSAGE:
        text = text[: MAX_UPSTREAM_MESSAGE - 3] + "..."
    return text


def http_error(
    status: int,
    upstream_message: str,
    *,
    model: str,
    upstream_model: str,
    provider: str,
    key_source: str,
    attempts: int,
    redact: Redactor,
) -> SwitchyardError:
    """The error for an upstream HTTP error status (after any retries)."""
    said = quote(upstream_message, redact) or f"HTTP {status}"
    tries = f" after {attempts} attempt(s)" if attempts > 1 else ""
    if status in (400, 413, 422):
        return InvalidArgument(f"{provider} rejected the request for model {model!r}: {said}")
    if status in (401, 403):
        return FailedPrecondition(
            f"{provider} refused the frontier proxy's API key for model {model!r} "
            f"(HTTP {status}; key from {key_source}): the operator must fix that key"
        )
    if status == 404:
        return NotFound(
            f"{provider} does not know upstream model {upstream_model!r} (model {model!r}): {said}"
        )
    if status == 429:
        return ResourceExhausted(f"{provider} rate-limited model {model!r}{tries}: {said}")
    if status == 402:
        return FailedPrecondition(
            f"{provider} refused model {model!r} for billing reasons (HTTP 402): {said}"
        )
    if status >= 500 or status == 408:
        return Unavailable(f"{provider} failed for model {model!r}{tries} (HTTP {status}): {said}")
    return Unavailable(f"{provider} answered HTTP {status} for model {model!r}: {said}")


def transport_error(
    what: str, *, model: str, provider: str, attempts: int, redact: Redactor
) -> Unavailable:
    """A connection failure, a cut stream or a malformed answer (after any retries)."""
    tries = f" after {attempts} attempt(s)" if attempts > 1 else ""
    return Unavailable(
        f"{provider} is unreachable for model {model!r}{tries}: {quote(what, redact)}"
    )


def circuit_open_error(
    *, model: str, provider: str, base_url: str, retry_in_s: float, redact: Redactor
) -> Unavailable:
    # The base URL is configuration, but may carry credentials (userinfo, a query key).
    return Unavailable(
        f"circuit open for {provider} at {redact(base_url)} (model {model!r}) after repeated "
        f"failures; next probe in {retry_in_s:.1f}s"
    )


def deadline_error(*, model: str, provider: str, attempts: int) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"deadline exceeded waiting for {provider} (model {model!r}, {attempts} attempt(s))"
    )
