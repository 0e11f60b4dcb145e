"""What every provider's wire format shares: malformed-answer and in-stream errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "UNEXPECTED_SHAPE",
    "StreamIncomplete",
    "UpstreamStreamError",
    "WireError",
    "as_int",
    "error_message",
    "load_json",
]


class WireError(ValueError):
    """The upstream's answer does not follow its API's format."""


class UpstreamStreamError(Exception):
    """The upstream reported an error inside an SSE stream (after its HTTP 200)."""

    def __init__(self, kind: str, message: str, http_status: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        # The HTTP status the same error would have had outside a stream.
        self.http_status = http_status


# What parsing an answer of an unexpected shape can raise beyond `WireError` (a list where a
# string was expected, a missing key): callers turn these into `WireError` too, so a malformed
# answer is the upstream's fault (UNAVAILABLE), never an internal error.
UNEXPECTED_SHAPE = (TypeError, KeyError, IndexError, AttributeError, ValueError)


class StreamIncomplete(Exception):
    """The stream ended before its terminal event: the answer is incomplete."""


def load_json(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than Python's
        raise WireError(f"upstream sent invalid JSON: {exc}") from None


def error_message(body: bytes) -> str:
    """The human message of an error body, or its text.

    OpenAI `{"error": {"message": ...}}`, Anthropic `{"type": "error", "error": {"message":
    ...}}`, and what OpenAI-compatible servers send (`{"error": "..."}`, `{"message": "..."}`).
    """
    try:
        parsed = load_json(body)
    except WireError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(parsed, Mapping):
        error = parsed.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(parsed.get("message"), str):
            return str(parsed["message"])
    return body.decode("utf-8", "replace").strip()


def as_int(mapping: Mapping[str, Any] | None, key: str) -> int:
    """A non-negative token count, 0 when absent or null."""
    if not mapping:
        return 0
    value = mapping.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireError(f"upstream sent {key}={value!r}, expected a non-negative integer")
    return value
