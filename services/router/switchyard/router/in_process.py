"""What the router's in-process opt-ins share (`local_classifier.py`, `in_process_frontier.py`):
the settings of the service they run inside the router, read and checked as that service reads
them, and errors raised as the `grpc.aio.AioRpcError` its stub would raise."""

from __future__ import annotations

from typing import TypeVar

import grpc

from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.settings import ServiceSettings, SettingsError, load_settings

__all__ = ["rpc_error", "service_settings"]

S = TypeVar("S", bound=ServiceSettings)


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """The error a stub raises for a call that ended with `code` and `details`."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def service_settings(settings_class: type[S]) -> S:
    """The service's settings from its own environment variables; a bad value stops the router's
    start-up (FailedPrecondition listing every problem)."""
    try:
        return load_settings(settings_class)
    except SettingsError as error:
        raise FailedPrecondition(error.message) from None
