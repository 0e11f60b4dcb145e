"""The one table from a gRPC status (the code each `switchyard.runtime.errors` class carries) to
the HTTP status and OpenAI error `type` an HTTP door answers with.

gRPC callers keep getting the code itself; an HTTP door (the router's OpenAI-compatible one)
looks the code up here, so both doors say the same thing about the same failure. The HTTP
statuses follow Google's published mapping of gRPC codes (`google/rpc/code.proto`), which is
also what OpenAI's SDKs turn into the right exception class:

| gRPC status | HTTP | OpenAI `type` | OpenAI SDK exception |
|---|---|---|---|
| INVALID_ARGUMENT, OUT_OF_RANGE | 400 | invalid_request_error | BadRequestError |
| FAILED_PRECONDITION | 400 | invalid_request_error | BadRequestError |
| UNAUTHENTICATED | 401 | invalid_request_error | AuthenticationError |
| PERMISSION_DENIED | 403 | invalid_request_error | PermissionDeniedError |
| NOT_FOUND | 404 | invalid_request_error | NotFoundError |
| ALREADY_EXISTS, ABORTED | 409 | invalid_request_error | ConflictError |
| RESOURCE_EXHAUSTED | 429 | rate_limit_exceeded (a budget: insufficient_quota) | RateLimitError |
| CANCELLED | 499 | request_cancelled | APIStatusError |
| UNKNOWN, INTERNAL, DATA_LOSS | 500 | server_error | InternalServerError |
| UNIMPLEMENTED | 501 | server_error | InternalServerError |
| UNAVAILABLE | 503 | server_error | InternalServerError (retried by the SDKs) |
| DEADLINE_EXCEEDED | 504 | timeout | InternalServerError |

HTTP-only failures have no gRPC code: a body over the size limit is 413
(`invalid_request_error`, the SDKs' generic APIStatusError), an unknown path 404, a wrong method
405.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

__all__ = ["HTTP_ERRORS", "HttpError", "http_error"]


@dataclass(frozen=True, slots=True)
class HttpError:
    """How an HTTP door reports one gRPC status."""

    status: int
    type: str


_BAD_REQUEST = HttpError(400, "invalid_request_error")
_SERVER_ERROR = HttpError(500, "server_error")

#: gRPC status -> HTTP status and OpenAI error type (see the module docstring).
HTTP_ERRORS: dict[grpc.StatusCode, HttpError] = {
    grpc.StatusCode.INVALID_ARGUMENT: _BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: _BAD_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: _BAD_REQUEST,
    grpc.StatusCode.UNAUTHENTICATED: HttpError(401, "invalid_request_error"),
    grpc.StatusCode.PERMISSION_DENIED: HttpError(403, "invalid_request_error"),
    grpc.StatusCode.NOT_FOUND: HttpError(404, "invalid_request_error"),
    grpc.StatusCode.ALREADY_EXISTS: HttpError(409, "invalid_request_error"),
    grpc.StatusCode.ABORTED: HttpError(409, "invalid_request_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: HttpError(429, "rate_limit_exceeded"),
    grpc.StatusCode.CANCELLED: HttpError(499, "request_cancelled"),
    grpc.StatusCode.UNKNOWN: _SERVER_ERROR,
    grpc.StatusCode.INTERNAL: _SERVER_ERROR,
    grpc.StatusCode.DATA_LOSS: _SERVER_ERROR,
    grpc.StatusCode.UNIMPLEMENTED: HttpError(501, "server_error"),
    grpc.StatusCode.UNAVAILABLE: HttpError(503, "server_error"),
    grpc.StatusCode.DEADLINE_EXCEEDED: HttpError(504, "timeout"),
}


def http_error(code: grpc.StatusCode) -> HttpError:
    """The HTTP status and OpenAI error type for a gRPC status (500 for OK, which is no error)."""
    return HTTP_ERRORS.get(code, _SERVER_ERROR)
