#!/usr/bin/env python3
"""The classifier service's CPU per request, thread by thread, from /proc.

Starts `switchyard-classifier` (shipped model unless SWITCHYARD_CLASSIFIER_MODEL_DIR is set) on
a free port, loads it with N concurrent `Classify` callers for a few seconds, and prints each of
its threads' user + system CPU in ms per request: the main thread (the event loop: gRPC's
Python side, the interceptor, the servicer), gRPC's C-core threads (`event_engine`), and the
other Python threads, of which the busiest is the micro-batcher's model thread (tokenizer and
onnxruntime with one intra-op thread). A sampling profiler attributes little of the model's
time to the model (its native frames are not unwound); this count per thread does not depend on
unwinding.

    .venv/bin/python scripts/bench_classifier_threads.py [--callers 1 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import grpc
import uvloop
from bench_classifier import MIXED, free_port, wait_serving

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc

TICKS = os.sysconf("SC_CLK_TCK")
WARMUP = 50


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (name, CPU seconds) for every thread of `pid`."""
    out: dict[int, tuple[str, float]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="utf-8") as handle:
                stat = handle.read()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


async def load(port: int, callers: int, seconds: float) -> int:
    done = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        for i in range(WARMUP):
            await stub.Classify(pb.ClassifyRequest(prompt=MIXED[i % len(MIXED)]), timeout=5)
        deadline = time.monotonic() + seconds

        async def caller() -> None:
            nonlocal done
            i = 0
            while time.monotonic() < deadline:
                prompt = MIXED[i % len(MIXED)]
                await stub.Classify(pb.ClassifyRequest(prompt=prompt), timeout=5)
                done += 1
                i += 1

        await asyncio.gather(*(caller() for _ in range(callers)))
    return done + WARMUP


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    port = free_port()
    env = dict(
        os.environ,
        SWITCHYARD_CLASSIFIER_HOST="127.0.0.1",
        SWITCHYARD_CLASSIFIER_PORT=str(port),
        SWITCHYARD_CLASSIFIER_LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen([sys.executable, "-m", "switchyard.classifier"], env=env)
    try:
        uvloop.run(wait_serving(f"127.0.0.1:{port}", 180))
        print("| callers | requests | main thread (event loop) | busiest other Python thread "
              "(the model) | gRPC C-core threads | rest | total |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for callers in args.callers:
            before = thread_cpu(server.pid)
            requests = uvloop.run(load(port, callers, args.seconds))
            after = thread_cpu(server.pid)
            ms = {
                tid: (name, (cpu - before.get(tid, (name, 0.0))[1]) * 1e3 / requests)
                for tid, (name, cpu) in after.items()
            }
            main_ms = ms.pop(server.pid, ("", 0.0))[1]
            core = sum(v for name, v in ms.values() if name.startswith("event_engine"))
            others = sorted((v for name, v in ms.values() if not name.startswith("event_engine")))
            model = others.pop() if others else 0.0
            rest = sum(others)
            total = main_ms + model + core + rest
            print(
                f"| {callers} | {requests} | {main_ms:.3f} | {model:.3f} | {core:.3f} | "
                f"{rest:.3f} | {total:.3f} |",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
