"""Structured logging: JSON lines on stdout carrying the current trace and span ids.

Secrets never go into log calls. Prompt and answer text are logged only where the operator
opted in (`log_prompts`); services check that setting before passing text here.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

__all__ = ["LogRateLimit", "get_logger", "setup_logging"]

Event = MutableMapping[str, Any]


def _add_trace_context(_: Any, __: str, event: Event) -> Event:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def setup_logging(service: str, level: str = "INFO", stream: Any = None) -> None:
    """Route structlog and the standard library's logging to JSON lines on `stream` (stdout)."""
    out = stream or sys.stdout

    def add_service(_: Any, __: str, event: Event) -> Event:
        event.setdefault("service", service)
        return event

    shared: list[structlog.typing.Processor] = [
        add_service,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_context,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard logging module (grpc, vLLM, httpx) land in the same stream.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.EventRenamer("message"),
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> Any:
    """A structlog logger named `name`; call `.info("event", key=value)`."""
    return structlog.get_logger(name)


class LogRateLimit:
    """At most one log line per key every `interval_s`, for events a caller can repeat at will
    (undecodable requests): the line that is written says how many were held back before it.

    `clock` is monotonic seconds (injected in tests).
    """

    def __init__(
        self, interval_s: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def admit(self, key: str) -> int | None:
        """None: stay quiet this time. Otherwise log now; the value is how many were held back."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held_back[key] = self._held_back.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held_back.pop(key, 0)
