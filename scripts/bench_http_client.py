#!/usr/bin/env python3
"""CPU per upstream call of the frontier proxy's HTTP client, layer by layer, side by side.

One POST of a chat-completion body and its JSON answer (an OpenAI completion of 16 words) over
a kept-alive local connection to a bare upstream (`bench_grpc_unary_floor.py`'s, in its own
process, so only the client's CPU is counted), one call at a time, through:

- `httpx default`: `httpx.AsyncClient` with its own transport (httpcore's pool, h11, anyio);
- `proxy transport, h11`: the proxy's transport (`transport/`: its pool and asyncio network
  backend) with httpcore's `AsyncHTTP11Connection` (h11) per connection, as before
  `transport/http11.py`;
- `proxy transport, llhttp`: the same with `Http11Connection` (httptools), as the proxy runs;
- each of the two again under the transport alone (an `httpx.Request` handed to it, no client:
  what the connection layer costs without httpx's URL merging and header handling);
- `raw stream`: the request written and the answer read by hand on an asyncio stream, the
  least any client can spend.

Rows alternate within each round; the CPU is this process's (`time.process_time`), in ms per
call, medians over the rounds.

    .venv/bin/python scripts/bench_http_client.py [--calls 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpcore
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_grpc_unary_floor as floor  # noqa: E402

from switchyard.api.classifier.v1 import classifier_pb2 as pb  # noqa: E402
from switchyard.frontier_proxy.transport import UpstreamTransport  # noqa: E402
from switchyard.frontier_proxy.transport.http11 import Http11Connection  # noqa: E402
from switchyard.frontier_proxy.transport.network import AsyncioNetworkBackend  # noqa: E402
from switchyard.frontier_proxy.transport.pool import ConnectionPool  # noqa: E402

PATH = "/v1/chat/completions"
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
WARMUP = 200


async def per_call(call: Callable[[], Awaitable[None]], calls: int) -> float:
    for _ in range(WARMUP):
        await call()
    cpu0 = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - cpu0) * 1e3 / calls


def with_connection(connection: type) -> httpx.AsyncBaseTransport:
    """The proxy's transport (as `pooled_transport` builds it) whose pool opens `connection`s."""
    return UpstreamTransport(
        ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=AsyncioNetworkBackend(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            connection=connection,
        )
    )


async def run(port: int, calls: int, rounds: int) -> dict[str, list[float]]:
    base = f"http://127.0.0.1:{port}"
    body = floor.chat_body("Write a haiku about autumn rain.")
    results: dict[str, list[float]] = {}
    default = httpx.AsyncClient(base_url=base, timeout=5.0)
    transports = {
        "proxy transport, h11": with_connection(httpcore.AsyncHTTP11Connection),
        "proxy transport, llhttp": with_connection(Http11Connection),
    }
    clients = {
        name: httpx.AsyncClient(base_url=base, timeout=5.0, transport=transport)
        for name, transport in transports.items()
    }
    raw = floor.RawProxy(port)
    request = pb.ClassifyRequest(prompt="Write a haiku about autumn rain.")

    def through(client: httpx.AsyncClient) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            response = await client.post(PATH, content=body, headers=HEADERS)
            json.loads(response.content)

        return call

    def alone(transport: httpx.AsyncBaseTransport) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            response = await transport.handle_async_request(
                httpx.Request("POST", base + PATH, content=body, headers=HEADERS)
            )
            json.loads(await response.aread())
            await response.aclose()

        return call

    async def by_hand() -> None:
        await raw.Classify(request, None)  # type: ignore[arg-type]

    rows: dict[str, Callable[[], Awaitable[None]]] = {"httpx default": through(default)}
    for name, client in clients.items():
        rows[name] = through(client)
    for name, transport in transports.items():
        rows[f"{name}, transport alone"] = alone(transport)
    rows["raw stream"] = by_hand
    for _ in range(rounds):
        for name, call in rows.items():
            results.setdefault(name, []).append(await per_call(call, calls))
    for client in (default, *clients.values()):
        await client.aclose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = floor.free_port()
    upstream = floor.start(port, "upstream")
    try:
        results = uvloop.run(run(port, args.calls, args.rounds))
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    title = f"client ({args.calls} calls x {args.rounds} rounds)"
    print(f"| {title} | CPU ms / call (median) | rounds |")
    print("|---|---:|---|")
    for name, values in results.items():
        cells = " / ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {statistics.median(values):.3f} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
