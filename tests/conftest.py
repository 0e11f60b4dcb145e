"""Fixtures shared by every test tier.

Telemetry is installed once for the whole session, before any server or channel is created
(as each service's main does), with an in-memory exporter so tests can read the spans.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchyard.runtime.logging import setup_logging
from switchyard.runtime.telemetry import Telemetry, setup_telemetry

# As in every service: JSON lines, plain tracebacks (never a dump of local variables).
setup_logging("switchyard-tests", "INFO")

_SPANS = InMemorySpanExporter()
_METRICS = InMemoryMetricReader()
_TELEMETRY: Telemetry = setup_telemetry(
    "switchyard-tests", endpoint="", span_exporter=_SPANS, metric_reader=_METRICS
)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The session's in-memory span exporter, emptied before each test."""
    _SPANS.clear()
    yield _SPANS


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    """The session's in-memory metric reader."""
    return _METRICS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()
