"""OpenTelemetry set-up, done before the gRPC server is created.

Traces and metrics go over OTLP/gRPC to `OTEL_EXPORTER_OTLP_ENDPOINT` (Jaeger's 4317) when it is
set; otherwise nothing is exported. W3C tracecontext and baggage are propagated on every hop
(the SDK's default propagators; `OTEL_PROPAGATORS` is honoured). The request's tenant and task
type travel in baggage and `BaggageAttributesProcessor` copies them onto every span started
while they are in context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from opentelemetry import baggage, context, metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from switchyard.runtime.attributes import BAGGAGE_KEYS, SERVICE_NAMESPACE

__all__ = [
    "BaggageAttributesProcessor",
    "Telemetry",
    "get_meter",
    "get_tracer",
    "request_baggage",
    "setup_telemetry",
    "switchyard_version",
]


def switchyard_version() -> str:
    try:
        return version("switchyard")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


class BaggageAttributesProcessor(SpanProcessor):
    """Copies Switchyard's baggage entries (tenant, task type) onto every span at its start."""

    def __init__(self, keys: Sequence[str] = BAGGAGE_KEYS) -> None:
        self._keys = tuple(keys)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for key in self._keys:
            value = baggage.get_baggage(key, parent_context)
            if value is not None:
                span.set_attribute(key, str(value))

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass
class Telemetry:
    """The providers one service process owns; `shutdown()` flushes and closes them."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(
    service_name: str,
    *,
    endpoint: str | None = None,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Create the tracer and meter providers for `service_name` and (by default) install them.

    `endpoint` defaults to `OTEL_EXPORTER_OTLP_ENDPOINT`; with neither an endpoint nor an
    exporter nothing leaves the process. Tests pass an in-memory exporter and reader.
    """
    endpoint = endpoint if endpoint is not None else os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": switchyard_version(),
            "service.namespace": SERVICE_NAMESPACE,
        }
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BaggageAttributesProcessor())
    readers: list[MetricReader] = []
    if span_exporter is not None:
        # An exporter passed in (tests, tools) sees each span as soon as it ends.
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    if metric_reader is not None:
        readers.append(metric_reader)
    if endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = not endpoint.startswith("https://")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=insecure))
        )
        readers.append(
            PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=insecure))
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider)


def get_tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name, switchyard_version())


def get_meter(name: str) -> metrics.Meter:
    return metrics.get_meter(name, switchyard_version())


@contextmanager
def request_baggage(**entries: str) -> Iterator[None]:
    """Put `switchyard.<key>` baggage entries in context for spans and calls made inside."""
    ctx = context.get_current()
    for key, value in entries.items():
        ctx = baggage.set_baggage(f"{SERVICE_NAMESPACE}.{key}", value, ctx)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)
