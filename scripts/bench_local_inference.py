#!/usr/bin/env python3
"""Benchmark: the gRPC local-inference service vs vLLM's own OpenAI-compatible server.

Both serve the same model with the same engine settings, each in its own process; one client
process drives the same streamed chat load at each concurrency level against one server, then
the other, alternating rounds so drift hits both alike. Reported per server and level:
output tokens/s (all clients together), time to first token (first non-empty text) p50/p90
as the client sees it, and the ratios the targets are stated in:

    throughput ratio = gRPC tokens/s / vLLM tokens/s          (target >= 0.90)
    added TTFT p50   = gRPC TTFT p50 - vLLM TTFT p50           (target <= 5 ms)

Usage (the model must be prepared: `switchyard-local-inference prepare-model`):

    .venv/bin/python scripts/bench_local_inference.py [--concurrency 1,4,8] [--requests 6]
        [--max-tokens 64] [--rounds 2] [--json out.json]

CPU-heavy for a few minutes; it starts and stops both servers itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the test helper that starts vLLM's own server

from support.vllm_server import VllmOpenAIServer, _free_port  # noqa: E402

from switchyard.api.inference.v1 import inference_pb2 as pb  # noqa: E402
from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc  # noqa: E402
from switchyard.local_inference.model_preparation import locate_prepared_model  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"
PROMPTS = [
    "Explain why the sky is blue.",
    "Write a short poem about the sea.",
    "Give three tips for learning to cook.",
    "Describe how a bicycle works.",
]


@dataclass
class Sample:
    ttft_s: float
    tokens: int


@dataclass
class Result:
    server: str
    concurrency: int
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return sum(s.tokens for s in self.samples) / self.wall_s

    def ttft_ms(self, q: float) -> float:
        values = sorted(s.ttft_s for s in self.samples)
        return 1e3 * values[min(len(values) - 1, int(q * len(values)))]


class GrpcService:
    """`switchyard-local-inference` in its own process."""

    def __init__(self, model_dir: Path, max_model_len: int, max_num_seqs: int) -> None:
        self.port = _free_port()
        env = dict(os.environ)
        env.update(
            SWITCHYARD_LOCAL_INFERENCE_MODEL=str(model_dir),
            SWITCHYARD_LOCAL_INFERENCE_SERVED_MODEL_NAME=MODEL,
            SWITCHYARD_LOCAL_INFERENCE_PORT=str(self.port),
            SWITCHYARD_LOCAL_INFERENCE_HOST="127.0.0.1",
            SWITCHYARD_LOCAL_INFERENCE_MAX_MODEL_LEN=str(max_model_len),
            SWITCHYARD_LOCAL_INFERENCE_MAX_NUM_SEQS=str(max_num_seqs),
            SWITCHYARD_LOCAL_INFERENCE_CPU_KV_CACHE_GIB="1",
            SWITCHYARD_LOCAL_INFERENCE_USD_PER_HOUR="1.0",
            SWITCHYARD_LOCAL_INFERENCE_LOG_LEVEL="WARNING",
            HF_HUB_OFFLINE="1",
        )
        self.log = open(f"/tmp/bench-local-inference-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "switchyard.local_inference"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_serving(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"service exited; see {self.log.name}")
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.5)
        raise TimeoutError("the gRPC service did not become SERVING")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(10)
        self.log.close()


async def grpc_client(address: str, prompts: list[str], max_tokens: int) -> list[Sample]:
    samples = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        for prompt in prompts:
            started = time.perf_counter()
            ttft = None
            tokens = 0
            request = pb.GenerateStreamRequest(
                messages=[pb.ChatMessage(role=pb.ROLE_USER, content=prompt)],
                parameters=pb.GenerationParameters(max_tokens=max_tokens, temperature=0.0),
            )
            async for event in stub.GenerateStream(request, timeout=300):
                if event.HasField("delta"):
                    if ttft is None and event.delta.text:
                        ttft = time.perf_counter() - started
                else:
                    tokens = event.complete.usage.output_tokens
            samples.append(Sample(ttft or 0.0, tokens))
    return samples


async def openai_client(base_url: str, prompts: list[str], max_tokens: int) -> list[Sample]:
    samples = []
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        for prompt in prompts:
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 0.0,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            started = time.perf_counter()
            ttft = None
            tokens = 0
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("usage"):
                        tokens = chunk["usage"]["completion_tokens"]
                    for choice in chunk.get("choices", []):
                        if ttft is None and choice.get("delta", {}).get("content"):
                            ttft = time.perf_counter() - started
            samples.append(Sample(ttft or 0.0, tokens))
    return samples


async def run_level(
    name: str, target: str, concurrency: int, requests: int, max_tokens: int
) -> Result:
    client = grpc_client if name == "grpc" else openai_client
    result = Result(name, concurrency)
    started = time.perf_counter()
    batches = await asyncio.gather(
        *(
            client(target, [PROMPTS[(c + i) % len(PROMPTS)] for i in range(requests)], max_tokens)
            for c in range(concurrency)
        )
    )
    result.wall_s = time.perf_counter() - started
    result.samples = [s for batch in batches for s in batch]
    return result


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--requests", type=int, default=6, help="requests per client per round")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--max-num-seqs", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--settle-s", type=float, default=2.0, help="pause before each measured level"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    model_dir = locate_prepared_model()

    print("starting both servers (same model, same engine settings) ...", flush=True)
    service = GrpcService(model_dir, args.max_model_len, args.max_num_seqs)
    openai = await asyncio.to_thread(
        VllmOpenAIServer.start,
        model_dir,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        served_model_name=MODEL,
    )
    try:
        await service.wait_serving()
        targets = {"grpc": f"127.0.0.1:{service.port}", "vllm-openai": openai.base_url}
        # warm both (first requests pay for lazy initialisation)
        for name, target in targets.items():
            await run_level(name, target, 2, 2, 8)
        merged: dict[tuple[str, int], Result] = {}
        for round_ in range(args.rounds):
            order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for level in levels:
                for name in order:
                    # Let the other server's engine go idle first: after its last message a
                    # vLLM engine's shared-memory readers keep spinning for ~1 s
                    # (SpinCondition.busy_loop_s), taking CPU from the server being measured
                    # on a small machine; without this pause the first requests after a switch
                    # of server showed ~1 s TTFT outliers on either server.
                    await asyncio.sleep(args.settle_s)
                    r = await run_level(name, targets[name], level, args.requests, args.max_tokens)
                    m = merged.setdefault((name, level), Result(name, level))
                    m.samples += r.samples
                    m.wall_s += r.wall_s
                    print(
                        f"round {round_ + 1} {name:12s} c={level:<3d} "
                        f"{r.tokens_per_s:8.1f} tok/s  TTFT p50 {r.ttft_ms(0.5):7.1f} ms",
                        flush=True,
                    )
    finally:
        service.stop()
        openai.stop()

    print()
    print("| concurrency | server | output tok/s | TTFT p50 ms | TTFT p90 ms | requests |")
    print("|---|---|---|---|---|---|")
    summary = []
    for level in levels:
        g, v = merged[("grpc", level)], merged[("vllm-openai", level)]
        for r in (g, v):
            print(
                f"| {level} | {r.server} | {r.tokens_per_s:.1f} | {r.ttft_ms(0.5):.1f} | "
                f"{r.ttft_ms(0.9):.1f} | {len(r.samples)} |"
            )
        summary.append(
            {
                "concurrency": level,
                "grpc_tokens_per_s": g.tokens_per_s,
                "vllm_tokens_per_s": v.tokens_per_s,
                "throughput_ratio": g.tokens_per_s / v.tokens_per_s,
                "grpc_ttft_p50_ms": g.ttft_ms(0.5),
                "vllm_ttft_p50_ms": v.ttft_ms(0.5),
                "added_ttft_p50_ms": g.ttft_ms(0.5) - v.ttft_ms(0.5),
                "grpc_output_tokens": sum(s.tokens for s in g.samples),
                "vllm_output_tokens": sum(s.tokens for s in v.samples),
                # Every request's TTFT in the order it finished, per server: where a tail is.
                "grpc_ttft_ms": [round(s.ttft_s * 1e3, 1) for s in g.samples],
                "vllm_ttft_ms": [round(s.ttft_s * 1e3, 1) for s in v.samples],
            }
        )
    print()
    for s in summary:
        ok_tp = "OK" if s["throughput_ratio"] >= 0.90 else "MISSED"
        ok_ttft = "OK" if s["added_ttft_p50_ms"] <= 5.0 else "MISSED"
        print(
            f"c={s['concurrency']}: throughput ratio {s['throughput_ratio']:.3f} ({ok_tp}, "
            f"target >= 0.90); added TTFT p50 {s['added_ttft_p50_ms']:+.1f} ms "
            f"({ok_ttft}, target <= 5 ms)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "summary": summary}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
