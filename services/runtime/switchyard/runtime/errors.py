"""The exception hierarchy every service raises, each class carrying its gRPC status code.

Servicers and the modules beneath them raise these; the server's interceptor
(`switchyard.runtime.server`) aborts the call with the class's code and the exception's message.
Messages are shown to callers: they must say what is wrong and never carry a secret. Any other
exception becomes INTERNAL with a generic message and a logged traceback.
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
]


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
