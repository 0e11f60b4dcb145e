"""Server reflection under both names clients ask for: `grpc.reflection.v1.ServerReflection`
(what current grpcurl and grpc's own tools try first) and `grpc.reflection.v1alpha...` (older
clients). grpcio-reflection ships only v1alpha; v1's messages are the same fields with the same
numbers, so the v1 method is the same servicer behind v1alpha's (de)serializers.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

__all__ = ["REFLECTION_SERVICES", "enable_reflection"]

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE = reflection.SERVICE_NAME
REFLECTION_SERVICES = (V1_SERVICE, V1ALPHA_SERVICE)
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


def enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> list[str]:
    """Serve reflection (v1 and v1alpha) listing `service_names`, health and reflection itself.
    Returns the names listed."""
    names = [*service_names, HEALTH_SERVICE, *REFLECTION_SERVICES]
    reflection.enable_server_reflection(names, server)  # v1alpha
    servicer = reflection.aio.ReflectionServicer(names)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                V1_SERVICE,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    return names
