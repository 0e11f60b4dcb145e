"""The live Switchyard the client tests call: real service processes on free loopback ports.

`SwitchyardStack.start()` starts, each as its own console script and process group:
- an OTLP/gRPC trace receiver (in this process; real exporters send to it),
- the frontier stand-in (`tests/support/frontier_standin.py`, the OpenAI wire format; the only
  stand-in: frontier APIs cannot be reached from tests),
- `switchyard-frontier-proxy` with a catalog pointing at the stand-in,
- `switchyard-local-inference`: vLLM's real engine (CPU build) on SmolLM2-135M-Instruct,
- `switchyard-classifier`: the real ONNX classifier,
- `switchyard-router` with a configuration naming those, tenants with API keys (one of them,
  `shadowed`, has every answered request shadow-evaluated, judged by the stand-in acting as a
  judge model), and a SQLite ledger,
waits until each answers SERVING on the gRPC health protocol, and `stop()` ends them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

__all__ = [
    "API_KEY",
    "BROKE_API_KEY",
    "JUDGE_MODEL",
    "SHADOWED_API_KEY",
    "OtlpReceiver",
    "ServiceProcess",
    "SwitchyardStack",
    "free_port",
]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
API_KEY = "sy-test-clients-key-0123456789"
#: A tenant whose daily hard budget is $0: every request is refused as over budget.
BROKE_API_KEY = "sy-test-clients-broke-key-0123456789"
FRONTIER_MODEL = "gpt-4o-mini"
#: A tenant whose every answered request is shadow-evaluated (docs/services/outcomes.md).
SHADOWED_API_KEY = "sy-test-clients-shadowed-key-0123456789"
#: The judge: the stand-in answers requests for this model as a pairwise judge.
JUDGE_MODEL = "gpt-judge"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _MetricsSink(metrics_service_pb2_grpc.MetricsServiceServicer):
    """Accepts the services' metric exports (the tests read spans only)."""

    def Export(self, request, context):  # noqa: N802 - the gRPC method's name
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects the spans real OTLP exporters send; `spans(trace_id)` finds them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[tuple[str, str, bytes, bytes]] = []  # service, name, trace, parent
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsSink(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def Export(self, request, context):  # noqa: N802 - the gRPC method's name
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self._spans.append((service, span.name, span.trace_id, span.parent_span_id))
        return trace_service_pb2.ExportTraceServiceResponse()

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(None)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self, trace_id_hex: str) -> list[tuple[str, str, str]]:
        """(service, span name, parent span id hex) of every span of the trace."""
        wanted = bytes.fromhex(trace_id_hex)
        with self._lock:
            return [(s, n, p.hex()) for s, n, t, p in self._spans if t == wanted]

    def wait_for(self, trace_id_hex: str, service: str, timeout_s: float = 30.0):
        """Spans of `service` (its name with or without the `switchyard-` prefix) in the trace,
        waiting for the exporters' next batch."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [
                s for s in self.spans(trace_id_hex) if s[0] in {service, f"switchyard-{service}"}
            ]
            if found:
                return found
            time.sleep(0.2)
        return []


@dataclass
class ServiceProcess:
    """One service's process: started in its own process group, its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def wait_serving(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                time.sleep(0.25)
        raise RuntimeError(f"{self.name} not SERVING after {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            # The whole group: vLLM's engine core runs in a child process.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class SwitchyardStack:
    workdir: Path
    receiver: OtlpReceiver = field(default_factory=OtlpReceiver)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    #: The router's OpenAI-compatible HTTP door (`http_url`).
    http_port: int = 0
    #: The frontier stand-in's URL (its `/_standin/...` control routes).
    standin_url: str = ""
    _standin: subprocess.Popen[str] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def router_address(self) -> str:
        return self.services["router"].address

    def address(self, service: str) -> str:
        return self.services[service].address

    def standin(self, method: str, path: str, body: object = None) -> object:
        """Call one of the frontier stand-in's control routes (`/_standin/judge`, ...)."""
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.standin_url}/_standin/{path}", data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SWITCHYARD_", "OTEL_", "OPENAI_", "ANTHROPIC_"))
        }
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=self.receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="200",
            OTEL_METRICS_EXPORTER="none",
            HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def _start_standin(self) -> dict[str, str]:
        with (self.workdir / "standin.log").open("wb") as log:
            self._standin = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "support" / "frontier_standin.py")],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        assert self._standin.stdout is not None
        line = self._standin.stdout.readline()
        if not line:
            raise RuntimeError("the frontier stand-in did not start")
        return json.loads(line)

    def _service(self, name: str, script: str, prefix: str, extra: dict[str, str]) -> None:
        port = free_port()
        env = self._env({f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(port), **extra})
        process = ServiceProcess(
            name=name,
            argv=[str(BIN / script)],
            env=env,
            port=port,
            log_path=self.workdir / f"{name}.log",
        )
        self.services[name] = process
        process.start()

    def start(self) -> None:
        self.receiver.start()
        standin = self._start_standin()
        self.standin_url = standin["url"]
        self.standin("POST", "judge", {"model": JUDGE_MODEL, "prefer": "frontier"})
        catalog = self.workdir / "catalog.yaml"
        models = [
            {
                "name": name,
                "provider": "openai",
                "base_url": standin["openai_base_url"],
                "api_key_env": "OPENAI_API_KEY",
                "price_lookup": {"provider_id": "openai", "model": FRONTIER_MODEL},
            }
            for name in (FRONTIER_MODEL, JUDGE_MODEL)
        ]
        catalog.write_text(yaml.safe_dump({"models": models}))
        # Heavy ones first, so they load while the others start.
        self._service(
            "local-inference",
            "switchyard-local-inference",
            "SWITCHYARD_LOCAL_INFERENCE_",
            {
                "SWITCHYARD_LOCAL_INFERENCE_MAX_MODEL_LEN": "1024",
                "SWITCHYARD_LOCAL_INFERENCE_CPU_KV_CACHE_GIB": "1",
                "SWITCHYARD_LOCAL_INFERENCE_USD_PER_HOUR": "0.10",
            },
        )
        self._service("classifier", "switchyard-classifier", "SWITCHYARD_CLASSIFIER_", {})
        self._service(
            "frontier-proxy",
            "switchyard-frontier-proxy",
            "SWITCHYARD_FRONTIER_PROXY_",
            {
                "SWITCHYARD_FRONTIER_PROXY_CATALOG": str(catalog),
                "OPENAI_API_KEY": standin["openai_key"],
            },
        )
        for name in ("classifier", "frontier-proxy"):
            self.services[name].wait_serving(180)
        self.services["local-inference"].wait_serving(600)

        config = self.workdir / "router.yaml"
        config.write_text(yaml.safe_dump(self.router_config()))
        self.http_port = free_port()
        self._service(
            "router",
            "switchyard-router",
            "SWITCHYARD_ROUTER_",
            {
                "SWITCHYARD_ROUTER_CONFIG": str(config),
                "SWITCHYARD_ROUTER_HTTP_HOST": "127.0.0.1",
                "SWITCHYARD_ROUTER_HTTP_PORT": str(self.http_port),
            },
        )
        self.services["router"].wait_serving(120)

    def router_config(self) -> dict:
        return {
            "classifier": {"address": self.address("classifier"), "timeout_ms": 5000},
            "backends": {
                "local-inference": {"address": self.address("local-inference"), "kind": "LOCAL"},
                "frontier-proxy": {"address": self.address("frontier-proxy"), "kind": "FRONTIER"},
            },
            "targets": {
                "local-general": {"backend": "local-inference"},
                "frontier-mini": {
                    "backend": "frontier-proxy",
                    "model": FRONTIER_MODEL,
                    "pricing": {
                        "input_usd_per_million_tokens": 0.15,
                        "output_usd_per_million_tokens": 0.60,
                    },
                },
                "frontier-judge": {"backend": "frontier-proxy", "model": JUDGE_MODEL},
            },
            "routing": {
                "escalation_threshold": 0.5,
                "local_target": "local-general",
                "frontier_target": "frontier-mini",
                "default_target": "local-general",
                "fallbacks": {"local-general": ["frontier-mini"]},
            },
            "tenants": {
                "clients": {"api_key_sha256": [hashlib.sha256(API_KEY.encode()).hexdigest()]},
                "broke": {
                    "api_key_sha256": [hashlib.sha256(BROKE_API_KEY.encode()).hexdigest()],
                    "budget": {"daily_hard_usd": 0},
                },
                "shadowed": {
                    "api_key_sha256": [hashlib.sha256(SHADOWED_API_KEY.encode()).hexdigest()]
                },
            },
            "evaluation": {
                "judge_target": "frontier-judge",
                "tenants": {"shadowed": {"share": 1.0, "store_prompts": True}},
                "daily_budget_usd": 1.0,
            },
            "ledger": {"url": f"sqlite://{self.workdir / 'ledger.db'}"},
        }

    def stop(self) -> None:
        for name in ("router", "classifier", "frontier-proxy", "local-inference"):
            if name in self.services:
                self.services[name].stop()
        if self._standin is not None and self._standin.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._standin.pid, signal.SIGTERM)
            self._standin.wait(timeout=10)
        if self._standin is not None and self._standin.stdout is not None:
            self._standin.stdout.close()
        self.receiver.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[SwitchyardStack]:
        try:
            self.start()
            yield self
        finally:
            self.stop()
