"""Channel options every Switchyard caller uses: keepalive, message limits, safe retries.

Hand-written (not generated): the one copy of the channel defaults, shared by the services'
runtime (`switchyard.runtime.channels`) and the Python client, so neither depends on the other.
gRPC retries a call only while no response has been received, so retrying UNAVAILABLE never
duplicates output a caller saw.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "TRACE_RESPONSE_HEADER",
    "channel_options",
    "format_traceresponse",
    "retry_service_config",
    "trace_id_from_metadata",
]

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

#: Trailing metadata every Switchyard service returns on its calls: the server span's trace
#: context in W3C Trace Context's `traceresponse` form, `00-<32 hex trace id>-<16 hex span id>-
#: <2 hex flags>`, so a caller can look its request up in Jaeger by trace id.
TRACE_RESPONSE_HEADER = "traceresponse"


def format_traceresponse(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def trace_id_from_metadata(metadata: Any) -> str | None:
    """The trace id (32 hex digits) in a call's `traceresponse` metadata, or None."""
    for key, value in metadata or ():
        if key == TRACE_RESPONSE_HEADER and isinstance(value, str):
            parts = value.split("-")
            if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
                return parts[1]
    return None


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
