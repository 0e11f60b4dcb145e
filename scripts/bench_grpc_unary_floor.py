#!/usr/bin/env python3
"""The CPU floor under every unary hop: bare Python grpc.aio servers, nothing of Switchyard's.

Server processes on uvloop with no interceptors, no tracing, no logging, replying to the
contract's ``Classify`` with a fixed message:

- a *leaf* (one server call per request, what the classifier cannot go below);
- a *relay* (one server call plus one client call to the leaf per request, on one reused
  channel);
- with ``--shapes``, the shapes of the two hops issue 17 puts floors on: *router* (one server
  call plus the two client calls a router with the classifier deciding makes, one after the
  other: classify, then the backend, both to the leaf) and *proxy* (one server call plus one
  HTTP/1.1 POST of a chat-completion body to a bare upstream, as the frontier proxy makes
  it: through one pooled ``httpx.AsyncClient``, and, as *proxy-raw*, over one kept-alive
  asyncio stream with the request written and the response read by hand, the least any HTTP
  client can do). The upstream is a bare asyncio HTTP server in its own process (its CPU is
  not counted).

A load generator in this process (its own loop) keeps N calls in flight against each front in
turn. CPU is each server process's user + system time from /proc, in ms per request; compare
with the per-hop floors of issue 17 (router <= 1.0 ms, frontier proxy <= 1.0 ms per unary
request) and with what the real services spend (docs/benchmarks.md).

    .venv/bin/python scripts/bench_grpc_unary_floor.py [--callers 1 50] [--seconds 5] [--rounds 2]
    .venv/bin/python scripts/bench_grpc_unary_floor.py --shapes relay router proxy proxy-raw
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import grpc
import httpx
import uvloop

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc

TICKS = os.sysconf("SC_CLK_TCK")
REPLY = pb.ClassifyResponse(
    classification=pb.Classification(complexity_score=0.5, escalation_probability=0.1)
)
WARMUP = 200  # calls before each measurement; their CPU is counted with the measured ones
SHAPES = ("relay", "router", "proxy", "proxy-raw")
# what the upstream answers: an OpenAI chat completion of 16 one-word tokens, as the fake
# upstream of scripts/bench_front_door.py does
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-floor",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(["word"] * 16)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28},
    }
).encode()
UPSTREAM_REPLY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(COMPLETION)
) + COMPLETION


def chat_body(prompt: str) -> bytes:
    return json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 16,
            "stream": False,
        }
    ).encode()


def content_length(head: bytes) -> int:
    """The Content-Length of a message head (0 when it has none)."""
    lower = head.lower()
    if b"content-length:" not in lower:
        return 0
    return int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])


class Leaf(pb_grpc.ClassifierServiceServicer):
    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        return REPLY


class Relay(pb_grpc.ClassifierServiceServicer):
    """`calls` client calls to the leaf per request, one after the other."""

    def __init__(self, stub: pb_grpc.ClassifierServiceStub, calls: int) -> None:
        self._stub = stub
        self._calls = calls

    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        for _ in range(self._calls - 1):
            await self._stub.Classify(request, timeout=5)
        return await self._stub.Classify(request, timeout=5)


class HttpxProxy(pb_grpc.ClassifierServiceServicer):
    """One POST per request through one pooled httpx client, the body parsed as JSON."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        response = await self._client.post(
            "/v1/chat/completions",
            content=chat_body(request.prompt),
            headers={"content-type": "application/json", "authorization": "Bearer sk-floor"},
        )
        json.loads(response.content)
        return REPLY


class RawProxy(pb_grpc.ClassifierServiceServicer):
    """One POST per request over kept-alive asyncio streams (a small pool), written and read by
    hand: no HTTP library at all."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        body = chat_body(request.prompt)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\nauthorization: Bearer sk-floor\r\n"
            b"content-length: %d\r\n\r\n" % len(body) + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        json.loads(await reader.readexactly(content_length(head)))
        self._idle.append((reader, writer))
        return REPLY


class Upstream(asyncio.Protocol):
    """A bare HTTP/1.1 server: every request (headers, then content-length bytes) gets the
    same completion, on a kept-alive connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport: asyncio.Transport = transport  # type: ignore[assignment]
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = content_length(self._buffer[:end])
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            self._transport.write(UPSTREAM_REPLY)


async def serve_upstream(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def serve(port: int, shape: str, forward: int | None) -> None:
    server = grpc.aio.server()
    servicer: pb_grpc.ClassifierServiceServicer
    if shape == "leaf":
        servicer = Leaf()
    elif shape in ("relay", "router"):
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{forward}")
        stub = pb_grpc.ClassifierServiceStub(channel)
        servicer = Relay(stub, 1 if shape == "relay" else 2)
    elif shape == "proxy":
        servicer = HttpxProxy(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{forward}", timeout=5.0)
        )
    else:
        assert forward is not None
        servicer = RawProxy(forward)
    pb_grpc.add_ClassifierServiceServicer_to_server(servicer, server)
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


def start(port: int, shape: str, forward: int | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--serve", str(port), "--shape", shape]
    if forward is not None:
        argv += ["--forward", str(forward)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{shape} server did not start")
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--shapes", nargs="+", choices=SHAPES, default=["relay"], help="fronts to load, in turn"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shape", default="leaf", help=argparse.SUPPRESS)
    parser.add_argument("--forward", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        if args.shape == "upstream":
            uvloop.run(serve_upstream(args.serve))
        else:
            uvloop.run(serve(args.serve, args.shape, args.forward))
        return 0
    leaf_port, upstream_port = free_port(), free_port()
    procs = {"leaf": start(leaf_port, "leaf"), "upstream": start(upstream_port, "upstream")}
    fronts: dict[str, tuple[int, subprocess.Popen[str]]] = {}
    try:
        for shape in args.shapes:
            port = free_port()
            forward = leaf_port if shape in ("relay", "router") else upstream_port
            fronts[shape] = (port, start(port, shape, forward))
        print(
            "| callers | round | front | requests | req/s | front CPU ms / req "
            "| leaf CPU ms / req |"
        )
        print("|---:|---:|---|---:|---:|---:|---:|")
        leaf = procs["leaf"]
        for callers in args.callers:
            for round_no in range(1, args.rounds + 1):
                for shape, (port, front) in fronts.items():
                    before = (cpu_seconds(front.pid), cpu_seconds(leaf.pid))
                    done = uvloop.run(load(port, callers, args.seconds))
                    after = (cpu_seconds(front.pid), cpu_seconds(leaf.pid))
                    total = done + WARMUP  # the warm-up's calls are in the CPU too
                    front_ms = (after[0] - before[0]) * 1e3 / total
                    leaf_ms = (after[1] - before[1]) * 1e3 / total
                    leaf_cell = f"{leaf_ms:.2f}" if shape in ("relay", "router") else ""
                    print(
                        f"| {callers} | {round_no} | {shape} | {done} | "
                        f"{done / args.seconds:.0f} | {front_ms:.2f} | {leaf_cell} |",
                        flush=True,
                    )
    finally:
        for proc in [f for _, f in fronts.values()] + list(procs.values()):
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
