#!/usr/bin/env python3
"""The floor under every streamed hop: a bare Python grpc.aio server-streaming call.

An echo servicer that yields at once (no interceptors, no tracing, nothing of Switchyard's but
the contract's messages), client and server on one event loop, one call at a time. Prints the
time to the first streamed message, p50 / p99, on asyncio's loop and on uvloop. Whatever a
Switchyard service adds to a streamed call comes on top of this (docs/services/frontier-proxy.md).

    .venv/bin/python scripts/bench_grpc_floor.py [--calls 1500] [--warmup 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc
import uvloop

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parent.parent


class Echo(pb_grpc.InferenceServiceServicer):
    async def GenerateStream(  # noqa: N802 - gRPC method name
        self, request: pb.GenerateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        yield pb.GenerateStreamResponse(delta=pb.TextDelta(text="hello"))
        yield pb.GenerateStreamResponse(delta=pb.TextDelta(text=" world"))


async def measure(calls: int, warmup: int) -> list[float]:
    server = grpc.aio.server()
    pb_grpc.add_InferenceServiceServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    request = pb.GenerateStreamRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")])
    samples = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.InferenceServiceStub(channel)
            for _ in range(warmup + calls):
                started = time.perf_counter()
                call = stub.GenerateStream(request)
                await call.read()
                samples.append(time.perf_counter() - started)
                while await call.read() is not grpc.aio.EOF:  # the call ends normally
                    pass
    finally:
        await server.stop(None)
    return sorted(samples[warmup:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    runners: dict[str, Callable[[Coroutine[Any, Any, list[float]]], list[float]]] = {
        "asyncio": asyncio.run,
        "uvloop": uvloop.run,
    }
    for name, run in runners.items():
        ordered = run(measure(args.calls, args.warmup))
        p50 = ordered[len(ordered) // 2] * 1e3
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
        print(f"{name:8s} first streamed message: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
