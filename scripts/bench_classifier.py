#!/usr/bin/env python3
"""Benchmark the classifier service through gRPC; prints numbers for docs/model-card-classifier.md.

Starts `switchyard-classifier` as its own process on a free port (shipped model unless
SWITCHYARD_CLASSIFIER_MODEL_DIR is set), then measures, side by side in one run:
  - single-prompt latency (prompt of <= 64 tokens, one caller, sequential): p50 / p99;
  - throughput with concurrent callers (unary Classify) and with ClassifyBatch;
  - the server's resident memory (VmRSS now, VmHWM peak).
The client runs on the same machine and takes CPU from the server: numbers are conservative.

To compare models side by side in one run, give ``--models DIR [DIR ...]`` and ``--rounds N``:
each round starts a server per model in turn (alternating A, B, A, B, ...), so the machine's
load hits both alike; every block of output names its model and round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc

SHORT = "Write a Python function that returns the longest palindromic substring of a string."
MIXED = [
    SHORT,
    "What year did the Berlin Wall fall?",
    "Summarize this paragraph: The council approved the new park after a long debate about costs.",
    "If 3x + 7 = 22, what is x? Show your steps.",
    "Write a short poem about the sea at night.",
    "Classify the sentiment of: 'The food was cold and the waiter was rude.'",
    "def f(xs):\n    for i in range(len(xs) + 1):\n        print(xs[i])\nWhat's the bug?",
    "Alice is taller than Bob, Bob is taller than Carol. Who is shortest?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def wait_serving(address: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("server did not become SERVING")


async def bench(address: str, pid: int, args: argparse.Namespace, model_dir: Path) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        first = await stub.Classify(pb.ClassifyRequest(prompt=SHORT))
        print(
            f"model {first.classification.model_version}; short prompt = "
            f"{first.classification.input_tokens} tokens"
        )
        for _ in range(50):
            await stub.Classify(pb.ClassifyRequest(prompt=SHORT))
        times = []
        cpu_cost = []
        for _ in range(args.single):
            start = time.perf_counter()
            reply = await stub.Classify(pb.ClassifyRequest(prompt=SHORT))
            times.append(time.perf_counter() - start)
            cpu_cost.append(reply.cost_usd)
        ms = np.array(times) * 1000
        print(
            f"single prompt, 1 caller: p50 {np.percentile(ms, 50):.2f} ms, "
            f"p99 {np.percentile(ms, 99):.2f} ms, mean cost ${np.mean(cpu_cost):.3g}/call"
        )
        # For comparison, the fixed cost of a round trip on the same channel: Health.Check.
        health = health_pb2_grpc.HealthStub(channel)
        times = []
        for _ in range(args.single):
            start = time.perf_counter()
            await health.Check(health_pb2.HealthCheckRequest())
            times.append(time.perf_counter() - start)
        ms = np.array(times) * 1000
        print(
            f"baseline Health.Check round trip: p50 {np.percentile(ms, 50):.2f} ms, "
            f"p99 {np.percentile(ms, 99):.2f} ms"
        )
        # And the model alone, in this process (no gRPC): the inference part of the latency.
        from switchyard.classifier.model import ClassifierModel

        model = ClassifierModel(model_dir)
        times = []
        for _ in range(args.single):
            start = time.perf_counter()
            model.predict([SHORT])
            times.append(time.perf_counter() - start)
        ms = np.array(times) * 1000
        print(
            f"model alone (tokenise + ONNX run, 1 thread): p50 {np.percentile(ms, 50):.2f} ms, "
            f"p99 {np.percentile(ms, 99):.2f} ms"
        )
        del model

        for callers in args.callers:
            done = 0
            stop_at = time.perf_counter() + args.seconds

            async def caller(offset: int, stop_at: float = stop_at) -> None:
                nonlocal done
                i = offset
                while time.perf_counter() < stop_at:
                    await stub.Classify(pb.ClassifyRequest(prompt=MIXED[i % len(MIXED)]))
                    done += 1
                    i += 1

            start = time.perf_counter()
            await asyncio.gather(*(caller(k) for k in range(callers)))
            rate = done / (time.perf_counter() - start)
            print(f"Classify, {callers:3d} concurrent callers: {rate:.0f} prompts/s")

        batch = (MIXED * 8)[:32]
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            await stub.ClassifyBatch(pb.ClassifyBatchRequest(prompts=batch))
            done += len(batch)
        print(
            f"ClassifyBatch of 32, 1 caller: {done / (time.perf_counter() - start):.0f} prompts/s"
        )
    rss, peak = rss_mb(pid)
    print(f"server resident memory: {rss:.0f} MB now, {peak:.0f} MB peak")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=500, help="sequential calls for latency")
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=8.0, help="per throughput measurement")
    parser.add_argument(
        "--models",
        type=Path,
        nargs="+",
        default=None,
        help="model directories to compare, alternating (default: $SWITCHYARD_CLASSIFIER_MODEL_DIR "
        "or the shipped model)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds over --models")
    parser.add_argument(
        "--interleaved",
        type=int,
        default=0,
        help="only the model alone, in this process: N calls per model, the models' calls "
        "interleaved one by one (so the machine's load drifts onto all alike)",
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="with --interleaved: cycle through the eight mixed prompts instead of the short one "
        "(every model gets the same prompt in turn)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="with --interleaved: each call predicts this many prompts at once (the prompts in "
        "turn), as ClassifyBatch does",
    )
    args = parser.parse_args()
    from switchyard.classifier.model import SHIPPED_MODEL_DIR

    models = args.models or [
        Path(os.environ.get("SWITCHYARD_CLASSIFIER_MODEL_DIR") or SHIPPED_MODEL_DIR)
    ]
    if args.interleaved:
        interleaved(models, args.interleaved, MIXED if args.mixed else [SHORT], args.batch)
        return 0
    for round_no in range(1, args.rounds + 1):
        for model_dir in models:
            print(f"=== round {round_no}, model dir {model_dir}", flush=True)
            run_one(model_dir, args)
    return 0


def interleaved(models: list[Path], calls: int, prompts: list[str], batch: int = 1) -> None:
    from switchyard.classifier.model import ClassifierModel

    def call(n: int) -> list[str]:
        return [prompts[(n * batch + j) % len(prompts)] for j in range(batch)]

    loaded = [ClassifierModel(m) for m in models]
    for model in loaded:
        for i in range(max(50, 8 * len(prompts)) // batch + 1):
            model.predict(call(i))
    times: list[list[float]] = [[] for _ in loaded]
    for i in range(calls * len(loaded)):
        k = i % len(loaded)
        prompts_now = call(i // len(loaded))
        start = time.perf_counter()
        loaded[k].predict(prompts_now)
        times[k].append(time.perf_counter() - start)
    base = float(np.percentile(times[0], 50))
    for model, t in zip(loaded, times, strict=True):
        ms = np.array(t) * 1000
        print(
            f"model alone, interleaved, {model.version}"
            + (f", batches of {batch}" if batch > 1 else "")
            + f": p50 {np.percentile(ms, 50):.2f} ms, "
            f"p90 {np.percentile(ms, 90):.2f} ms, p50 ratio to the first "
            f"{np.percentile(ms, 50) / (base * 1000):.3f}"
        )


def run_one(model_dir: Path, args: argparse.Namespace) -> None:
    port = free_port()
    env = dict(
        os.environ,
        SWITCHYARD_CLASSIFIER_PORT=str(port),
        SWITCHYARD_CLASSIFIER_HOST="127.0.0.1",
        SWITCHYARD_CLASSIFIER_LOG_LEVEL="WARNING",
        SWITCHYARD_CLASSIFIER_MODEL_DIR=str(model_dir),
    )
    server = subprocess.Popen([sys.executable, "-m", "switchyard.classifier"], env=env)
    try:
        address = f"127.0.0.1:{port}"
        asyncio.run(wait_serving(address))
        asyncio.run(bench(address, server.pid, args, model_dir))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
