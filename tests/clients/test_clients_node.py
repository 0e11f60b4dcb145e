"""The Node client (clients/node) against the live stack: its own test file (node's test
runner) and its example, run as subprocesses; its trace context must reach the router."""

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
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]

NODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"


@pytest.fixture(scope="module", autouse=True)
def node_modules() -> None:
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("clients/node/node_modules is missing: run scripts/setup.d/40-clients.sh")


def _env(stack: SwitchyardStack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env.update(
        SWITCHYARD_ROUTER_ADDRESS=stack.router_address,
        SWITCHYARD_ADDRESS=stack.router_address,
        SWITCHYARD_API_KEY=API_KEY,
        SWITCHYARD_MAX_TOKENS="8",
        **extra,
    )
    return env


def test_node_client_tests_pass_against_the_live_router(switchyard_stack: SwitchyardStack) -> None:
    trace_id = secrets.token_hex(16)
    otel_trace_id = secrets.token_hex(16)
    parent = secrets.token_hex(8)
    result = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "test/"],
        cwd=NODE_DIR,
        env=_env(
            switchyard_stack,
            SWITCHYARD_TEST_TRACEPARENT=f"00-{trace_id}-{parent}-01",
            SWITCHYARD_TEST_OTEL_TRACE_ID=otel_trace_id,
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    counts = {
        k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", out, re.M)
    }
    assert counts["fail"] == 0 and counts["cancelled"] == 0, out[-4000:]
    assert counts["skipped"] == 0, out[-4000:]  # every live test ran
    assert counts["pass"] >= 10, counts
    # The caller's trace continued into the router (traceparent metadata and an OTel context).
    router_spans = switchyard_stack.receiver.wait_for(trace_id, "router")
    assert router_spans, "no router span joined the traceparent the Node client sent"
    assert any(p == parent for _, _, p in router_spans)
    assert switchyard_stack.receiver.wait_for(otel_trace_id, "router"), (
        "no router span joined the OpenTelemetry context the Node client was given"
    )


def test_node_example_runs_ask_stream_route_and_cost_report(
    switchyard_stack: SwitchyardStack,
) -> None:
    trace_id = secrets.token_hex(16)
    result = subprocess.run(
        ["node", "examples/basic.js"],
        cwd=NODE_DIR,
        env=_env(switchyard_stack, TRACEPARENT=f"00-{trace_id}-{secrets.token_hex(8)}-01"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for prefix in ("ask: [", "stream: ", "route: ", "cost report "):
        assert any(line.startswith(prefix) for line in lines), (prefix, result.stdout)
    assert re.search(r"hop HOP_KIND_GENERATE \S+ OK", result.stdout), result.stdout
    assert switchyard_stack.receiver.wait_for(trace_id, "router")
