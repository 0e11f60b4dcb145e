"""The real `openai` SDKs (Python sync and async, and the npm package from Node) against the
router's OpenAI-compatible door on the live stack: real vLLM, classifier, frontier proxy and
the frontier stand-in behind it; text, usage, cost, decision, errors and trace continuation."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import openai
import pytest
from clients_stack import API_KEY, BROKE_API_KEY, SwitchyardStack

from switchyard.runtime import attributes as attr

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent / "openai_node"
MESSAGES = [{"role": "user", "content": "Say hello in three words."}]
TARGETS = {"local-general", "frontier-mini"}


def base_url(stack: SwitchyardStack) -> str:
    return f"{stack.http_url}/v1"


def wait_for_span(stack: SwitchyardStack, trace_id: str, name: str) -> list[tuple[str, str, str]]:
    """The router's spans of the trace once one named `name` has arrived (exports are batched)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        spans = stack.receiver.wait_for(trace_id, "router")
        if any(s[1] == name for s in spans):
            return spans
        time.sleep(0.2)
    return stack.receiver.wait_for(trace_id, "router")


def test_sync_sdk_unary_routed_with_trace_continuation(switchyard_stack: SwitchyardStack) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    with openai.OpenAI(base_url=base_url(switchyard_stack), api_key=API_KEY) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="switchyard/auto",
            messages=MESSAGES,
            max_tokens=8,
            extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"},
        )
    reply = raw.parse()
    assert reply.choices[0].message.content
    assert 0 < reply.usage.completion_tokens <= 8 and reply.usage.prompt_tokens > 0
    sy = reply.switchyard
    assert sy["decision"]["target"] in TARGETS
    assert sy["decision"]["reason"] in {"BELOW_THRESHOLD", "ESCALATED", "TASK_RULE"}
    assert sy["decision"]["task_type"]  # the real classifier answered
    assert [h["kind"] for h in sy["hops"]][:2] == ["CLASSIFY", "GENERATE"]
    assert sy["total_cost_usd"] > 0
    assert raw.headers["x-switchyard-request-id"] == sy["request_id"]
    assert float(raw.headers["x-switchyard-cost-usd"]) == pytest.approx(sy["total_cost_usd"])
    # the caller's trace continued into the router's HTTP span and on to the backend it used
    router_spans = wait_for_span(switchyard_stack, trace_id, attr.SPAN_ROUTER_HTTP_CHAT_COMPLETIONS)
    http_spans = [s for s in router_spans if s[1] == attr.SPAN_ROUTER_HTTP_CHAT_COMPLETIONS]
    assert http_spans and http_spans[0][2] == parent, router_spans
    names = {s[1] for s in router_spans}
    assert {attr.SPAN_ROUTER_CLASSIFY, attr.SPAN_ROUTER_GENERATE} <= names
    backend = "local-inference" if sy["decision"]["target"] == "local-general" else "frontier-proxy"
    assert switchyard_stack.receiver.wait_for(trace_id, backend), f"no {backend} span joined"


async def test_async_sdk_streams_from_vllm_with_usage_and_cost(
    switchyard_stack: SwitchyardStack,
) -> None:
    async with openai.AsyncOpenAI(base_url=base_url(switchyard_stack), api_key=API_KEY) as client:
        stream = await client.chat.completions.create(
            model="local-general",
            messages=MESSAGES,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[0].switchyard["decision"]["target"] == "local-general"
    assert chunks[0].switchyard["decision"]["reason"] == "FORCED"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    last = chunks[-1]
    assert last.choices == [] and 0 < last.usage.completion_tokens <= 8
    assert last.switchyard["total_cost_usd"] > 0  # machine time attributed by local-inference
    assert [h["service"] for h in last.switchyard["hops"]] == ["classifier", "local-inference"]


async def test_async_unary_and_sync_stream_through_the_frontier_proxy(
    switchyard_stack: SwitchyardStack,
) -> None:
    async with openai.AsyncOpenAI(base_url=base_url(switchyard_stack), api_key=API_KEY) as client:
        reply = await client.chat.completions.create(
            model="frontier-mini", messages=MESSAGES, max_tokens=8
        )
    assert reply.choices[0].message.content.startswith("stand-in answer")
    generate = reply.switchyard["hops"][-1]
    assert (generate["service"], generate["model"]) == ("frontier-proxy", "gpt-4o-mini")
    # gpt-4o-mini's list prices, applied by the proxy to the stand-in's token counts
    assert generate["cost_usd"] == pytest.approx(
        (reply.usage.prompt_tokens * 0.15 + reply.usage.completion_tokens * 0.60) / 1e6, rel=1e-6
    )
    with openai.OpenAI(base_url=base_url(switchyard_stack), api_key=API_KEY) as client:
        stream = client.chat.completions.create(
            model="frontier-mini", messages=MESSAGES, max_tokens=8, stream=True
        )
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith(
        "stand-in answer"
    )
    assert chunks[-1].switchyard["total_cost_usd"] > 0


def test_errors_wrong_key_unknown_model_budget_and_oversize(
    switchyard_stack: SwitchyardStack,
) -> None:
    url = base_url(switchyard_stack)
    with openai.OpenAI(base_url=url, api_key="sy-not-a-key", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="switchyard/auto", messages=MESSAGES)
    with openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert "switchyard/auto" in missing.value.message
        with pytest.raises(openai.APIStatusError) as big:
            client.chat.completions.create(
                model="switchyard/auto",
                messages=[{"role": "user", "content": "x" * (5 * 1024 * 1024)}],
            )
        assert big.value.status_code == 413
    with openai.OpenAI(base_url=url, api_key=BROKE_API_KEY, max_retries=2) as broke:
        with pytest.raises(openai.RateLimitError) as budget:
            broke.chat.completions.create(model="switchyard/auto", messages=MESSAGES)
    assert "over its budget" in budget.value.message
    assert budget.value.code == "insufficient_quota"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_openai_npm_package_against_the_door(switchyard_stack: SwitchyardStack) -> None:
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.fail(f"{NODE_DIR}/node_modules is missing: run scripts/setup.d/45-openai-node.sh")
    trace_id = secrets.token_hex(16)
    parent = secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHYARD_", "OPENAI_"))}
    env.update(
        SWITCHYARD_OPENAI_BASE_URL=base_url(switchyard_stack),
        SWITCHYARD_API_KEY=API_KEY,
        SWITCHYARD_BROKE_API_KEY=BROKE_API_KEY,
        SWITCHYARD_TEST_TRACEPARENT=f"00-{trace_id}-{parent}-01",
    )
    result = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "door.test.mjs"],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped) (\d+)$", out, re.M)}
    assert counts.get("fail", 0) == 0 and counts.get("skipped", 0) == 0, out[-4000:]
    assert counts["pass"] == 5, counts
    spans = wait_for_span(switchyard_stack, trace_id, attr.SPAN_ROUTER_HTTP_CHAT_COMPLETIONS)
    assert any(p == parent for _, name, p in spans if name.startswith("POST ")), spans
