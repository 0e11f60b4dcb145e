"""The exception hierarchy every service raises, each class carrying its gRPC status code.

Servicers and the modules beneath them raise these; the server's interceptor
(`switchyard.runtime.server`) aborts the call with the class's code and the exception's message.
Messages are shown to callers: they must say what is wrong and never carry a secret. Any other
exception becomes INTERNAL with a generic message and a logged traceback.

A value the caller sent (a model name, a target, a field) is quoted in a message through `quote`,
which keeps it short: a caller must not be able to make an error's details so long that gRPC
refuses to send them (the metadata limit turns such an error into RESOURCE_EXHAUSTED).
`bounded_details` is the last line of defence the server's interceptor applies to every message.
"""

from __future__ import annotations

import grpc

__all__ = [
    "BudgetExceeded",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "SwitchyardError",
    "Unauthenticated",
    "Unavailable",
    "bounded_details",
    "quote",
]

#: Characters of a caller's value shown in an error message; the rest is counted, not shown.
QUOTE_LIMIT = 64
#: Most UTF-8 bytes of an error's details sent to a caller. gRPC percent-encodes them into the
#: `grpc-message` trailer (up to 3x) and refuses metadata above 8 KiB by default.
MAX_DETAILS_BYTES = 1024


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as an error message may show it: `repr`, cut to `limit` characters of the value.

    >>> quote("local-general")
    "'local-general'"
    >>> quote("x" * 1000, limit=4)
    "'xxxx'... (1000 characters)"
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > 4 * limit:
        return f"{text[: 4 * limit]}... ({len(text)} characters)"
    return text


def bounded_details(message: str, limit: int = MAX_DETAILS_BYTES) -> str:
    """`message` cut to at most `limit` UTF-8 bytes (on a character boundary), marked if cut."""
    encoded = message.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return message
    marker = " ... (truncated)"
    head = encoded[: limit - len(marker)].decode("utf-8", errors="ignore")
    return head + marker


class SwitchyardError(Exception):
    """Base of every error Switchyard maps to a gRPC status. Defaults to INTERNAL."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(SwitchyardError):
    """The caller sent something malformed or out of range."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(SwitchyardError):
    """The named model, target or resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(SwitchyardError):
    """The caller's credentials are missing or wrong."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(SwitchyardError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(SwitchyardError):
    """A queue, a rate limit or a budget is full."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class BudgetExceeded(ResourceExhausted):
    """A tenant is at or over a hard budget limit (HTTP doors: 429 `insufficient_quota`)."""


class FailedPrecondition(SwitchyardError):
    """The system is not in a state that allows the call (say, a server-side key is wrong)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(SwitchyardError):
    """A dependency is down or not ready; the call may succeed if retried."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(SwitchyardError):
    """The caller's deadline passed before the work finished."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(SwitchyardError):
    """The work was cancelled."""

    code = grpc.StatusCode.CANCELLED
