"""Channel options every Switchyard caller uses: keepalive, message limits, safe retries.

Hand-written (not generated): the one copy of the channel defaults, shared by the services'
runtime (`switchyard.runtime.channels`) and the Python client, so neither depends on the other.
gRPC retries a call only while no response has been received, so retrying UNAVAILABLE never
duplicates output a caller saw.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "channel_options", "retry_service_config"]

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def retry_service_config(
    *, max_attempts: int = 3, initial_backoff_s: float = 0.05, max_backoff_s: float = 1.0
) -> str:
    """gRPC service config retrying every method on UNAVAILABLE, with capped exponential backoff."""
    policy = {
        "maxAttempts": max_attempts,
        "initialBackoff": f"{initial_backoff_s}s",
        "maxBackoff": f"{max_backoff_s}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps({"methodConfig": [{"name": [{}], "retryPolicy": policy}]})


def channel_options(
    *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, retry_attempts: int = 3
) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if retry_attempts > 1:
        options += [
            ("grpc.enable_retries", 1),
            ("grpc.service_config", retry_service_config(max_attempts=retry_attempts)),
        ]
    else:
        options.append(("grpc.enable_retries", 0))
    return options
