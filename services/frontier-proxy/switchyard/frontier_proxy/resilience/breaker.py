"""A circuit breaker per upstream (pure: the clock is injected).

CLOSED: calls pass; `failure_threshold` consecutive failures open the circuit.
OPEN: calls are refused at once until `reset_after_s` has passed since it opened.
HALF_OPEN: one probe call at a time is let through; its success closes the circuit, its
failure opens it again for another `reset_after_s`. A probe that never reports back (the caller
went away) frees the probe slot after `reset_after_s`, so the circuit cannot stay stuck.

Only upstream trouble counts as failure (5xx, connection errors, timeouts); 4xx answers and 429
rate limits mean the upstream is up, and count as success for the breaker.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpen"]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitOpen:
    """Refusal from an open circuit: how long until a probe may go through."""

    retry_in_s: float


class CircuitBreaker:
    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_probe_started_at",
        "_state",
        "failure_threshold",
        "reset_after_s",
    )

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_after_s <= 0:
            raise ValueError("reset_after_s must be > 0")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_after_s
        ):
            return BreakerState.HALF_OPEN
        return self._state

    def acquire(self) -> CircuitOpen | None:
        """None when a call may go through now, else the refusal to report."""
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return None
        if self._state is BreakerState.OPEN:
            waited = now - self._opened_at
            if waited < self.reset_after_s:
                return CircuitOpen(self.reset_after_s - waited)
            self._state = BreakerState.HALF_OPEN
            self._probe_started_at = None
        # HALF_OPEN: one probe at a time.
        if self._probe_started_at is not None and now - self._probe_started_at < self.reset_after_s:
            return CircuitOpen(self.reset_after_s - (now - self._probe_started_at))
        self._probe_started_at = now
        return None

    def release(self) -> None:
        """The call ended without telling anything about the upstream (the caller went away):
        free the probe slot, change nothing else."""
        self._probe_started_at = None

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_started_at = None

    def record_failure(self) -> None:
        if self._state is BreakerState.OPEN:
            return  # a call that started before the circuit opened; it is open already
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        self._probe_started_at = None
