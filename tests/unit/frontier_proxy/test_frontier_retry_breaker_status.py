"""Retry policy, Retry-After parsing, the circuit breaker and upstream-status mapping (pure)."""

from __future__ import annotations

import random
from email.utils import formatdate

import grpc
import pytest

from switchyard.frontier_proxy.resilience.breaker import BreakerState, CircuitBreaker
from switchyard.frontier_proxy.resilience.retry import (
    RetryPolicy,
    is_retryable_status,
    parse_retry_after,
)
from switchyard.frontier_proxy.resilience.status import MAX_UPSTREAM_MESSAGE, http_error, quote
from switchyard.runtime.redaction import Redactor


def test_retryable_statuses() -> None:
    assert all(is_retryable_status(s) for s in (429, 500, 502, 503, 504, 529))
    assert not any(is_retryable_status(s) for s in (200, 400, 401, 403, 404, 422))


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}, 0) == 3.0
    assert parse_retry_after({"retry-after": "0.5"}, 0) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}, 0) == 0.25
    now = 1_800_000_000.0
    assert parse_retry_after(
        {"retry-after": formatdate(now + 7, usegmt=True)}, now
    ) == pytest.approx(7)
    assert parse_retry_after({"retry-after": formatdate(now - 7, usegmt=True)}, now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}, now) is None
    assert parse_retry_after({"retry-after": "-1"}, now) is None
    assert parse_retry_after({}, now) is None


def test_full_jitter_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(0)
    for n, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        draws = [policy.backoff_s(n, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in draws)
        assert max(draws) > cap * 0.8  # jitter spreads over the whole range


def test_next_delay_limits() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.1, max_delay_s=1.0, max_retry_after_s=10)
    rng = random.Random(1)
    assert policy.next_delay(3, None, None, rng) is None  # attempts used up
    assert policy.next_delay(1, 2.0, None, rng) == 2.0  # Retry-After wins over backoff
    assert policy.next_delay(1, 11.0, None, rng) is None  # beyond what we wait for
    assert policy.next_delay(1, 2.0, 1.0, rng) is None  # would outlast the deadline
    assert policy.next_delay(1, 0.5, 1.0, rng) == 0.5
    assert policy.next_delay(1, None, 0.01, rng) is None  # no time left for an attempt
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    for _ in range(2):
        assert breaker.acquire() is None
        breaker.record_failure()
    breaker.record_success()  # resets the count
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    refusal = breaker.acquire()
    assert refusal is not None and refusal.retry_in_s == pytest.approx(10)
    clock.now += 4
    refusal = breaker.acquire()
    assert refusal is not None and refusal.retry_in_s == pytest.approx(6)


def test_breaker_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire() is None  # the probe
    assert breaker.acquire() is not None  # a second caller waits
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.acquire() is None and breaker.acquire() is None


def test_breaker_failed_probe_reopens_and_lost_probe_frees_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.acquire() is None
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.acquire() is not None
    clock.now += 5
    assert breaker.acquire() is None  # probe taken ...
    breaker.release()  # ... and its caller went away
    assert breaker.acquire() is None  # another probe may go
    clock.now += 5  # a probe that never reports back frees its slot after reset_after_s
    assert breaker.acquire() is None


def _error(status: int, message: str = "upstream says no", attempts: int = 1):  # type: ignore[no-untyped-def]
    return http_error(
        status,
        message,
        model="fast",
        upstream_model="gpt-4o-mini",
        provider="openai",
        key_source="$OPENAI_API_KEY",
        attempts=attempts,
        redact=Redactor(["sk-secret-123"]),
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (422, grpc.StatusCode.INVALID_ARGUMENT),
        (401, grpc.StatusCode.FAILED_PRECONDITION),
        (403, grpc.StatusCode.FAILED_PRECONDITION),
        (404, grpc.StatusCode.NOT_FOUND),
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (500, grpc.StatusCode.UNAVAILABLE),
        (529, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_status_mapping(status: int, code: grpc.StatusCode) -> None:
    assert _error(status).code == code


def test_mapped_messages() -> None:
    assert "upstream says no" in _error(400).message
    auth = _error(401, "Incorrect API key provided: sk-secret-123")
    assert "fast" in auth.message and "$OPENAI_API_KEY" in auth.message
    assert "sk-secret" not in auth.message and "Incorrect API key" not in auth.message
    assert "3 attempt(s)" in _error(429, attempts=3).message
    assert "gpt-4o-mini" in _error(404).message
    assert "sk-secret-123" not in _error(400, "echo sk-secret-123").message


def test_quote_bounds_and_redacts() -> None:
    assert quote("key sk-1 and sk-1", Redactor(["sk-1", ""])) == "key [redacted] and [redacted]"
    assert len(quote("x" * 5000, Redactor())) == MAX_UPSTREAM_MESSAGE
    assert quote("a\n  b", Redactor()) == "a b"
