"""The Python client installs and works without the services.

switchyard-api and switchyard-client[cli] go into a clean virtual environment (pip resolves
their declared dependencies as a user's `pip install` would); the test lists what is there
(nothing of switchyard-runtime, the OpenTelemetry SDK, structlog or pydantic-settings), then
calls, from that environment, a RouterService this test serves: with the library and with the
`switchyard` command. `switchyard up` there says how to get the services.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from deploy_images import ROOT, installed_distributions

from switchyard.api.router.v1 import router_pb2, router_pb2_grpc

KEY = "sy-client-install-key"
# The services' side of the dependency tree; none of it may come with the client.
SERVICE_SIDE = {
    "switchyard-runtime",
    "switchyard-router",
    "switchyard-classifier",
    "switchyard-frontier-proxy",
    "switchyard-local-inference",
    "switchyard-suite",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-grpc",
    "structlog",
    "pydantic-settings",
    "pydantic",
    "onnxruntime",
    "psycopg",
    "httpx",
}


class AnsweringRouter(router_pb2_grpc.RouterServiceServicer):
    """RouterService at the gRPC seam: routes everything to `local-general` and echoes the
    last message upper-cased; refuses calls without the test's key."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def _check(self, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        self.keys.append(str(metadata.get("authorization", "")))
        if metadata.get("authorization") != f"Bearer {KEY}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")

    @staticmethod
    def _decision() -> router_pb2.RoutingDecision:
        return router_pb2.RoutingDecision(
            target="local-general",
            target_kind=router_pb2.TARGET_KIND_LOCAL,
            model="SmolLM2-135M-Instruct",
            reason=router_pb2.DECISION_REASON_BELOW_THRESHOLD,
            escalation_score=0.125,
            escalation_threshold=0.5,
        )

    def Route(self, request: Any, context: grpc.ServicerContext) -> router_pb2.RouteResponse:
        self._check(context)
        return router_pb2.RouteResponse(decision=self._decision())

    def Complete(self, request: Any, context: grpc.ServicerContext) -> router_pb2.CompleteResponse:
        self._check(context)
        return router_pb2.CompleteResponse(
            request_id="req-1", text=request.messages[-1].content.upper(), decision=self._decision()
        )


@pytest.fixture(scope="module")
def router() -> Iterator[tuple[str, AnsweringRouter]]:
    servicer = AnsweringRouter()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    router_pb2_grpc.add_RouterServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(None)


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("client") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    install = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            str(ROOT / "services" / "api"),
            f"{ROOT / 'clients' / 'python'}[cli]",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return venv


def _run(venv: Path, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "SWITCHYARD"))}
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**env, **kwargs.pop("env", {})},
        cwd=venv.parent,  # not the checkout: nothing importable from the working directory
        timeout=120,
        **kwargs,
    )


@pytest.mark.slow
def test_the_client_installs_without_the_services(client_venv: Path) -> None:
    installed = installed_distributions(client_venv)
    assert {"switchyard-api", "switchyard-client", "grpcio", "protobuf"} <= installed
    assert "opentelemetry-api" in installed  # to pass the caller's trace context on
    assert not installed & SERVICE_SIDE, installed & SERVICE_SIDE
    check = _run(client_venv, str(client_venv / "bin" / "python"), "-m", "pip", "check")
    assert check.returncode == 0, check.stdout


@pytest.mark.slow
def test_the_client_calls_a_router_from_its_own_environment(client_venv: Path, router) -> None:
    address, servicer = router
    program = (
        "import json, sys\n"
        "from switchyard_client import SwitchyardClient\n"
        "with SwitchyardClient(sys.argv[1], api_key=sys.argv[2], timeout=10) as client:\n"
        "    reply = client.complete('route me')\n"
        "print(json.dumps({'text': reply.text, 'target': reply.decision.target}))\n"
    )
    result = _run(client_venv, str(client_venv / "bin" / "python"), "-c", program, address, KEY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == {"text": "ROUTE ME", "target": "local-general"}
    assert servicer.keys[-1] == f"Bearer {KEY}"


@pytest.mark.slow
def test_the_switchyard_command_works_there(client_venv: Path, router) -> None:
    address, _ = router
    switchyard = str(client_venv / "bin" / "switchyard")
    help_text = _run(client_venv, switchyard, "--help")
    assert help_text.returncode == 0, help_text.stderr
    for command in ("up", "ask", "route", "costs", "hash-key"):
        assert command in help_text.stdout

    routed = _run(
        client_venv,
        switchyard,
        "route",
        "what is 2+2?",
        "--json",
        "--address",
        address,
        env={"SWITCHYARD_API_KEY": KEY},
    )
    assert routed.returncode == 0, routed.stderr
    record = json.loads(routed.stdout)
    assert (record["target"], record["kind"], record["reason"]) == (
        "local-general",
        "LOCAL",
        "BELOW_THRESHOLD",
    )
    refused = _run(client_venv, switchyard, "route", "hi", "--address", address)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr

    up = _run(client_venv, switchyard, "up")
    assert up.returncode == 1
    assert "not installed here" in up.stderr and "services/suite" in up.stderr
    assert "Traceback" not in up.stderr
