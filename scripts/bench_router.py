#!/usr/bin/env python3
"""Benchmark: the router's added latency at 50 and 200 concurrent callers against a fast backend.

Three processes, as deployed: this load generator, `switchyard-router`, and one process serving
an instant classifier and an instant inference backend (real gRPC servers speaking the real
contract, answering at once). Per request we record:

- client latency through the router (Complete), and the same callers calling the fast backend
  directly (Generate), side by side in one run;
- the router's added latency = the router's own wall time for the request (CostBreakdown
  total_latency_ms) minus the time spent in its classifier and backend hops (each hop's
  latency as the router measured it, gRPC round trip included). That is everything except the
  classifier's and the backend's own time (here ~0).

Usage: .venv/bin/python scripts/bench_router.py [--seconds 10] [--concurrency 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import yaml

from switchyard.api.classifier.v1 import classifier_pb2, classifier_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc


class InstantClassifier(classifier_pb2_grpc.ClassifierServiceServicer):
    async def Classify(self, request, context):  # noqa: N802
        return classifier_pb2.ClassifyResponse(
            classification=classifier_pb2.Classification(
                task_type=classifier_pb2.TASK_TYPE_CHAT,
                complexity_score=0.2,
                escalation_probability=0.1,
                model_version="bench",
            ),
            cost_usd=1e-7,
        )


class InstantBackend(inference_pb2_grpc.InferenceServiceServicer):
    async def Generate(self, request, context):  # noqa: N802
        return inference_pb2.GenerateResponse(
            model=request.model or "fast",
            text="ok",
            finish_reason=inference_pb2.FINISH_REASON_STOP,
            usage=inference_pb2.Usage(input_tokens=10, output_tokens=2, cost_usd=1e-6),
            provider="bench",
        )


async def serve_fakes(port_file: Path) -> None:
    server = grpc.aio.server()
    classifier_pb2_grpc.add_ClassifierServiceServicer_to_server(InstantClassifier(), server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(InstantBackend(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))  # noqa: ASYNC240 - once, at start
    await server.wait_for_termination()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def load(address: str, concurrency: int, seconds: float, direct: bool) -> dict[str, object]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(min(concurrency, 8))]
    client_ms: list[float] = []
    added_ms: list[float] = []
    errors: dict[str, int] = {}
    messages = [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="hello there")]
    stop_at = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        channel = channels[i % len(channels)]
        router = router_pb2_grpc.RouterServiceStub(channel)
        backend = inference_pb2_grpc.InferenceServiceStub(channel)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                if direct:
                    await backend.Generate(
                        inference_pb2.GenerateRequest(model="fast", messages=messages), timeout=30
                    )
                else:
                    reply = await router.Complete(
                        router_pb2.CompleteRequest(messages=messages), timeout=30
                    )
                    hops = sum(h.latency_ms for h in reply.cost.hops)
                    added_ms.append(reply.cost.total_latency_ms - hops)
            except grpc.aio.AioRpcError as error:
                errors[error.code().name] = errors.get(error.code().name, 0) + 1
                continue
            client_ms.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    for channel in channels:
        await channel.close()
    return {
        "requests": len(client_ms),
        "rps": len(client_ms) / seconds,
        "errors": errors,
        "client_p50_ms": pct(client_ms, 0.5),
        "client_p99_ms": pct(client_ms, 0.99),
        "added_p50_ms": pct(added_ms, 0.5) if added_ms else None,
        "added_p99_ms": pct(added_ms, 0.99) if added_ms else None,
        "added_mean_ms": statistics.fmean(added_ms) if added_ms else None,
    }


def wait_serving(address: str, timeout_s: float = 30) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"router at {address} not serving after {timeout_s} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--serve-fakes", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.serve_fakes:
        asyncio.run(serve_fakes(args.serve_fakes))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-router-"))
    port_file = tmp / "fakes.port"
    fakes = subprocess.Popen([sys.executable, __file__, "--serve-fakes", str(port_file)])
    router = None
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.1)
        fake = f"127.0.0.1:{port_file.read_text()}"
        config = {
            "classifier": {"address": fake, "timeout_ms": 1000},
            "backends": {
                "local-inference": {"address": fake, "kind": "LOCAL"},
                "frontier-proxy": {"address": fake, "kind": "FRONTIER"},
            },
            "targets": {
                "local": {"backend": "local-inference", "model": "fast"},
                "frontier": {"backend": "frontier-proxy", "model": "fast-frontier"},
            },
            "routing": {
                "local_target": "local",
                "frontier_target": "frontier",
                "default_target": "local",
                "fallbacks": {"local": ["frontier"]},
            },
            "ledger": {"url": f"sqlite:{tmp / 'ledger.db'}"},
        }
        (tmp / "router.yaml").write_text(yaml.safe_dump(config))
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            router_port = s.getsockname()[1]
        env = {
            **os.environ,
            "SWITCHYARD_ROUTER_CONFIG": str(tmp / "router.yaml"),
            "SWITCHYARD_ROUTER_PORT": str(router_port),
            "SWITCHYARD_ROUTER_HOST": "127.0.0.1",
            "SWITCHYARD_ROUTER_LOG_LEVEL": "ERROR",
            "SWITCHYARD_ROUTER_HTTP_ENABLED": "false",  # gRPC only (bench_front_door.py: HTTP)
        }
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        router_cmd = [str(Path(sys.executable).parent / "switchyard-router")]
        router = subprocess.Popen(router_cmd, env=env, stdout=subprocess.DEVNULL)
        address = f"127.0.0.1:{router_port}"
        wait_serving(address)
        results = []
        for concurrency in args.concurrency:
            asyncio.run(load(address, concurrency, 2.0, direct=False))  # warm-up
            via_router = asyncio.run(load(address, concurrency, args.seconds, direct=False))
            direct = asyncio.run(load(fake, concurrency, args.seconds, direct=True))
            results.append({"concurrency": concurrency, "router": via_router, "direct": direct})
        if args.json:
            print(json.dumps(results, indent=2))
        print(
            f"\nrouter added latency (router wall time minus its classifier and backend hops), "
            f"{args.seconds:g} s per run, 2-core machine\n"
        )
        print(
            f"{'callers':>7} {'added p50':>10} {'added p99':>10} {'errors':>7} "
            f"{'router rps':>10} {'client p50 via router':>22} {'client p50 direct':>18} "
            f"{'ratio':>6}"
        )
        for r in results:
            rt, d = r["router"], r["direct"]
            ratio = rt["client_p50_ms"] / d["client_p50_ms"]
            print(
                f"{r['concurrency']:>7} {rt['added_p50_ms']:>8.2f}ms "
                f"{rt['added_p99_ms']:>8.2f}ms {sum(rt['errors'].values()):>7} "
                f"{rt['rps']:>10.0f} {rt['client_p50_ms']:>20.1f}ms "
                f"{d['client_p50_ms']:>16.1f}ms {ratio:>5.1f}x"
            )
        return 0
    finally:
        for process in (router, fakes):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    sys.exit(main())
