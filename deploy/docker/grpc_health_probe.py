#!/opt/switchyard/bin/python
"""Container health check over the gRPC health protocol (grpc.health.v1.Health/Check).

    grpc-health-probe [--address 127.0.0.1:50051] [--service NAME] [--timeout 3]

Exit status 0 when the server answers SERVING, 1 otherwise (NOT_SERVING, unknown service,
unreachable, or past the timeout), with one line on stderr saying why. The images' HEALTHCHECK
and docker-compose's start order use it; Kubernetes uses its built-in gRPC probes instead.
Uses only grpcio and grpcio-health-checking, which every Switchyard image has.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str, timeout_s: float) -> tuple[bool, str]:
    """Whether `service` ("" = the whole server) at `address` is SERVING, and the reason."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as err:
            return False, f"{address}: {err.code().name}: {err.details()}"
    state = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{address}: {state}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--service", default="", help="service name; empty: the whole server")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    args = parser.parse_args(argv)
    healthy, reason = check(args.address, args.service, args.timeout)
    if not healthy:
        print(f"unhealthy: {reason}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
