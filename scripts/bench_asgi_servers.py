#!/usr/bin/env python
"""Which ASGI server the router's HTTP door runs on: CPU per request of each candidate.

Each candidate serves the door's real ASGI app (`switchyard.router.openai.app.OpenAIDoor`, real
configuration, tenant auth, body parsing, its SERVER span, OpenAI error JSON) in its own
process; `bench_front_door.py`'s load generator sends the same `POST /v1/chat/completions` with
an unknown model, which the app answers 404 before the Router is involved, so what differs is
the server: its HTTP parsing, ASGI plumbing and event-loop work. Alternating rounds; medians.

Candidates: uvicorn with its httptools protocol (C parser, what the door uses), uvicorn with its
h11 protocol (pure Python), and hypercorn (pure Python, h11) when it is importable (it is not a
dependency: `pip install hypercorn` into the venv to include it).

Usage: flock /tmp/switchyard-bench.lock .venv/bin/python scripts/bench_asgi_servers.py \
           [--rounds 3] [--seconds 4] [--callers 1 50]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_front_door import KEY, Processes, Target, clean_env, free_port, load  # noqa: E402


def serve(server: str, port: int) -> None:
    """Child mode: the door's app on `server`, until killed."""
    import hashlib

    import uvloop

    from switchyard.router.config import parse_config
    from switchyard.router.openai.app import OpenAIDoor
    from switchyard.runtime.telemetry import setup_telemetry

    setup_telemetry("bench-asgi", endpoint="")
    data = {
        "classifier": {"address": "127.0.0.1:1"},
        "backends": {
            "b": {"address": "127.0.0.1:2", "kind": "LOCAL"},
            "f": {"address": "127.0.0.1:3", "kind": "FRONTIER"},
        },
        "targets": {"t": {"backend": "b"}, "u": {"backend": "f"}},
        "routing": {"local_target": "t", "frontier_target": "u", "default_target": "t"},
        "tenants": {"x": {"api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]}},
    }
    config = parse_config(data)
    app = OpenAIDoor(
        None,  # type: ignore[arg-type] - unknown models are refused before the Router
        lambda: config,
        routed_model="switchyard/auto",
        max_request_bytes=1 << 22,
        serving=lambda: True,
    )

    async def main() -> None:
        if server.startswith("uvicorn"):
            import uvicorn

            config_ = uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                http=server.split("-")[1],
                lifespan="off",
                access_log=False,
                log_config=None,
            )
            await uvicorn.Server(config_).serve()
        else:
            from hypercorn.asyncio import serve as hypercorn_serve
            from hypercorn.config import Config

            hc = Config()
            hc.bind = [f"127.0.0.1:{port}"]
            hc.accesslog = None
            await hypercorn_serve(app, hc)  # type: ignore[arg-type]

    uvloop.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    servers = ["uvicorn-httptools", "uvicorn-h11"]
    if importlib.util.find_spec("hypercorn") is not None:
        servers.append("hypercorn")
    import tempfile
    import urllib.request

    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp))
        targets: list[Target] = []
        try:
            for name in servers:
                port = free_port()
                p = procs.start(
                    name, [sys.executable, __file__, "--serve", name, str(port)], clean_env()
                )
                deadline = time.monotonic() + 30
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)  # noqa: S310
                        break
                    except OSError:
                        if time.monotonic() > deadline or p.poll() is not None:
                            raise RuntimeError(f"{name} did not start") from None
                        time.sleep(0.2)
                targets.append(
                    Target(name, port, "/v1/chat/completions", "no-such-model", {name: p.pid}, KEY)
                )
            rows: dict[tuple[str, int], list[dict]] = {}  # type: ignore[type-arg]

            async def run() -> None:
                for t in targets:
                    await load(t, False, 4, 1.0, ok=404)
                for r in range(args.rounds):
                    for callers in args.callers:
                        for t in targets if r % 2 == 0 else targets[::-1]:
                            rows.setdefault((t.name, callers), []).append(
                                await load(t, False, callers, args.seconds, ok=404)
                            )

            asyncio.run(run())
        finally:
            procs.stop()
    print("| server | callers | CPU us/request | req/s | p50 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for (name, callers), results in rows.items():
        cpu = statistics.median(x["cpu_ms"] for x in results) * 1000
        rps = statistics.median(x["rps"] for x in results)
        p50 = statistics.median(x["p50_ms"] for x in results)
        errors = sum(x["errors"] for x in results)
        print(f"| {name} | {callers} | {cpu:.0f} | {rps:.0f} | {p50:.2f} | {errors} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
