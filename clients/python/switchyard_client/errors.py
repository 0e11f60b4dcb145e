"""Errors the client raises: one class per thing a caller handles differently."""

from __future__ import annotations

import grpc

__all__ = [
    "BudgetExceeded",
    "InvalidRequest",
    "MessageTooLarge",
    "NotAuthenticated",
    "SwitchyardClientError",
    "SwitchyardUnavailable",
    "from_rpc_error",
]


class SwitchyardClientError(Exception):
    """A call failed. `code` is the gRPC status code, `details` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidRequest(SwitchyardClientError):
    """The request was malformed (INVALID_ARGUMENT) or named something unknown (NOT_FOUND)."""


class NotAuthenticated(SwitchyardClientError):
    """The API key is missing or wrong (UNAUTHENTICATED / PERMISSION_DENIED)."""


class BudgetExceeded(SwitchyardClientError):
    """A budget or capacity limit refused the request (RESOURCE_EXHAUSTED)."""


class MessageTooLarge(SwitchyardClientError):
    """The request (or its answer) was larger than a gRPC message may be (RESOURCE_EXHAUSTED
    from the transport: "message larger than max"), on the client's side or the server's. Send
    a shorter prompt; the limit is 4 MiB unless both sides raise it. Not a budget refusal."""


# What gRPC's transports say when a message exceeds the size limit, in every language:
# "Sent message larger than max (N vs. M)", "Received message larger than max (N vs. M)",
# Go's "grpc: trying to send message larger than max (N vs. M)".
_TOO_LARGE = "message larger than max"


class SwitchyardUnavailable(SwitchyardClientError):
    """Switchyard or every backend it tried was unreachable, or the deadline passed."""


_BY_CODE: dict[grpc.StatusCode, type[SwitchyardClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: InvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: NotAuthenticated,
    grpc.StatusCode.PERMISSION_DENIED: NotAuthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: BudgetExceeded,
    grpc.StatusCode.UNAVAILABLE: SwitchyardUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: SwitchyardUnavailable,
}


def from_rpc_error(error: grpc.RpcError) -> SwitchyardClientError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or ""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in details.lower():
        return MessageTooLarge(code, details)
    return _BY_CODE.get(code, SwitchyardClientError)(code, details)
