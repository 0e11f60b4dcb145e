"""The Go client (clients/go, GOPATH mode) against the live stack: generated code up to date,
`go vet`, its `go test` and its example, run as subprocesses."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from clients_stack import API_KEY, SwitchyardStack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed"),
]

GO_DIR = Path(__file__).resolve().parents[2] / "clients" / "go"


def _env(tmp_path_factory: pytest.TempPathFactory | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHYARD_", "GO"))}
    env.update(GO111MODULE="off", GOPATH=f"{GO_DIR}:/usr/share/gocode", GOFLAGS="-mod=")
    env.setdefault("GOCACHE", str(Path(os.environ.get("HOME", "/tmp")) / ".cache" / "go-build"))
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=GO_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_generated_go_code_matches_the_protos() -> None:
    result = _run([str(GO_DIR / "generate.sh"), "--check"], _env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_go_vet() -> None:
    result = _run(["go", "vet", "switchyard/..."], _env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_go_client_tests_pass_against_the_live_router(switchyard_stack: SwitchyardStack) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    env = _env(
        SWITCHYARD_ROUTER_ADDRESS=switchyard_stack.router_address,
        SWITCHYARD_API_KEY=API_KEY,
        SWITCHYARD_MAX_TOKENS="8",
        SWITCHYARD_TEST_TRACEPARENT=f"00-{trace_id}-{parent}-01",
    )
    result = _run(["go", "test", "-v", "-count=1", "switchyard/client"], env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "--- SKIP" not in out, out[-4000:]
    passed = re.findall(r"--- PASS: (\S+)", out)
    assert "TestLiveRouter/Complete" in passed and "TestLiveRouter/CostReport" in passed, out
    assert len(passed) >= 10, passed
    spans = switchyard_stack.receiver.wait_for(trace_id, "router")
    assert spans and any(p == parent for _, _, p in spans), "the Go client's trace did not continue"


def test_go_example_runs_ask_stream_route_and_cost_report(
    switchyard_stack: SwitchyardStack, tmp_path: Path
) -> None:
    env = _env(
        SWITCHYARD_ADDRESS=switchyard_stack.router_address,
        SWITCHYARD_API_KEY=API_KEY,
        SWITCHYARD_MAX_TOKENS="8",
    )
    binary = tmp_path / "switchyard-example"
    built = _run(["go", "build", "-o", str(binary), "switchyard/cmd/switchyard-example"], env)
    assert built.returncode == 0, built.stderr
    result = _run([str(binary)], env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for prefix in ("ask: [", "stream: ", "route: ", "cost report: "):
        assert any(line.startswith(prefix) for line in result.stdout.splitlines()), result.stdout
    assert re.search(r"hop HOP_KIND_GENERATE \S+ OK", result.stdout), result.stdout
