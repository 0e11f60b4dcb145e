"""A small OTLP/gRPC receiver for tests: collects every span (and metric name) services export.

It implements the real collector services (`opentelemetry.proto.collector.{trace,metrics}.v1`),
so services export to it through their ordinary OTLP exporter exactly as to a real collector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@dataclass
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int


@dataclass
class OtlpReceiver(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    spans: list[ReceivedSpan] = field(default_factory=list)
    metric_points: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    server: grpc.aio.Server | None = None
    port: int = 0

    async def Export(self, request, context):  # noqa: N802
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                service = str(resource.get("service.name", ""))
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(
                            ReceivedSpan(
                                service=service,
                                name=s.name,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_span_id=s.parent_span_id.hex(),
                                kind=s.kind,
                                attributes={a.key: _value(a.value) for a in s.attributes},
                                status_code=s.status.code,
                            )
                        )
            return trace_service_pb2.ExportTraceServiceResponse()
        for rm in request.resource_metrics:
            resource = {a.key: _value(a.value) for a in rm.resource.attributes}
            service = str(resource.get("service.name", ""))
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    data = getattr(metric, metric.WhichOneof("data") or "sum", None)
                    for point in getattr(data, "data_points", []):
                        attrs = {a.key: _value(a.value) for a in point.attributes}
                        self.metric_points.append((service, metric.name, attrs))
        return metrics_service_pb2.ExportMetricsServiceResponse()

    async def start(self) -> str:
        server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, server)
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self.server = server
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]
