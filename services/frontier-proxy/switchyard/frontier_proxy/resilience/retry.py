"""When to retry an upstream call and how long to wait first (pure; no clock, no sleeping).

Exponential backoff with full jitter: before retry n (n = 1, 2, ...) wait a uniformly random
time in [0, min(max_delay, base_delay * 2**(n-1))]. A `Retry-After` (or OpenAI's
`retry-after-ms`) from the upstream replaces the backoff when present, capped by
`max_retry_after_s`. No retry is planned when attempts are used up or when the wait would not
leave the attempt any time before the caller's deadline.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "is_retryable_status", "parse_retry_after"]

# Rate limited, and every server-side failure (Anthropic's 529 "overloaded" included).
RETRYABLE_STATUSES = frozenset({429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def parse_retry_after(headers: Mapping[str, str], now_epoch_s: float) -> float | None:
    """Seconds the upstream asked us to wait, from `retry-after-ms` or `Retry-After`.

    `Retry-After` is either delta-seconds or an HTTP date; `headers` must be case-insensitive
    (httpx.Headers is) or lower-case. Unparseable or negative values are ignored.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            value = parsedate_to_datetime(raw).timestamp() - now_epoch_s
        except (TypeError, ValueError, IndexError):
            return None
        return max(value, 0.0)
    return value if value >= 0 else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry limits. `max_attempts` counts the first try."""

    max_attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    max_retry_after_s: float = 30.0
    # The least time an attempt must have left after waiting to be worth starting.
    min_attempt_s: float = 0.05

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("need 0 <= base_delay_s <= max_delay_s")

    def backoff_s(self, retry_number: int, rng: random.Random) -> float:
        """Full-jitter backoff before retry `retry_number` (1-based)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (retry_number - 1)))
        return rng.uniform(0.0, cap)

    def next_delay(
        self,
        attempts_made: int,
        retry_after_s: float | None,
        remaining_s: float | None,
        rng: random.Random,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when no retry should be made.

        `remaining_s` is the time left before the caller's deadline (None: no deadline).
        A `retry_after_s` beyond `max_retry_after_s` means the upstream will not recover in
        time: no retry.
        """
        if attempts_made >= self.max_attempts:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_retry_after_s:
                return None
            delay = retry_after_s
        else:
            delay = self.backoff_s(attempts_made, rng)
        if remaining_s is not None and delay + self.min_attempt_s > remaining_s:
            return None
        return delay
