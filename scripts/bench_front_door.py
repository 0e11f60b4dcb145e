#!/usr/bin/env python
"""Side by side: what each OpenAI-compatible gateway adds in front of the same fake upstream.

Every system is called over HTTP by the same load generator (this process: closed-loop callers,
one keep-alive connection each, httptools parsing) with the same Chat Completions body:

- `direct`:     the upstream itself: the frontier stand-in (tests/support/frontier_standin.py),
                16 one-word chunks (16 output tokens) per reply, no delay;
- `litellm`:    LiteLLM's proxy (1 worker) -> upstream. Installed by `--install-litellm` into a
                benchmark-only venv (`--litellm-venv`, default /work/cache/litellm-venv), never a
                project dependency; skipped when absent;
- `sy-forced`:  Switchyard's HTTP door (`switchyard-router`) with `model` = a target's name ->
                `switchyard-frontier-proxy` -> upstream (the router still asks the classifier
                for the ledger's task type, as it does today);
- `sy-routed`:  the same with `model` = `switchyard/auto`: the real ONNX classifier and the
                policy decide (both of the policy's targets point at the proxy, so every
                request reaches the same upstream);
- `sy-grpc-forced`, `sy-grpc-routed` (with `--systems`): the same two through the router's
                gRPC RouterService instead of the HTTP door (grpc.aio caller), to see what the
                door itself costs;
- `sy-grpc-inproc` (with `--systems`): `sy-grpc-routed` on a second router that runs the
                classifier's model in process (SWITCHYARD_ROUTER_CLASSIFIER_IN_PROCESS=true):
                no classifier hop.
- `sy-forced-skip`, `sy-grpc-forced-skip` (with `--systems`): `sy-forced` / `sy-grpc-forced` on
                a third router configured with `classifier.forced_targets: skip`: a forced
                target is not classified at all (no task type in its record).
- `sy-colocated`, `sy-grpc-colocated`, `sy-colocated-forced` (with `--systems`): one router
                process with the classifier's model and the frontier proxy both in process
                (SWITCHYARD_ROUTER_CLASSIFIER_IN_PROCESS, SWITCHYARD_ROUTER_FRONTIER_PROXY_IN_
                PROCESS) and `forced_targets: skip`: classifier deciding through the HTTP door
                and through gRPC, and a forced target through the HTTP door. No hop but the
                upstream's.

With `--before DIR` (a worktree of an older commit) every `sy-*` system also runs on a second
stack of the three services from that tree (`before:sy-...`), in the same alternating rounds,
and the report adds each row against its `before:` row and issue 17's floors. `--before .`
with `--before-env NAME=VALUE ...` compares a setting instead of a commit: the `before:`
stack's routers run this tree with those variables set (for example
`SWITCHYARD_ROUTER_LEDGER_DURABILITY=page-cache`, or `OTEL_SDK_DISABLED=true` for what
tracing and metrics cost). With `--profile
DIR --profile-load SYSTEM:MODE:CALLERS ...` each listed load is run once more afterwards for CPU
per thread (/proc) and once under py-spy (scripts/hop_profile.py): each process's CPU per
request by component (gRPC, protobuf, OpenTelemetry, logging, ledger, HTTP, model, ours).

For each round (alternating systems within the round), each mode (unary; stream, timed to the
first content delta) and each concurrency (default 1 and 50 callers) a system gets `--seconds`
of load. Printed per row: latency p50 / p99 (unary: whole request; stream: time to first
token), the latency added over `direct` in the same round, each system's own CPU per request
(user + system time of its processes from /proc: LiteLLM's process tree; Switchyard's router,
proxy and classifier, also split), and requests per second. Medians over the rounds.

Usage (one benchmark at a time on a shared machine):
  flock /tmp/switchyard-bench.lock .venv/bin/python scripts/bench_front_door.py \
      [--install-litellm] [--rounds 3] [--seconds 4] [--concurrency 1 50] [--json out.json] \
      [--systems direct litellm sy-grpc-routed sy-grpc-inproc ...] [--before DIR] \
      [--profile DIR --profile-load sy-grpc-routed:unary:50 before:sy-grpc-routed:unary:50]

Longer than ~500 lines on purpose: one harness drives every system side by side in the same
rounds (the brief of issue 17: not two benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hop_profile  # noqa: E402
from bench_router import pct  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODEL = "gpt-4o-mini"
KEY = "sy-bench-front-door-key-0123456789"
LITELLM_KEY = "sk-bench-litellm-master-0123456789abcdef"
REPLY = " ".join(f"word{i}" for i in range(16))
PROMPTS = [
    "Summarise the plot of Hamlet in two sentences.",
    "What is the capital of Australia?",
    "Write a haiku about autumn leaves.",
    "Explain what a hash table is to a new programmer.",
]
_CONTENT = re.compile(rb'"content":"[^"]')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its living descendants (Linux /proc)."""
    total = 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total + sum(cpu_seconds(c) for c in _children(pid))


# ---- the load generator ----------------------------------------------------------------------


class _Response:
    def __init__(self) -> None:
        self.done = False
        self.first_content: float | None = None
        self.stream = False

    def on_body(self, body: bytes) -> None:
        if self.first_content is None and _CONTENT.search(body):
            self.first_content = time.perf_counter()

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One keep-alive HTTP/1.1 connection (httptools parses the answers)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, float, float]:
        """(status, seconds to the first content delta, seconds to the end)."""
        import httptools

        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(head + body)
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        while not response.done:
            data = await self.reader.read(65536)
            if not data:
                self.writer.close()
                self.writer = None
                raise ConnectionError("closed mid-response")
            parser.feed_data(data)
        end = time.perf_counter()
        if not parser.should_keep_alive():
            self.writer.close()
            self.writer = None
        first = response.first_content or end
        return parser.get_status_code(), first - started, end - started

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Target:
    """One system's endpoint and the processes whose CPU is its own."""

    name: str
    port: int
    path: str
    model: str
    pids: dict[str, int] = field(default_factory=dict)
    auth: str = ""
    #: gRPC address: call RouterService (Complete / CompleteStream) instead of HTTP
    grpc_address: str = ""

    def request(self, prompt: str, stream: bool) -> tuple[bytes, bytes]:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 32,
                "stream": stream,
            }
        ).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            + (f"authorization: Bearer {self.auth}\r\n" if self.auth else "")
            + "\r\n"
        ).encode()
        return head, body

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}


class GrpcCaller:
    """The same request over Switchyard's gRPC RouterService (the `sy-grpc-*` rows)."""

    def __init__(self, target: Target) -> None:
        import grpc

        from switchyard.api.router.v1 import router_pb2_grpc

        self._channel = grpc.aio.insecure_channel(target.grpc_address)
        self._stub = router_pb2_grpc.RouterServiceStub(self._channel)
        self._target = target

    async def request(self, prompt: str, stream: bool) -> tuple[int, float, float]:
        from switchyard.api.inference.v1 import inference_pb2
        from switchyard.api.router.v1 import router_pb2

        fields: dict[str, Any] = {
            "messages": [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=prompt)],
            "parameters": inference_pb2.GenerationParameters(max_tokens=32),
        }
        if self._target.model != "switchyard/auto":
            fields["routing"] = router_pb2.RoutingOptions(force_target=self._target.model)
        metadata = [("authorization", f"Bearer {self._target.auth}")]
        started = time.perf_counter()
        first = None
        if stream:
            call = self._stub.CompleteStream(
                router_pb2.CompleteStreamRequest(**fields), metadata=metadata, timeout=30
            )
            async for event in call:
                if first is None and event.HasField("delta") and event.delta.text:
                    first = time.perf_counter()
        else:
            await self._stub.Complete(
                router_pb2.CompleteRequest(**fields), metadata=metadata, timeout=30
            )
        end = time.perf_counter()
        return 200, (first or end) - started, end - started

    def close(self) -> None:
        asyncio.get_running_loop().create_task(self._channel.close())


async def load(
    target: Target, stream: bool, callers: int, seconds: float, *, ok: int = 200
) -> dict[str, Any]:
    """`callers` closed-loop callers for `seconds`; latency samples, errors (a status other than
    `ok`), CPU, rate."""
    samples: list[float] = []
    errors = 0
    stop_at = 0.0

    async def caller(i: int) -> None:
        nonlocal errors
        conn = Connection("127.0.0.1", target.port)
        rpc = GrpcCaller(target) if target.grpc_address else None
        n = i
        try:
            while time.perf_counter() < stop_at:
                prompt = PROMPTS[n % len(PROMPTS)]
                n += 1
                try:
                    if rpc is not None:
                        status, first, total = await rpc.request(prompt, stream)
                    else:
                        head, body = target.request(prompt, stream)
                        status, first, total = await conn.request(head, body)
                except Exception:  # noqa: BLE001 - counted, not fatal
                    errors += 1
                    continue
                if status != ok:
                    errors += 1
                    continue
                samples.append(first if stream else total)
        finally:
            conn.close()
            if rpc is not None:
                rpc.close()

    cpu_before = target.cpu()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(caller(i) for i in range(callers)))
    elapsed = time.perf_counter() - started
    cpu_after = target.cpu()
    n = max(1, len(samples))
    split = {k: (cpu_after[k] - cpu_before[k]) * 1000 / n for k in cpu_after}
    return {
        "requests": len(samples),
        "errors": errors,
        "p50_ms": pct(samples, 0.5) * 1000,
        "p99_ms": pct(samples, 0.99) * 1000,
        "rps": len(samples) / elapsed,
        "cpu_ms": sum(split.values()),
        "cpu_split_ms": split,
    }


# ---- the systems -----------------------------------------------------------------------------


def serve_upstream(port_file: Path) -> None:
    """Child mode: the stand-in with a fixed 16-chunk reply, not recording requests."""
    sys.path.insert(0, str(REPO / "tests" / "support"))
    from frontier_standin import FrontierStandin, Reply, StandinUsage

    async def main() -> None:
        async with FrontierStandin(record=False) as standin:
            standin.reply = Reply(text=REPLY, usage=StandinUsage(input_tokens=20, output_tokens=16))
            port_file.write_text(  # noqa: ASYNC240 - once, at start
                json.dumps({"base_url": standin.openai_base_url, "key": standin.openai_key})
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def wait_http(url: str, timeout_s: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback
                if reply.status == 200:
                    return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


def write_catalog(path: Path, base_url: str, key_env: str) -> Path:
    """The frontier proxy's catalog for the benchmarks: MODEL at `base_url` (an OpenAI wire
    upstream), its key from `key_env`, priced as genai-prices prices OpenAI's model."""
    model = {
        "name": MODEL,
        "provider": "openai",
        "base_url": base_url,
        "api_key_env": key_env,
        "price_lookup": {"provider_id": "openai", "model": MODEL},
    }
    path.write_text(yaml.safe_dump({"models": [model]}))
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SWITCHYARD_", "OTEL_", "OPENAI_", "LITELLM_"))
    }
    env.update(PYTHONUNBUFFERED="1", OTEL_METRICS_EXPORTER="none", **extra)
    return env


def install_litellm(venv: Path) -> None:
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)


def start_litellm(procs: Processes, venv: Path, upstream: dict[str, str]) -> Target | None:
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        print(f"LiteLLM not installed at {venv} (--install-litellm): skipped", flush=True)
        return None
    config = procs.workdir / "litellm.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": f"openai/{MODEL}",
                            "api_base": upstream["base_url"],
                            "api_key": upstream["key"],
                        },
                    }
                ],
                "litellm_settings": {"telemetry": False},
            }
        )
    )
    port = free_port()
    process = procs.start(
        "litellm",
        [
            str(exe),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        clean_env(
            LITELLM_LOG="ERROR",
            LITELLM_TELEMETRY="False",
            NO_DOCS="True",
            # it refuses to start without one; callers present it as Switchyard's present theirs
            LITELLM_MASTER_KEY=LITELLM_KEY,
        ),
    )
    wait_http(
        f"http://127.0.0.1:{port}/health/liveliness", 240, process, procs.workdir / "litellm.log"
    )
    return Target(
        "litellm", port, "/v1/chat/completions", MODEL, {"litellm": process.pid}, LITELLM_KEY
    )


def wait_grpc(address: str, timeout_s: float, process: subprocess.Popen[bytes], log: Path) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{address}: exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(grpc.RpcError):
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                    return
            time.sleep(0.3)
    raise RuntimeError(f"{address} not SERVING after {timeout_s} s")


def tree_env(tree: Path | None) -> dict[str, str]:
    """PYTHONPATH putting another tree's services first (the `before` stack), or nothing."""
    if tree is None:
        return {}
    parts = ("router", "runtime", "api", "classifier", "frontier-proxy")
    return {"PYTHONPATH": ":".join(str(tree / "services" / part) for part in parts)}


def start_switchyard(
    procs: Processes,
    upstream: dict[str, str],
    *,
    tree: Path | None = None,
    prefix: str = "",
    router_env: dict[str, str] | None = None,
    in_process: bool = False,
    skip_forced: bool = False,
    colocated: bool = False,
) -> list[Target]:
    """Router, frontier proxy and classifier as processes; from `tree` (an older checkout of
    this repository: its services first on PYTHONPATH) when given, with target names prefixed
    `prefix` (`before:`); `router_env`: variables set for its routers. `in_process`: also a
    router running the classifier's model itself
    (`sy-grpc-inproc`, classifier deciding). `skip_forced`: also a router that does not
    classify forced targets (`sy-forced-skip`, `sy-grpc-forced-skip`). `colocated`: also one
    router with the classifier's model and the frontier proxy in process (`sy-colocated`...)."""
    work = procs.workdir / (prefix.rstrip(":") or "this")
    work.mkdir(parents=True, exist_ok=True)
    tree_vars = tree_env(tree)

    def service(name: str, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return procs.start(
            f"{prefix}{name}".replace(":", "-"),
            [sys.executable, "-m", module],
            clean_env(**tree_vars, **env),
        )

    catalog = write_catalog(work / "catalog.yaml", upstream["base_url"], "OPENAI_API_KEY")
    ports = {n: free_port() for n in ("proxy", "classifier", "router", "http")}
    proxy = service(
        "frontier-proxy",
        "switchyard.frontier_proxy",
        dict(
            SWITCHYARD_FRONTIER_PROXY_HOST="127.0.0.1",
            SWITCHYARD_FRONTIER_PROXY_PORT=str(ports["proxy"]),
            SWITCHYARD_FRONTIER_PROXY_CATALOG=str(catalog),
            SWITCHYARD_FRONTIER_PROXY_LOG_LEVEL="WARNING",
            OPENAI_API_KEY=upstream["key"],
        ),
    )
    classifier = service(
        "classifier",
        "switchyard.classifier",
        dict(
            SWITCHYARD_CLASSIFIER_HOST="127.0.0.1",
            SWITCHYARD_CLASSIFIER_PORT=str(ports["classifier"]),
            SWITCHYARD_CLASSIFIER_LOG_LEVEL="WARNING",
        ),
    )
    logs = procs.workdir
    tag = prefix.replace(":", "-")
    wait_grpc(f"127.0.0.1:{ports['proxy']}", 120, proxy, logs / f"{tag}frontier-proxy.log")
    wait_grpc(f"127.0.0.1:{ports['classifier']}", 180, classifier, logs / f"{tag}classifier.log")
    proxy_address = f"127.0.0.1:{ports['proxy']}"
    config = {
        "classifier": {"address": f"127.0.0.1:{ports['classifier']}", "timeout_ms": 2000},
        "backends": {
            # both of the policy's targets reach the same upstream through the proxy
            "frontier-proxy": {"address": proxy_address, "kind": "FRONTIER"},
            "proxy-as-local": {"address": proxy_address, "kind": "LOCAL"},
        },
        "targets": {
            "local-mini": {"backend": "proxy-as-local", "model": MODEL},
            "frontier-mini": {
                "backend": "frontier-proxy",
                "model": MODEL,
                "pricing": {
                    "input_usd_per_million_tokens": 0.15,
                    "output_usd_per_million_tokens": 0.60,
                },
            },
        },
        "routing": {
            "escalation_threshold": 0.5,
            "local_target": "local-mini",
            "frontier_target": "frontier-mini",
            "default_target": "local-mini",
        },
        "tenants": {"bench": {"api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]}},
        "ledger": {"url": f"sqlite:{work / 'ledger.db'}"},
    }
    (work / "router.yaml").write_text(yaml.safe_dump(config))

    def start_router(
        name: str, port: int, http_port: int, config_file: str = "router.yaml", **extra: str
    ) -> int:
        process = service(
            name,
            "switchyard.router",
            dict(
                SWITCHYARD_ROUTER_HOST="127.0.0.1",
                SWITCHYARD_ROUTER_PORT=str(port),
                SWITCHYARD_ROUTER_HTTP_HOST="127.0.0.1",
                SWITCHYARD_ROUTER_HTTP_PORT=str(http_port),
                SWITCHYARD_ROUTER_CONFIG=str(work / config_file),
                SWITCHYARD_ROUTER_LEDGER_JOURNAL_DIR=str(work / f"{name}-journal"),
                SWITCHYARD_ROUTER_LOG_LEVEL="WARNING",
                **extra,
                **(router_env or {}),
            ),
        )
        url = f"http://127.0.0.1:{http_port}/health"
        wait_http(url, 120, process, logs / f"{tag}{name}.log")
        return process.pid

    pids = {
        "router": start_router("router", ports["router"], ports["http"]),
        "proxy": proxy.pid,
        "classifier": classifier.pid,
    }
    path = "/v1/chat/completions"
    grpc_address = f"127.0.0.1:{ports['router']}"
    targets = [
        Target(f"{prefix}sy-forced", ports["http"], path, "frontier-mini", pids, KEY),
        Target(f"{prefix}sy-routed", ports["http"], path, "switchyard/auto", pids, KEY),
        Target(f"{prefix}sy-grpc-forced", 0, "", "frontier-mini", pids, KEY, grpc_address),
        Target(f"{prefix}sy-grpc-routed", 0, "", "switchyard/auto", pids, KEY, grpc_address),
    ]
    if in_process:  # a second router with the classifier's model in process (no classifier hop)
        port, http_port = free_port(), free_port()
        inproc = {
            "router": start_router(
                "router-inproc", port, http_port, SWITCHYARD_ROUTER_CLASSIFIER_IN_PROCESS="true"
            ),
            "proxy": proxy.pid,
        }
        address = f"127.0.0.1:{port}"
        targets.append(
            Target(f"{prefix}sy-grpc-inproc", 0, "", "switchyard/auto", inproc, KEY, address)
        )
    skip = {**config, "classifier": {**config["classifier"], "forced_targets": "skip"}}
    (work / "router-skip.yaml").write_text(yaml.safe_dump(skip))
    if colocated:  # the classifier's model and the proxy inside the router: one process
        port, http_port = free_port(), free_port()
        alone = {
            "router": start_router(
                "router-colocated",
                port,
                http_port,
                "router-skip.yaml",
                SWITCHYARD_ROUTER_CLASSIFIER_IN_PROCESS="true",
                SWITCHYARD_ROUTER_FRONTIER_PROXY_IN_PROCESS="frontier-proxy,proxy-as-local",
                SWITCHYARD_FRONTIER_PROXY_CATALOG=str(catalog),
                OPENAI_API_KEY=upstream["key"],
            )
        }
        address = f"127.0.0.1:{port}"
        targets += [
            Target(f"{prefix}sy-colocated", http_port, path, "switchyard/auto", alone, KEY),
            Target(f"{prefix}sy-grpc-colocated", 0, "", "switchyard/auto", alone, KEY, address),
            Target(f"{prefix}sy-colocated-forced", http_port, path, "frontier-mini", alone, KEY),
        ]
    if skip_forced:  # a third router that does not classify a forced target
        port, http_port = free_port(), free_port()
        skipping = {
            "router": start_router("router-skip", port, http_port, "router-skip.yaml"),
            "proxy": proxy.pid,
        }
        address = f"127.0.0.1:{port}"
        targets += [
            Target(f"{prefix}sy-forced-skip", http_port, path, "frontier-mini", skipping, KEY),
            Target(f"{prefix}sy-grpc-forced-skip", 0, "", "frontier-mini", skipping, KEY, address),
        ]
    return targets


# ---- the run ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace, targets: list[Target]) -> dict[str, Any]:
    modes = [m == "stream" for m in args.modes]
    for target in targets:  # warm-up: connections, caches, the classifier's first batches
        for stream in modes:
            await load(target, stream, 4, 1.0)
    rows: dict[tuple[str, bool, int], list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for stream in modes:
            for callers in args.concurrency:
                order = targets if r % 2 == 0 else list(reversed(targets))
                for target in order:
                    result = await load(target, stream, callers, args.seconds)
                    rows.setdefault((target.name, stream, callers), []).append(result)
                    print(
                        f"round {r + 1} {'stream' if stream else 'unary'} c={callers} "
                        f"{target.name}: p50 {result['p50_ms']:.2f} ms, cpu "
                        f"{result['cpu_ms']:.2f} ms/req, {result['rps']:.0f} req/s, "
                        f"{result['errors']} errors",
                        flush=True,
                    )
    return summarise(rows, args.rounds)


def summarise(
    rows: dict[tuple[str, bool, int], list[dict[str, Any]]], rounds: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (name, stream, callers), results in rows.items():
        direct = rows.get(("direct", stream, callers))
        added50 = added99 = float("nan")
        if direct is not None:
            added50 = statistics.median(
                x["p50_ms"] - d["p50_ms"] for x, d in zip(results, direct, strict=True)
            )
            added99 = statistics.median(
                x["p99_ms"] - d["p99_ms"] for x, d in zip(results, direct, strict=True)
            )
        split_keys = results[0]["cpu_split_ms"].keys()
        out[f"{name}|{'stream' if stream else 'unary'}|{callers}"] = {
            "system": name,
            "mode": "stream" if stream else "unary",
            "callers": callers,
            "p50_ms": statistics.median(x["p50_ms"] for x in results),
            "p99_ms": statistics.median(x["p99_ms"] for x in results),
            "added_p50_ms": added50,
            "added_p99_ms": added99,
            "cpu_ms": statistics.median(x["cpu_ms"] for x in results),
            "cpu_split_ms": {
                k: statistics.median(x["cpu_split_ms"][k] for x in results) for k in split_keys
            },
            "rps": statistics.median(x["rps"] for x in results),
            "errors": sum(x["errors"] for x in results),
            "rounds": rounds,
        }
    return out


def report(summary: dict[str, Any]) -> None:
    print(
        "\n| mode | callers | system | p50 ms | p99 ms | added p50 | added p99 | CPU ms/req "
        "| CPU split | req/s | errors |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for row in summary.values():
        split = ", ".join(f"{k} {v:.2f}" for k, v in row["cpu_split_ms"].items())
        print(
            f"| {row['mode']} | {row['callers']} | {row['system']} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['added_p50_ms']:.2f} | {row['added_p99_ms']:.2f} | "
            f"{row['cpu_ms']:.2f} | {split} | {row['rps']:.0f} | {row['errors']} |"
        )
    for mode in ("unary", "stream"):
        for callers in sorted({r["callers"] for r in summary.values()}):
            for kind in ("forced", "routed"):
                door = summary.get(f"sy-{kind}|{mode}|{callers}")
                rpc = summary.get(f"sy-grpc-{kind}|{mode}|{callers}")
                if door is not None and rpc is not None:
                    print(
                        f"{mode} c={callers} {kind}: router CPU via the HTTP door "
                        f"{door['cpu_split_ms']['router']:.2f} ms, via gRPC "
                        f"{rpc['cpu_split_ms']['router']:.2f} ms; added p50 "
                        f"{door['added_p50_ms']:.2f} vs {rpc['added_p50_ms']:.2f} ms"
                    )
            lite = summary.get(f"litellm|{mode}|{callers}")
            for name in ("sy-forced-skip", "sy-grpc-forced-skip", "sy-colocated-forced"):
                skipping = summary.get(f"{name}|{mode}|{callers}")
                if lite is not None and skipping is not None:
                    print(
                        f"{mode} c={callers}: {name} added p50 {skipping['added_p50_ms']:.2f} ms"
                        f" = {skipping['added_p50_ms'] / lite['added_p50_ms']:.2f}x LiteLLM's "
                        f"(floor <= 0.33x), CPU {skipping['cpu_ms']:.2f} ms"
                    )
            forced = summary.get(f"sy-forced|{mode}|{callers}")
            routed = summary.get(f"sy-routed|{mode}|{callers}")
            if lite is None or forced is None or routed is None:
                continue
            print(
                f"{mode} c={callers}: forced added p50 {forced['added_p50_ms']:.2f} ms = "
                f"{forced['added_p50_ms'] / lite['added_p50_ms']:.2f}x LiteLLM's "
                f"(floor <= 0.33x); routed CPU {routed['cpu_ms']:.2f} ms = "
                f"{routed['cpu_ms'] / lite['cpu_ms']:.2f}x LiteLLM's (floor <= 0.5x); "
                f"req/s routed / LiteLLM {routed['rps'] / lite['rps']:.2f}x"
            )
    report_hops(summary)


def report_hops(summary: dict[str, Any]) -> None:
    """Issue 17's floors for every Switchyard row (the classifier deciding), and each row
    against the same row of the `before` tree when one ran."""
    floors = {"unary": (1.0, 1.0), "stream": (2.0, None)}  # router, proxy ms per request
    for key, row in summary.items():
        name, mode, callers = row["system"], row["mode"], row["callers"]
        lite = summary.get(f"litellm|{mode}|{callers}")
        if "sy-" not in name:
            continue
        split = row["cpu_split_ms"]
        router_floor, proxy_floor = floors[mode]
        parts = [f"router {split['router']:.2f} ms (floor <= {router_floor})"]
        if "colocated" in name:
            parts[0] = f"router with the model and the proxy in it {split['router']:.2f} ms"
        if proxy_floor is not None and "proxy" in split:
            parts.append(f"proxy {split['proxy']:.2f} ms (floor <= {proxy_floor})")
        if name.endswith("inproc"):
            remote = summary.get(f"sy-grpc-routed|{mode}|{callers}")
            if remote is not None:
                parts.append(
                    f"vs the classifier service (sy-grpc-routed): CPU "
                    f"{row['cpu_ms'] / remote['cpu_ms']:.2f}x, added p50 "
                    f"{row['added_p50_ms']:.2f} vs {remote['added_p50_ms']:.2f} ms"
                )
        if lite is not None and name.endswith(("routed", "inproc", "colocated")):
            parts.append(f"CPU {row['cpu_ms'] / lite['cpu_ms']:.2f}x LiteLLM's (floor <= 0.5x)")
            if callers >= 50:
                parts.append(f"req/s {row['rps'] / lite['rps']:.2f}x LiteLLM's (floor >= 3x)")
        before = summary.get(f"before:{key}")
        if before is not None:
            ratios = ", ".join(
                f"{proc} {split[proc] / before['cpu_split_ms'][proc]:.2f}x"
                for proc in split
                if before["cpu_split_ms"].get(proc)
            )
            parts.append(
                f"vs before: CPU {row['cpu_ms'] / before['cpu_ms']:.2f}x ({ratios}), "
                f"added p50 {row['added_p50_ms']:.2f} vs {before['added_p50_ms']:.2f} ms, "
                f"req/s {row['rps'] / before['rps']:.2f}x"
            )
        print(f"{mode} c={callers} {name}: " + "; ".join(parts))


async def profile(args: argparse.Namespace, targets: list[Target], summary: dict[str, Any]) -> None:
    """`--profile-load SYSTEM:MODE:CALLERS`: load that system for `--profile-seconds` while
    py-spy samples its processes; print each process's CPU by component (hop_profile.py), in
    ms per request from the benchmark's own row, or from a run of the same load without py-spy
    just before (py-spy's pauses do not inflate it)."""
    by_name = {t.name: t for t in targets}
    results: dict[str, dict[str, Any]] = {}
    for spec in args.profile_load:
        name, mode, callers = spec.rsplit(":", 2)
        target = by_name.get(name)
        if target is None or not target.pids:
            print(f"profile {spec}: no such Switchyard system in this run", flush=True)
            continue
        directory = args.profile / spec.replace(":", "_")
        # first without py-spy: CPU per request by thread, then sampled
        threads_before = {p: hop_profile.thread_cpu(pid) for p, pid in target.pids.items()}
        plain = await load(target, mode == "stream", int(callers), args.profile_seconds)
        threads = {
            p: {
                name: (cpu - threads_before[p].get(name, 0.0)) * 1000 / max(1, plain["requests"])
                for name, cpu in hop_profile.thread_cpu(pid).items()
            }
            for p, pid in target.pids.items()
        }
        recorders = hop_profile.record(target.pids, args.profile_seconds, directory)
        await asyncio.sleep(1.0)  # py-spy attaches
        await load(target, mode == "stream", int(callers), args.profile_seconds)
        for recorder in recorders.values():
            await asyncio.to_thread(recorder.wait)
        for proc, by_thread in threads.items():
            busy = ", ".join(
                f"{n} {ms:.2f}"
                for n, ms in sorted(by_thread.items(), key=lambda x: -x[1])
                if ms >= 0.01
            )
            print(f"profile {spec} {proc}: CPU ms per request by thread: {busy}", flush=True)
        row = summary.get(f"{name}|{mode}|{callers}")
        cpu = (row or plain)["cpu_split_ms"]  # never the sampled run's: py-spy pauses it
        results[spec] = {}
        for proc in target.pids:
            shares, samples = hop_profile.summarise(directory / f"{proc}.txt")
            results[spec][proc] = {
                "samples": samples,
                "cpu_ms": cpu[proc],
                "shares": shares,
                "threads_ms": threads[proc],
            }
    hop_profile.report(results)
    (args.profile / "profile.json").write_text(json.dumps(results, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-upstream", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument(
        "--modes", nargs="+", default=["unary", "stream"], choices=["unary", "stream"]
    )
    parser.add_argument(
        "--systems", nargs="+", default=["direct", "litellm", "sy-forced", "sy-routed"]
    )
    parser.add_argument("--litellm-venv", type=Path, default=Path("/work/cache/litellm-venv"))
    parser.add_argument("--install-litellm", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--before",
        type=Path,
        help="an older checkout of this repository (a worktree of the commit to compare with): "
        "each sy-* system also runs on a second stack from its services, as before:sy-...",
    )
    parser.add_argument(
        "--before-env",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="with --before: variables set for the before: stack's routers",
    )
    parser.add_argument("--profile", type=Path, help="write py-spy profiles into this folder")
    parser.add_argument(
        "--profile-load",
        nargs="+",
        default=[],
        metavar="SYSTEM:MODE:CALLERS",
        help="what to profile after the rounds, e.g. sy-grpc-routed:unary:50",
    )
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    args = parser.parse_args()
    if any("=" not in kv for kv in args.before_env):
        parser.error("--before-env takes NAME=VALUE")
    if args.before_env and args.before is None:
        parser.error("--before-env needs --before")
    if args.serve_upstream is not None:
        serve_upstream(args.serve_upstream)
        return 0
    if args.install_litellm:
        install_litellm(args.litellm_venv)
    with tempfile.TemporaryDirectory(prefix="bench-front-door-") as tmp:
        procs = Processes(Path(tmp))
        try:
            port_file = Path(tmp) / "upstream.json"
            procs.start(
                "upstream",
                [sys.executable, __file__, "--serve-upstream", str(port_file)],
                clean_env(),
            )
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("the upstream did not start")
                time.sleep(0.1)
            upstream = json.loads(port_file.read_text())
            base = upstream["base_url"].rstrip("/")
            host_port = base.split("//", 1)[1].split("/", 1)
            targets: list[Target] = [
                Target(
                    "direct",
                    int(host_port[0].rsplit(":", 1)[1]),
                    "/" + (host_port[1] + "/" if len(host_port) > 1 else "") + "chat/completions",
                    MODEL,
                    auth=upstream["key"],
                )
            ]
            if "litellm" in args.systems:
                lite = start_litellm(procs, args.litellm_venv, upstream)
                if lite is not None:
                    targets.append(lite)
            if any(name.startswith("sy-") for name in args.systems):
                inproc = "sy-grpc-inproc" in args.systems
                skip = any(name.endswith("forced-skip") for name in args.systems)
                colocated = any("colocated" in name for name in args.systems)
                targets += [
                    t
                    for t in start_switchyard(
                        procs, upstream, in_process=inproc, skip_forced=skip, colocated=colocated
                    )
                    if t.name in args.systems
                ]
                if args.before is not None:
                    targets += [
                        t
                        for t in start_switchyard(
                            procs,
                            upstream,
                            tree=args.before.resolve(),
                            prefix="before:",
                            router_env=dict(kv.split("=", 1) for kv in args.before_env),
                        )
                        if t.name.removeprefix("before:") in args.systems
                    ]
            print(
                f"systems: {[t.name for t in targets]}; load average "
                f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
                flush=True,
            )
            summary = asyncio.run(run(args, targets))
            if args.profile is not None and args.profile_load:
                asyncio.run(profile(args, targets, summary))
        finally:
            procs.stop()
    report(summary)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
