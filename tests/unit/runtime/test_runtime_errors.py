"""Error messages stay short whatever the caller sent; repeated warnings are paced."""

from __future__ import annotations

from switchyard.runtime.errors import MAX_DETAILS_BYTES, bounded_details, quote
from switchyard.runtime.logging import LogRateLimit


def test_quote_keeps_short_values_and_cuts_long_ones() -> None:
    assert quote("local-general") == "'local-general'"
    long = quote("x" * 100_000)
    assert long.startswith("'xxxx") and long.endswith("... (100000 characters)")
    assert len(long) < 120
    # control characters cannot stretch the message either
    assert len(quote("\x00" * 10_000)) < 400
    assert quote(3) == "3"


def test_bounded_details_cuts_on_a_character_boundary() -> None:
    assert bounded_details("short") == "short"
    text = "é" * 5000  # 2 bytes each
    cut = bounded_details(text)
    assert len(cut.encode("utf-8")) <= MAX_DETAILS_BYTES
    assert cut.endswith("(truncated)") and cut.startswith("éé")


def test_log_rate_limit_admits_one_line_per_interval_and_counts_the_rest() -> None:
    now = [1000.0]
    limit = LogRateLimit(60.0, clock=lambda: now[0])
    assert limit.admit("/a") == 0
    assert [limit.admit("/a") for _ in range(5)] == [None] * 5
    assert limit.admit("/b") == 0  # keys are paced apart
    now[0] += 59.9
    assert limit.admit("/a") is None
    now[0] += 0.2
    assert limit.admit("/a") == 6  # the line written now says six were held back
    assert limit.admit("/a") is None
