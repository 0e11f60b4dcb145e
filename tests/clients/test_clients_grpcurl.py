"""grpcurl against every service through server reflection: the calls docs/grpcurl.md shows
(list, describe, and one call per service), run against the live stack.

grpcurl prints responses with the proto field names (`request_id`), and reads requests in
either form (`maxTokens` or `max_tokens`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clients_stack import API_KEY, FRONTIER_MODEL, SwitchyardStack

pytestmark = pytest.mark.slow

GRPCURL = Path(sys.executable).parent / "grpcurl"
SERVICES = {
    "router": [
        "switchyard.router.v1.RouterService",
        "switchyard.router.v1.OutcomeService",
        "switchyard.cost.v1.CostService",
    ],
    "classifier": ["switchyard.classifier.v1.ClassifierService"],
    "local-inference": ["switchyard.inference.v1.InferenceService"],
    "frontier-proxy": ["switchyard.inference.v1.InferenceService"],
}

# One request message per service, and a field its description must show.
MESSAGES = {
    "router": ("switchyard.router.v1.CompleteRequest", "RoutingOptions routing = 3;"),
    "classifier": ("switchyard.classifier.v1.ClassifyRequest", "string prompt = 1;"),
    "local-inference": ("switchyard.inference.v1.ChatMessage", "string content = 2;"),
    "frontier-proxy": ("switchyard.inference.v1.ChatMessage", "string content = 2;"),
}


def grpcurl(*args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRPCURL), "-plaintext", "-max-time", str(timeout - 5), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _call(address: str, method: str, body: dict, *headers: str) -> dict:
    flags = [f for h in headers for f in ("-H", h)]
    result = grpcurl(*flags, "-d", json.dumps(body), address, method)
    assert result.returncode == 0, f"{method}: {result.stderr}"
    return json.loads(result.stdout)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_list_and_describe_through_reflection(
    switchyard_stack: SwitchyardStack, service: str
) -> None:
    address = switchyard_stack.address(service)
    listed = grpcurl(address, "list")
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    assert set(SERVICES[service]) | {"grpc.health.v1.Health"} <= names, names
    for name in SERVICES[service]:
        described = grpcurl(address, "describe", name)
        assert described.returncode == 0, described.stderr
        assert f"service {name.rsplit('.', 1)[1]} {{" in described.stdout
    name, field = MESSAGES[service]
    message = grpcurl(address, "describe", name)
    assert message.returncode == 0 and field in message.stdout, message.stderr
    health = _call(address, "grpc.health.v1.Health/Check", {})
    assert health == {"status": "SERVING"}


def test_router_calls(switchyard_stack: SwitchyardStack) -> None:
    address, auth = switchyard_stack.router_address, f"authorization: Bearer {API_KEY}"
    body = {
        "messages": [{"role": "ROLE_USER", "content": "What is 2 + 2?"}],
        "parameters": {"maxTokens": 8, "temperature": 0},
    }
    routed = _call(address, "switchyard.router.v1.RouterService/Route", body, auth)
    assert routed["decision"]["target"] in {"local-general", "frontier-mini"}
    completed = _call(address, "switchyard.router.v1.RouterService/Complete", body, auth)
    assert completed["text"] and completed["request_id"]
    assert int(completed["usage"]["output_tokens"]) <= 8
    report = _call(
        address,
        "switchyard.cost.v1.CostService/GetCostReport",
        {"groupBy": "COST_GROUPING_TARGET"},
        auth,
    )
    assert int(report["total"]["requests"]) >= 1
    refused = grpcurl("-d", json.dumps(body), address, "switchyard.router.v1.RouterService/Route")
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr, refused.stderr


def test_classifier_call(switchyard_stack: SwitchyardStack) -> None:
    reply = _call(
        switchyard_stack.address("classifier"),
        "switchyard.classifier.v1.ClassifierService/Classify",
        {"prompt": "Prove that the square root of 2 is irrational."},
    )
    classification = reply["classification"]
    assert classification["task_type"].startswith("TASK_TYPE_")
    assert 0 <= classification.get("escalation_probability", 0) <= 1


@pytest.mark.parametrize("backend", ["local-inference", "frontier-proxy"])
def test_inference_calls(switchyard_stack: SwitchyardStack, backend: str) -> None:
    address = switchyard_stack.address(backend)
    models = _call(address, "switchyard.inference.v1.InferenceService/ListModels", {})
    names = [m["name"] for m in models["models"]]
    assert names, models
    if backend == "frontier-proxy":
        assert FRONTIER_MODEL in names
    generated = _call(
        address,
        "switchyard.inference.v1.InferenceService/Generate",
        {
            "model": names[0],
            "messages": [{"role": "ROLE_USER", "content": "Say hello."}],
            "parameters": {"maxTokens": 8, "temperature": 0},
        },
    )
    assert generated["text"] and generated["finish_reason"].startswith("FINISH_REASON_")
    assert generated["usage"]["cost_usd"] > 0
    bad = grpcurl(
        "-d",
        json.dumps({"messages": []}),
        address,
        "switchyard.inference.v1.InferenceService/Generate",
    )
    assert bad.returncode != 0 and "InvalidArgument" in bad.stderr, bad.stderr
