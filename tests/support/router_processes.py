"""The router as its own process, against an instant classifier and backend in another: what
the router's fault tests (kill -9, ledger outages) and `scripts/bench_router.py` run.

- `python tests/support/router_processes.py PORT_FILE` serves an instant classifier and an
  instant inference backend (real gRPC servers speaking the real contract, answering at once)
  on one port, writes that port to PORT_FILE and serves until SIGTERM.
- `Fakes.start(directory)` runs that process; `RouterProcess` runs `switchyard-router` with a
  configuration pointing at it, waits for SERVING, and stops it with SIGTERM or SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import yaml

from switchyard.api.classifier.v1 import classifier_pb2, classifier_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc

__all__ = ["Fakes", "RouterProcess", "router_config", "wait_serving"]


class InstantClassifier(classifier_pb2_grpc.ClassifierServiceServicer):
    async def Classify(self, request, context):  # noqa: N802
        return classifier_pb2.ClassifyResponse(
            classification=classifier_pb2.Classification(
                task_type=classifier_pb2.TASK_TYPE_CHAT,
                complexity_score=0.2,
                escalation_probability=0.1,
                model_version="instant",
            ),
            cost_usd=1e-7,
        )


class InstantBackend(inference_pb2_grpc.InferenceServiceServicer):
    """Answers "ok" at once; asked as the router's judge (docs/services/outcomes.md), a tie."""

    async def Generate(self, request, context):  # noqa: N802
        judging = any("impartial judge" in m.content for m in request.messages[:1])
        return inference_pb2.GenerateResponse(
            model=request.model or "fast",
            text="VERDICT: TIE" if judging else "ok",
            finish_reason=inference_pb2.FINISH_REASON_STOP,
            usage=inference_pb2.Usage(input_tokens=10, output_tokens=2, cost_usd=1e-6),
            provider="instant",
        )


async def _serve(port_file: Path) -> None:
    server = grpc.aio.server()
    classifier_pb2_grpc.add_ClassifierServiceServicer_to_server(InstantClassifier(), server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(InstantBackend(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))  # noqa: ASYNC240 - once, at start
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


def _stop(process: subprocess.Popen[Any] | None, *, timeout_s: float = 15) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Fakes:
    """The instant classifier + backend process."""

    process: subprocess.Popen[bytes]
    address: str

    @classmethod
    def start(cls, directory: Path) -> Fakes:
        port_file = directory / "fakes.port"
        process = subprocess.Popen([sys.executable, __file__, str(port_file)])
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError("the instant classifier/backend process did not start")
            time.sleep(0.05)
        return cls(process, f"127.0.0.1:{port_file.read_text()}")

    def stop(self) -> None:
        _stop(self.process)


def router_config(fakes: str, ledger_url: str) -> dict[str, Any]:
    """A router configuration: both backends and the classifier are the instant fakes."""
    return {
        "classifier": {"address": fakes, "timeout_ms": 1000},
        "backends": {
            "local-inference": {"address": fakes, "kind": "LOCAL"},
            "frontier-proxy": {"address": fakes, "kind": "FRONTIER"},
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
        "ledger": {"url": ledger_url},
    }


def wait_serving(address: str, timeout_s: float = 60) -> None:
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
        time.sleep(0.1)
    raise RuntimeError(f"router at {address} not serving after {timeout_s} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RouterProcess:
    """`switchyard-router` in its own process; `env` adds SWITCHYARD_ROUTER_* settings (None:
    leave that one unset, for an older tree that does not know it). With `pinned_clock` the
    router's clock starts at that instant (`pinned_clock_router.py`): records, budget days and
    report windows are dated from it, whatever the wall clock says."""

    directory: Path
    config: dict[str, Any]
    env: dict[str, str | None] = field(default_factory=dict)
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    pinned_clock: datetime | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 60) -> RouterProcess:
        config = self.directory / "router.yaml"
        config.write_text(yaml.safe_dump(self.config))
        settings = {
            **os.environ,
            "SWITCHYARD_ROUTER_CONFIG": str(config),
            "SWITCHYARD_ROUTER_HOST": "127.0.0.1",
            "SWITCHYARD_ROUTER_PORT": str(self.port),
            "SWITCHYARD_ROUTER_LOG_LEVEL": "WARNING",
            "SWITCHYARD_ROUTER_HTTP_ENABLED": "false",  # gRPC only: no port 8080 clashes
            **self.env,
        }
        env = {name: value for name, value in settings.items() if value is not None}
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.log = self.directory / f"router-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self._command(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_serving(self.address, timeout_s)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"the router did not start:\n{self.log_text()[-4000:]}") from None
        return self

    def _command(self) -> list[str]:
        if self.pinned_clock is None:
            return [str(Path(sys.executable).parent / "switchyard-router")]
        launcher = Path(__file__).with_name("pinned_clock_router.py")
        return [sys.executable, str(launcher), self.pinned_clock.isoformat()]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def terminate(self) -> None:
        """SIGTERM (the process then stops gracefully, or is killed by the caller)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        _stop(self.process)


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
