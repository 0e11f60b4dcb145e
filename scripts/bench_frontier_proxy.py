#!/usr/bin/env python
"""Latency the frontier proxy adds to streamed calls, against the stand-in upstream.

Three processes: the stand-in (tests/support/frontier_standin.py), the proxy
(`python -m switchyard.frontier_proxy`, catalog pointing at the stand-in) and this one, which
runs the same streamed chat two ways, side by side in one run:

- direct:  httpx with the proxy's transport (frontier_proxy/transport.py) -> stand-in, SSE
           parsed to the end of the body;
- proxied: gRPC GenerateStream -> proxy -> httpx -> stand-in, to the final `complete` message.

Both wait for the same stand-in answer (`--chunks` text chunks, `--chunk-delay-ms` apart, as a
model would emit them). For each concurrency (default 50 and 200 concurrent streams) the two
modes alternate for `--rounds` rounds; each round runs `--streams-per-worker` streams per
worker. Printed: p50 / p99 of time to first text chunk and of total stream time per mode, and
the difference (proxied - direct) = the latency the proxy adds, with the ratio.

Targets (docs/services/frontier-proxy.md): added p50 <= 1 ms, added p99 <= 5 ms.

`--cpu-streams N` measures the proxy's own CPU per stream instead (proxied streams only).
With `--baseline-source CHECKOUT` it runs a second proxy from another checkout's
`services/frontier-proxy` (say an older commit, `git archive <commit> services/frontier-proxy |
tar -x -C /tmp/old`) against the same stand-in, and alternates the two proxies round by round
in one run, so the CPU per stream of old and new code is compared side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc
from switchyard.frontier_proxy.transport import pooled_transport

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def direct_stream(
    client: httpx.AsyncClient, url: str, key: str, prompt: str
) -> tuple[float, float]:
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = None
    async with client.stream(
        "POST", url, json=body, headers={"authorization": f"Bearer {key}"}
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                continue  # read to the body's end, so the connection goes back to the pool
            chunk = json.loads(data)
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter()
    end = time.perf_counter()
    return (first or end) - started, end - started


async def proxied_stream(
    stub: inference_pb2_grpc.InferenceServiceStub, prompt: str
) -> tuple[float, float]:
    request = pb.GenerateStreamRequest(
        model="gpt-4o", messages=[pb.ChatMessage(role=pb.ROLE_USER, content=prompt)]
    )
    started = time.perf_counter()
    first = None
    complete = False
    async for message in stub.GenerateStream(request, timeout=60):
        if first is None and message.HasField("delta") and message.delta.text:
            first = time.perf_counter()
        if message.HasField("complete"):
            complete = True
    end = time.perf_counter()
    if not complete:
        raise RuntimeError("stream ended without complete")
    return (first or end) - started, end - started


async def run_round(
    make_call, concurrency: int, per_worker: int
) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    ttft: list[float] = []
    total: list[float] = []

    async def worker(i: int) -> None:
        for j in range(per_worker):
            a, b = await make_call(f"worker {i} stream {j} says hello")
            ttft.append(a)
            total.append(b)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return ttft, total


def summary(name: str, values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(values, 50) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "mean_ms": statistics.fmean(values) * 1000,
    }


def start_standin() -> tuple[subprocess.Popen[bytes], dict]:  # type: ignore[type-arg]
    standin = subprocess.Popen(
        [sys.executable, str(REPO / "tests/support/frontier_standin.py")],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert standin.stdout is not None
    return standin, json.loads(standin.stdout.readline())


def start_proxy(
    args: argparse.Namespace,
    info: dict,
    workdir: Path,
    source: Path | None = None,  # type: ignore[type-arg]
) -> tuple[subprocess.Popen[bytes], int]:
    """The proxy (`python -m switchyard.frontier_proxy`), from `source` when given: that
    checkout's services/frontier-proxy goes first on PYTHONPATH, so its `frontier_proxy`
    package is the one imported (the rest of the namespace package is this checkout's)."""
    env = dict(os.environ)
    workdir.mkdir(parents=True, exist_ok=True)
    catalog = workdir / "catalog.yaml"
    catalog.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "gpt-4o",
                        "provider": "openai",
                        "base_url": info["openai_base_url"],
                        "api_key_env": "BENCH_STANDIN_KEY",
                    }
                ]
            }
        )
    )
    port = free_port()
    env.update(
        BENCH_STANDIN_KEY=info["openai_key"],
        SWITCHYARD_FRONTIER_PROXY_CATALOG=str(catalog),
        SWITCHYARD_FRONTIER_PROXY_HOST="127.0.0.1",
        SWITCHYARD_FRONTIER_PROXY_PORT=str(port),
        SWITCHYARD_FRONTIER_PROXY_LOG_LEVEL="WARNING",
    )
    if source is not None:
        package_root = source.resolve() / "services" / "frontier-proxy"
        if not (package_root / "switchyard" / "frontier_proxy").is_dir():
            raise SystemExit(f"{package_root} holds no switchyard/frontier_proxy package")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(package_root), env.get("PYTHONPATH", "")) if p
        )
    if not args.otlp:
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    proxy = subprocess.Popen(
        [sys.executable, "-m", "switchyard.frontier_proxy"],
        start_new_session=True,
        env=env,
        stdout=subprocess.DEVNULL if not args.verbose else None,
    )
    return proxy, port


async def configure_standin(info: dict, chunks: int, delay_ms: float) -> None:  # type: ignore[type-arg]
    text = " ".join(f"word{i}" for i in range(chunks))
    async with httpx.AsyncClient() as client:
        response = await client.post(
            info["url"] + "/_standin/reply",
            json={"text": text, "chunk_delay_s": delay_ms / 1000.0},
        )
        response.raise_for_status()
        # Recording every request would grow without bound during a benchmark.
        await client.post(info["url"] + "/_standin/reset")
        await client.post(
            info["url"] + "/_standin/reply", json={"text": text, "chunk_delay_s": delay_ms / 1000.0}
        )


async def wait_ready(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await stub.ListModels(pb.ListModelsRequest(), timeout=2)
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def bench(args: argparse.Namespace, info: dict, port: int, proxy_pid: int) -> dict:  # type: ignore[type-arg]
    await configure_standin(info, args.chunks, args.chunk_delay_ms)
    url = info["openai_base_url"] + "/chat/completions"
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    results: dict = {}
    async with (
        # The proxy's own HTTP client: httpx with its pool on asyncio streams.
        httpx.AsyncClient(limits=limits, timeout=60, transport=pooled_transport(limits)) as client,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        await wait_ready(stub)

        def direct(prompt: str):  # type: ignore[no-untyped-def]
            return direct_stream(client, url, info["openai_key"], prompt)

        def proxied(prompt: str):  # type: ignore[no-untyped-def]
            return proxied_stream(stub, prompt)

        for concurrency in args.concurrency:
            # Warm-up: open connections on both paths.
            await run_round(direct, concurrency, 1)
            await run_round(proxied, concurrency, 1)
            samples = {"direct": ([], []), "proxied": ([], [])}
            proxy_cpu = 0.0
            for round_no in range(args.rounds):
                order = [("direct", direct), ("proxied", proxied)]
                if round_no % 2:
                    order.reverse()
                for name, call in order:
                    cpu_before = cpu_seconds(proxy_pid)
                    ttft, total = await run_round(call, concurrency, args.streams_per_worker)
                    if name == "proxied":
                        proxy_cpu += cpu_seconds(proxy_pid) - cpu_before
                    samples[name][0].extend(ttft)
                    samples[name][1].extend(total)
            row: dict = {
                "streams_per_mode": len(samples["direct"][0]),
                "proxy_cpu_ms_per_stream": proxy_cpu * 1000 / len(samples["proxied"][0]),
                "load_average_1m": os.getloadavg()[0],
            }
            for name, (ttft, total) in samples.items():
                row[name] = {"ttft": summary(name, ttft), "total": summary(name, total)}
            for metric in ("ttft", "total"):
                d, p = row["direct"][metric], row["proxied"][metric]
                row[f"added_{metric}"] = {
                    "p50_ms": p["p50_ms"] - d["p50_ms"],
                    "p99_ms": p["p99_ms"] - d["p99_ms"],
                    "p50_ratio": p["p50_ms"] / d["p50_ms"],
                    "p99_ratio": p["p99_ms"] / d["p99_ms"],
                }
            results[str(concurrency)] = row
    return results


async def cpu_profile(
    args: argparse.Namespace,
    info: dict,  # type: ignore[type-arg]
    proxies: dict[str, tuple[int, int]],
) -> dict:  # type: ignore[type-arg]
    """Proxy CPU per stream and per relayed chunk, proxied streams only (no direct mode).

    `proxies`: label -> (gRPC port, pid). With two, their rounds alternate (the order flips
    every repeat), so both see the same machine. CPU time is each proxy process's own user +
    system time (/proc), so it depends much less on other load than wall-clock latency does
    (cache and frequency effects remain: repeat it).
    """
    await configure_standin(info, args.chunks, args.chunk_delay_ms)
    rows = []
    channels = {
        label: grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        for label, (port, _) in proxies.items()
    }
    try:
        stubs = {
            label: inference_pb2_grpc.InferenceServiceStub(ch) for label, ch in channels.items()
        }
        for stub in stubs.values():
            await wait_ready(stub)

        def proxied(stub: inference_pb2_grpc.InferenceServiceStub):  # type: ignore[no-untyped-def]
            return lambda prompt: proxied_stream(stub, prompt)

        per_worker = max(1, args.cpu_streams // args.cpu_concurrency)
        streams = per_worker * args.cpu_concurrency
        for stub in stubs.values():
            await run_round(proxied(stub), args.cpu_concurrency, 1)  # warm-up
        labels = list(proxies)
        for repeat in range(args.cpu_repeats):
            for label in labels if repeat % 2 == 0 else reversed(labels):
                pid = proxies[label][1]
                cpu_before = cpu_seconds(pid)
                await run_round(proxied(stubs[label]), args.cpu_concurrency, per_worker)
                cpu = cpu_seconds(pid) - cpu_before
                row = {
                    "proxy": label,
                    "streams": streams,
                    "cpu_ms_per_stream": cpu * 1000 / streams,
                    "cpu_us_per_chunk": cpu * 1e6 / (streams * args.chunks),
                    "load_average_1m": os.getloadavg()[0],
                }
                rows.append(row)
                print(
                    f"{label:>8}: {streams} streams x {args.chunks} chunks at concurrency "
                    f"{args.cpu_concurrency}: proxy CPU {row['cpu_ms_per_stream']:.2f} ms/stream"
                    f" ({row['cpu_us_per_chunk']:.0f} us/chunk);"
                    f" load average {row['load_average_1m']:.1f}",
                    flush=True,
                )
    finally:
        for channel in channels.values():
            await channel.close()
    if len(labels) == 2:
        means = {
            label: statistics.fmean(r["cpu_ms_per_stream"] for r in rows if r["proxy"] == label)
            for label in labels
        }
        print(
            f"mean CPU per stream: {labels[0]} {means[labels[0]]:.2f} ms, "
            f"{labels[1]} {means[labels[1]]:.2f} ms; "
            f"{labels[0]} / {labels[1]} = {means[labels[0]] / means[labels[1]]:.2f}",
            flush=True,
        )
    return {"cpu": rows}


def print_table(results: dict, args: argparse.Namespace) -> None:  # type: ignore[type-arg]
    print(
        f"\nstreamed chat: {args.chunks} text chunks, {args.chunk_delay_ms} ms apart; "
        f"{args.rounds} alternating rounds x {args.streams_per_worker} streams per worker"
    )
    header = f"{'conc':>5} {'metric':>6} {'direct p50':>11} {'proxy p50':>10} {'added p50':>10} "
    header += f"{'direct p99':>11} {'proxy p99':>10} {'added p99':>10} {'p50 x':>6} {'p99 x':>6}"
    print(header)
    for concurrency, row in results.items():
        for metric in ("ttft", "total"):
            d, p, a = row["direct"][metric], row["proxied"][metric], row[f"added_{metric}"]
            print(
                f"{concurrency:>5} {metric:>6} {d['p50_ms']:>9.2f}ms {p['p50_ms']:>8.2f}ms "
                f"{a['p50_ms']:>8.2f}ms {d['p99_ms']:>9.2f}ms {p['p99_ms']:>8.2f}ms "
                f"{a['p99_ms']:>8.2f}ms {a['p50_ratio']:>6.2f} {a['p99_ratio']:>6.2f}"
            )
        print(
            f"{'':>5} ({row['streams_per_mode']} streams per mode; proxy CPU "
            f"{row['proxy_cpu_ms_per_stream']:.2f} ms per stream; "
            f"load average {row['load_average_1m']:.1f} on {os.cpu_count()} CPUs)"
        )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description="Latency added by the frontier proxy.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--streams-per-worker", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--chunk-delay-ms", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--otlp", action="store_true", help="keep OTEL_EXPORTER_OTLP_ENDPOINT")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--cpu-streams",
        type=int,
        default=0,
        help="instead of the latency comparison: proxy CPU per stream over this many streams",
    )
    parser.add_argument("--cpu-concurrency", type=int, default=20)
    parser.add_argument("--cpu-repeats", type=int, default=3)
    parser.add_argument(
        "--baseline-source",
        type=Path,
        help="with --cpu-streams: also run the proxy of this checkout and alternate the two",
    )
    args = parser.parse_args()
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            standin, info = start_standin()
            processes.append(standin)
            proxy, port = start_proxy(args, info, Path(workdir) / "new")
            processes.append(proxy)
            if args.cpu_streams:
                proxies = {"this": (port, proxy.pid)}
                if args.baseline_source is not None:
                    baseline, baseline_port = start_proxy(
                        args, info, Path(workdir) / "baseline", args.baseline_source
                    )
                    processes.append(baseline)
                    proxies["baseline"] = (baseline_port, baseline.pid)
                results = asyncio.run(cpu_profile(args, info, proxies))
            else:
                results = asyncio.run(bench(args, info, port, proxy.pid))
                print_table(results, args)
        finally:
            stop_processes(processes)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
