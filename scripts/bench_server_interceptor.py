#!/usr/bin/env python3
"""What a server's interceptor chain costs per call: the same leaf server with each chain.

One leaf answers the contract's ``Classify`` with a fixed message (no work of its own), as in
`bench_grpc_unary_floor.py`, in one server process per chain, each on uvloop with telemetry set
up as a service sets it up (`setup_telemetry`: spans are made and sampled; nothing is exported):

- `bare`:       no interceptor (the floor);
- `switchyard`: this tree's `ServerCallInterceptor` (span, W3C extraction, checks, errors);
- `before`:     with `--before DIR` (a worktree of an older commit), the chain that tree's
                `start_server` built: OpenTelemetry's `aio_server_interceptor` with the
                health/reflection filter, then that tree's `ErrorMappingInterceptor`.

The load generator (this process) sends what a router sends, a W3C `traceparent` and a
`baggage` header with each call, and keeps N calls in flight against each server in turn,
alternating rounds. CPU is each server's user + system time from /proc in ms per request; the
chain's own cost is its row minus `bare`'s.

    .venv/bin/python scripts/bench_server_interceptor.py [--before DIR] [--callers 1 50] \
        [--seconds 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import grpc
import uvloop
from bench_grpc_unary_floor import WARMUP, Leaf, cpu_seconds, free_port, load

from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc

METADATA = (
    ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("baggage", "switchyard.tenant=bench"),
)


def chain(name: str) -> list[grpc.aio.ServerInterceptor]:
    if name == "bare":
        return []
    if name == "switchyard":
        from switchyard.runtime.interceptors import CallGate, ServerCallInterceptor

        return [ServerCallInterceptor(CallGate())]
    # `before`: this process runs with the older tree first on PYTHONPATH
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    from switchyard.runtime.interceptors import CallGate, ErrorMappingInterceptor  # type: ignore
    from switchyard.runtime.server import _traced  # type: ignore[attr-defined]

    return [aio_server_interceptor(filter_=_traced), ErrorMappingInterceptor(CallGate())]


async def serve(port: int, name: str) -> None:
    from switchyard.runtime.telemetry import setup_telemetry

    setup_telemetry(f"bench-{name}", endpoint="")
    server = grpc.aio.server(interceptors=chain(name))
    pb_grpc.add_ClassifierServiceServicer_to_server(Leaf(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def start(port: int, name: str, before: Path | None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if name == "before":
        assert before is not None
        parts = [str(before / "services" / p) for p in ("runtime", "api")]
        env["PYTHONPATH"] = ":".join(parts)
    argv = [sys.executable, __file__, "--serve", str(port), "--chain", name]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the {name} server did not start")
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older tree: adds the `before` chain")
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        uvloop.run(serve(args.serve, args.chain))
        return 0
    names = ["bare", "switchyard"] + (["before"] if args.before else [])
    ports = {name: free_port() for name in names}
    procs = {name: start(ports[name], name, args.before) for name in names}
    cpu: dict[tuple[int, str], list[float]] = {}
    try:
        for callers in args.callers:
            for round_no in range(1, args.rounds + 1):
                order = names if round_no % 2 else names[::-1]
                for name in order:
                    pid = procs[name].pid
                    before = cpu_seconds(pid)
                    done = uvloop.run(load(ports[name], callers, args.seconds, METADATA))
                    ms = (cpu_seconds(pid) - before) * 1e3 / (done + WARMUP)
                    cpu.setdefault((callers, name), []).append(ms)
                    print(
                        f"round {round_no} callers {callers} {name}: {ms:.3f} ms CPU / request, "
                        f"{done / args.seconds:.0f} req/s",
                        flush=True,
                    )
        print("\n| callers | chain | server CPU ms / request (median) | over bare |")
        print("|---:|---|---:|---:|")
        for callers in args.callers:
            bare = statistics.median(cpu[(callers, "bare")])
            for name in names:
                ms = statistics.median(cpu[(callers, name)])
                print(f"| {callers} | {name} | {ms:.3f} | {ms - bare:+.3f} |")
        if args.before:
            for callers in args.callers:
                bare = statistics.median(cpu[(callers, "bare")])
                new = statistics.median(cpu[(callers, "switchyard")]) - bare
                old = statistics.median(cpu[(callers, "before")]) - bare
                print(
                    f"callers {callers}: the chain's own CPU, switchyard / before = "
                    f"{new:.3f} / {old:.3f} ms = {new / old:.2f}x"
                )
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
