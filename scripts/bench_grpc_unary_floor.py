#!/usr/bin/env python3
"""The CPU floor under every unary hop: bare Python grpc.aio servers, nothing of Switchyard's.

Two server processes on uvloop with no interceptors, no tracing, no logging, replying to the
contract's ``Classify`` with a fixed message: a *leaf* (one server call per request, what the
classifier or the frontier proxy cannot go below) and a *relay* (one server call plus one client
call to the leaf per request, on one reused channel: the least a router does; a router with the
classifier deciding makes two client calls). A load generator in this process (its own loop)
keeps N calls in flight against the relay. CPU is each server process's user + system time
from /proc, in ms per request; compare with the per-hop floors of issue 17 (router <= 1.0 ms,
frontier proxy <= 1.0 ms per unary request) and with what the real services spend
(docs/benchmarks.md).

    .venv/bin/python scripts/bench_grpc_unary_floor.py [--callers 1 50] [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import grpc
import uvloop

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc

TICKS = os.sysconf("SC_CLK_TCK")
REPLY = pb.ClassifyResponse(
    classification=pb.Classification(complexity_score=0.5, escalation_probability=0.1)
)
WARMUP = 200  # calls before each measurement; their CPU is counted with the measured ones


class Leaf(pb_grpc.ClassifierServiceServicer):
    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        return REPLY


class Relay(pb_grpc.ClassifierServiceServicer):
    def __init__(self, stub: pb_grpc.ClassifierServiceStub) -> None:
        self._stub = stub

    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        return await self._stub.Classify(request, timeout=5)


async def serve(port: int, forward: int | None) -> None:
    server = grpc.aio.server()
    channel = None
    if forward is None:
        pb_grpc.add_ClassifierServiceServicer_to_server(Leaf(), server)
    else:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{forward}")
        pb_grpc.add_ClassifierServiceServicer_to_server(
            Relay(pb_grpc.ClassifierServiceStub(channel)), server
        )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


async def load(
    port: int, callers: int, seconds: float, metadata: tuple[tuple[str, str], ...] = ()
) -> int:
    """Calls completed in `seconds` by `callers` concurrent callers, after `WARMUP` calls."""
    request = pb.ClassifyRequest(prompt="Write a haiku about autumn rain.")
    done = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        for _ in range(WARMUP):
            await stub.Classify(request, timeout=5, metadata=metadata)
        deadline = time.monotonic() + seconds

        async def caller() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await stub.Classify(request, timeout=5, metadata=metadata)
                done += 1

        await asyncio.gather(*(caller() for _ in range(callers)))
    return done


def start(port: int, forward: int | None) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--serve", str(port)]
    if forward is not None:
        argv += ["--forward", str(forward)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("server did not start")
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--forward", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        uvloop.run(serve(args.serve, args.forward))
        return 0
    leaf_port, relay_port = free_port(), free_port()
    leaf = start(leaf_port, None)
    relay = start(relay_port, leaf_port)
    try:
        print("| callers | round | requests | req/s | relay CPU ms / req | leaf CPU ms / req |")
        print("|---:|---:|---:|---:|---:|---:|")
        for callers in args.callers:
            for round_no in range(1, args.rounds + 1):
                before = (cpu_seconds(relay.pid), cpu_seconds(leaf.pid))
                done = uvloop.run(load(relay_port, callers, args.seconds))
                after = (cpu_seconds(relay.pid), cpu_seconds(leaf.pid))
                total = done + WARMUP  # the warm-up's calls are in the CPU too
                relay_ms = (after[0] - before[0]) * 1e3 / total
                leaf_ms = (after[1] - before[1]) * 1e3 / total
                print(
                    f"| {callers} | {round_no} | {done} | {done / args.seconds:.0f} | "
                    f"{relay_ms:.2f} | {leaf_ms:.2f} |",
                    flush=True,
                )
    finally:
        for proc in (relay, leaf):
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
