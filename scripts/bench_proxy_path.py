#!/usr/bin/env python3
"""The frontier proxy's own work per unary call, without gRPC, and two of its parts alone.

- `servicer`: the proxy's `Generate` servicer called in process (a fixed deadline instead of a
  gRPC context; tracing set up as in a service, with no exporter) against a bare upstream in
  its own process (`bench_grpc_unary_floor.py`'s), this process's CPU per call;
- `pricing`: `Prices.cost_usd` of one call's usage for gpt-4o-mini (flat rates), against
  genai-prices' calculator on the same usage (`pricing._calculated`, what every call paid
  before the flat-rate path);
- `request URL`: `httpx.AsyncClient.build_request` of the proxy's request with the path merged
  by httpx on every call, against the upstream's URL merged once (`Upstream.url`).

    .venv/bin/python scripts/bench_proxy_path.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvloop
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_grpc_unary_floor as floor  # noqa: E402
from bench_front_door import MODEL, write_catalog  # noqa: E402

from switchyard.api.inference.v1 import inference_pb2 as pb  # noqa: E402
from switchyard.frontier_proxy.completion import TokenUsage  # noqa: E402
from switchyard.frontier_proxy.pricing import (  # noqa: E402
    PriceLookup,
    _calculated,
    resolve_prices,
)
from switchyard.frontier_proxy.resilience.breaker import CircuitBreaker  # noqa: E402
from switchyard.frontier_proxy.service import open_proxy  # noqa: E402
from switchyard.frontier_proxy.servicer import FrontierInferenceServicer  # noqa: E402
from switchyard.frontier_proxy.settings import FrontierProxySettings  # noqa: E402
from switchyard.frontier_proxy.upstream import Upstream  # noqa: E402


class _Deadline:
    def time_remaining(self) -> float:
        return 30.0


def per_call_us(call: Callable[[], object], calls: int) -> float:
    for _ in range(calls // 10):
        call()
    cpu0 = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - cpu0) * 1e6 / calls


async def servicer_ms(port: int, calls: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="bench-proxy-path-"))
    catalog = write_catalog(
        work / "catalog.yaml", f"http://127.0.0.1:{port}/v1", "BENCH_PROXY_PATH_KEY"
    )
    os.environ["BENCH_PROXY_PATH_KEY"] = "sk-bench-0123456789"
    async with open_proxy(FrontierProxySettings(catalog=catalog)) as proxy:
        servicer = FrontierInferenceServicer(proxy, 60.0)
        request = pb.GenerateRequest(model=MODEL)
        request.messages.add(role=pb.ROLE_USER, content="Write a haiku about autumn rain.")
        context = _Deadline()
        for _ in range(calls // 10):
            await servicer.Generate(request, context)  # type: ignore[arg-type]
        cpu0 = time.process_time()
        for _ in range(calls):
            await servicer.Generate(request, context)  # type: ignore[arg-type]
        return (time.process_time() - cpu0) * 1e3 / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    trace.set_tracer_provider(TracerProvider())
    port = floor.free_port()
    upstream = floor.start(port, "upstream")
    try:
        servicer = uvloop.run(servicer_ms(port, args.calls))
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)

    prices = resolve_prices(MODEL, PriceLookup(MODEL, provider_id="openai"), {})
    usage = TokenUsage(input_tokens=12, output_tokens=16)
    priced = per_call_us(lambda: prices.cost_usd(usage), args.calls * 10)
    calculator = per_call_us(lambda: _calculated(prices.model_price, usage), args.calls)

    client = httpx.AsyncClient(base_url="https://api.openai.com/v1", timeout=5.0)
    upstream_urls = Upstream(
        base_url="https://api.openai.com/v1", client=client, breaker=CircuitBreaker(5, 30.0)
    )
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
    headers = {"authorization": "Bearer sk-bench"}

    def merged_each_time() -> object:
        return client.build_request("POST", "/chat/completions", json=body, headers=headers)

    def merged_once() -> object:
        url = upstream_urls.url("/chat/completions")
        return client.build_request("POST", url, json=body, headers=headers)

    each_time = per_call_us(merged_each_time, args.calls * 3)
    once = per_call_us(merged_once, args.calls * 3)

    print(f"| what ({args.calls} calls) | CPU per call |")
    print("|---|---:|")
    print(f"| servicer `Generate` in process, against a bare upstream | {servicer:.3f} ms |")
    print(f"| pricing, flat-rate path (`Prices.cost_usd`) | {priced:.1f} us |")
    print(f"| pricing, genai-prices' calculator | {calculator:.1f} us |")
    print(f"| `build_request`, path merged by httpx each call | {each_time:.1f} us |")
    print(f"| `build_request`, URL merged once (`Upstream.url`) | {once:.1f} us |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
