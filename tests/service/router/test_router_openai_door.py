"""The router's OpenAI-compatible HTTP door in-process, on its real uvicorn server and a real
port, called with the real `openai` SDK against scripted classifier/backend gRPC doubles: same
decisions, ledger records and trace attributes as the gRPC door, OpenAI's error classes, size
limit, graceful shutdown, and the published OpenAPI document fuzzed with schemathesis."""

from __future__ import annotations

import asyncio
import copy
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from router_doubles import CLASSIFY_COST, FakeBackend, FakeClassifier, ledger_records, start_doubles
from test_router_service import config_data

from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.router.config import hash_api_key
from switchyard.router.openai.server import FrontDoorServer
from switchyard.router.service import RouterResources, build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.server import RunningServer, start_server

KEY = "sy-door-test-key-0123456789"
BROKE_KEY = "sy-door-broke-key-0123456789"
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@dataclass
class Door:
    classifier: FakeClassifier
    local: FakeBackend
    frontier: FakeBackend
    router: RunningServer[RouterResources]
    http: FrontDoorServer
    grpc_stub: router_pb2_grpc.RouterServiceStub

    @property
    def base_url(self) -> str:
        return f"http://{self.http.address}/v1"

    def client(self, key: str = KEY, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=key, **kw)

    async def records(self):  # noqa: ANN201
        return await ledger_records(self.router)


def door_config(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["tenants"] = {
        "acme": {"api_key_sha256": [hash_api_key(KEY)]},
        "broke": {"api_key_sha256": [hash_api_key(BROKE_KEY)], "budget": {"daily_hard_usd": 0}},
    }
    return data


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    doubles = await start_doubles()
    c_addr, l_addr, f_addr = doubles.addresses
    path = tmp_path / "router.yaml"
    path.write_text(
        yaml.safe_dump(door_config(config_data(c_addr, l_addr, f_addr, tmp_path / "l.db")))
    )
    settings = RouterSettings(
        config=path,
        budget_cache_s=0.0,
        http_host="127.0.0.1",
        http_port=0,
        http_max_request_bytes=64 * 1024,
        grace_period_s=5,
    )
    try:
        async with start_server(build_definition(settings), port=0) as running:
            (http,) = running.companions
            assert isinstance(http, FrontDoorServer)
            async with grpc.aio.insecure_channel(running.address) as channel:
                yield Door(
                    doubles.classifier,
                    doubles.local,
                    doubles.frontier,
                    running,
                    http,
                    router_pb2_grpc.RouterServiceStub(channel),
                )
    finally:
        await doubles.stop()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# ---- answers ---------------------------------------------------------------------------------


async def test_unary_answer_has_text_usage_decision_cost_headers_and_a_ledger_record(
    door: Door,
) -> None:
    async with door.client() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="switchyard/auto", messages=user("CHAT 0.1 hello"), max_tokens=16
        )
    reply = raw.parse()
    assert reply.choices[0].message.content == "local answered"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "small"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (10, 5)
    sy = reply.switchyard  # the extension object, as the SDK exposes unknown fields
    assert sy["decision"]["target"] == "local-general"
    assert sy["decision"]["reason"] == "BELOW_THRESHOLD"
    assert sy["decision"]["escalation_score"] == pytest.approx(0.1)
    assert sy["decision"]["task_type"] == "CHAT"
    assert [h["kind"] for h in sy["hops"]] == ["CLASSIFY", "GENERATE"]
    assert sy["total_cost_usd"] == pytest.approx(CLASSIFY_COST + 0.0001)
    assert raw.headers["x-switchyard-request-id"] == sy["request_id"]
    assert reply.id == f"chatcmpl-{sy['request_id']}"
    assert raw.headers["x-switchyard-target"] == "local-general"
    assert float(raw.headers["x-switchyard-cost-usd"]) == pytest.approx(sy["total_cost_usd"])
    assert door.local.models == ["small"]
    (record,) = [r for r in await door.records() if r.request_id == sy["request_id"]]
    assert (record.tenant, record.target, record.status) == ("acme", "local-general", "OK")
    assert record.total_cost_usd == pytest.approx(sy["total_cost_usd"])


async def test_a_target_name_forces_it_and_routing_options_ride_in_extra_body(door: Door) -> None:
    async with door.client() as client:
        forced = await client.chat.completions.create(
            model="frontier-strong", messages=user("CHAT 0.0 x")
        )
        assert forced.switchyard["decision"]["reason"] == "FORCED"
        assert forced.choices[0].message.content == "frontier answered"
        kept_local = await client.chat.completions.create(
            model="switchyard/auto",
            messages=user("CHAT 0.9 prove it"),
            extra_body={"switchyard": {"disallow_frontier": True}},
        )
        assert kept_local.switchyard["decision"]["reason"] == "FRONTIER_DISALLOWED"
        low = await client.chat.completions.create(
            model="switchyard/auto",
            messages=user("CHAT 0.2 x"),
            extra_body={"switchyard": {"escalation_threshold": 0.1}},
        )
        assert low.switchyard["decision"]["target"] == "frontier-general"
    assert door.frontier.models == ["huge", "big"]


async def test_streamed_answer_decision_first_deltas_then_usage_and_cost_last(door: Door) -> None:
    async with door.client() as client:
        stream = await client.chat.completions.create(
            model="switchyard/auto",
            messages=user("CHAT 0.9 tell me"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    first, last = chunks[0], chunks[-1]
    assert first.switchyard["decision"]["target"] == "frontier-general"
    assert first.choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "frontier answered in pieces "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert last.choices == [] and last.usage.completion_tokens == 5
    assert last.switchyard["total_cost_usd"] == pytest.approx(CLASSIFY_COST + 0.01)
    assert {c.id for c in chunks} == {f"chatcmpl-{first.switchyard['request_id']}"}
    (record,) = [r for r in await door.records() if r.request_id == first.switchyard["request_id"]]
    assert record.status == "OK" and record.target == "frontier-general"


async def test_the_sync_sdk_works_unary_and_streamed(door: Door) -> None:
    def call() -> tuple[str, str]:
        with openai.OpenAI(base_url=door.base_url, api_key=KEY) as client:
            unary = client.chat.completions.create(model="local-general", messages=user("hi"))
            streamed = client.chat.completions.create(
                model="local-general", messages=user("hi"), stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
            return unary.choices[0].message.content or "", text

    unary, streamed = await asyncio.to_thread(call)
    assert unary == "local answered"
    assert streamed == "local answered in pieces "


async def test_models_lists_the_routed_name_and_every_target(door: Door) -> None:
    async with door.client() as client:
        listed = [m.id async for m in client.models.list()]
        assert listed[0] == "switchyard/auto"  # then the targets, in the file's order
        assert sorted(listed[1:]) == ["frontier-general", "frontier-strong", "local-general"]
        assert (await client.models.retrieve("frontier-strong")).id == "frontier-strong"
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("nope")


# ---- errors ----------------------------------------------------------------------------------


async def test_errors_reach_the_sdk_as_openai_exceptions(door: Door) -> None:
    async with door.client("sy-wrong") as wrong:
        with pytest.raises(openai.AuthenticationError) as auth:
            await wrong.chat.completions.create(model="switchyard/auto", messages=user("x"))
    assert auth.value.status_code == 401 and "sy-wrong" not in auth.value.message
    async with door.client() as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="gpt-9", messages=user("x"))
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as tools:
            await client.chat.completions.create(
                model="switchyard/auto",
                messages=user("x"),
                tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            )
        assert tools.value.param == "tools" and "tool calling" in tools.value.message
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="switchyard/auto", messages=user("   "))
        with pytest.raises(openai.APIStatusError) as big:
            await client.chat.completions.create(
                model="switchyard/auto", messages=user("x" * 70_000)
            )
        assert big.value.status_code == 413
    # the SDK would retry a 429 twice; the budget refusal says not to
    async with door.client(BROKE_KEY, max_retries=2) as broke:
        with pytest.raises(openai.RateLimitError) as budget:
            await broke.chat.completions.create(model="switchyard/auto", messages=user("x"))
    assert budget.value.code == "insufficient_quota" and "budget" in budget.value.message
    refused = [r for r in await door.records() if r.tenant == "broke"]
    assert len(refused) == 1 and refused[0].status == "RESOURCE_EXHAUSTED"


async def test_backend_failures_are_5xx_before_output_and_an_error_event_after(door: Door) -> None:
    door.local.fail = [UNAVAILABLE] * 3
    door.frontier.fail = [UNAVAILABLE] * 3
    async with door.client(max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as down:
            await client.chat.completions.create(
                model="switchyard/auto", messages=user("CHAT 0.1 x")
            )
        assert down.value.status_code == 503
        door.local.fail = [UNAVAILABLE] * 3
        door.frontier.fail = [UNAVAILABLE] * 3
        with pytest.raises(openai.InternalServerError):
            stream = await client.chat.completions.create(
                model="switchyard/auto", messages=user("CHAT 0.1 x"), stream=True
            )
            [c async for c in stream]
        door.local.fail, door.frontier.fail = [], []
        door.local.break_after_deltas = 2
        stream = await client.chat.completions.create(
            model="local-general", messages=user("CHAT 0.1 x"), stream=True
        )
        got: list[str] = []
        with pytest.raises(openai.APIError) as cut:
            async for chunk in stream:
                got.extend(c.delta.content or "" for c in chunk.choices)
        assert "".join(got) == "local answered "
        assert "mid-stream" in cut.value.message


async def test_a_client_that_goes_away_cancels_the_stream(door: Door) -> None:
    door.local.delay_s = 0.5
    async with httpx.AsyncClient(base_url=door.base_url) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                "/chat/completions",
                json={"model": "local-general", "messages": user("x"), "stream": True},
                headers={"authorization": f"Bearer {KEY}"},
                timeout=0.2,
            )
    for _ in range(50):
        records = [r for r in await door.records() if r.target == "local-general"]
        if records:
            break
        await asyncio.sleep(0.05)
    assert [r.status for r in records] == ["CANCELLED"]


# ---- traces ----------------------------------------------------------------------------------


def _server_span(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in spans.get_finished_spans() if s.name == name]
    return span


async def test_traceparent_continues_and_the_http_span_matches_the_grpc_one(
    door: Door, spans: InMemorySpanExporter
) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    async with door.client() as client:
        await client.chat.completions.create(
            model="switchyard/auto",
            messages=user("CHAT 0.1 hello"),
            extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"},
        )
    http_span = _server_span(spans, attr.SPAN_ROUTER_HTTP_CHAT_COMPLETIONS)
    assert format(http_span.context.trace_id, "032x") == trace_id
    assert http_span.parent is not None and format(http_span.parent.span_id, "016x") == parent
    children = [
        s.name
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == http_span.context.span_id
    ]
    assert attr.SPAN_ROUTER_CLASSIFY in children and attr.SPAN_ROUTER_GENERATE in children
    spans.clear()
    await door.grpc_stub.Complete(
        router_pb2.CompleteRequest(
            messages=[
                inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="CHAT 0.1 hello")
            ]
        ),
        metadata=[("authorization", f"Bearer {KEY}")],
        timeout=10,
    )
    grpc_span = _server_span(spans, "/switchyard.router.v1.RouterService/Complete")

    def ours(span: ReadableSpan) -> dict[str, Any]:
        keys = {k for k in span.attributes or {} if k.startswith(("gen_ai.", "switchyard."))}
        return {k: (span.attributes or {})[k] for k in keys}

    mine, theirs = ours(http_span), ours(grpc_span)
    assert set(mine) - {attr.ROUTER_STREAM} == set(theirs)
    for key in (
        attr.GEN_AI_OPERATION_NAME,
        attr.GEN_AI_REQUEST_MODEL,
        attr.GEN_AI_USAGE_INPUT_TOKENS,
        attr.GEN_AI_USAGE_COST,
        attr.COST_USD,
        attr.ROUTER_TARGET,
        attr.ROUTER_REASON,
        attr.TENANT,
    ):
        assert mine[key] == theirs[key], key
    assert mine[attr.COST_USD] == pytest.approx(CLASSIFY_COST + 0.0001)
    assert http_span.attributes[attr.HTTP_RESPONSE_STATUS_CODE] == 200


async def test_a_refusal_is_not_a_span_error_and_a_backend_failure_is(
    door: Door, spans: InMemorySpanExporter
) -> None:
    door.local.fail = [UNAVAILABLE] * 3
    door.frontier.fail = [UNAVAILABLE] * 3
    async with door.client(max_retries=0) as client:
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="nope", messages=user("x"))
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="local-general", messages=user("x"))
    refused, failed = [
        s for s in spans.get_finished_spans() if s.name == attr.SPAN_ROUTER_HTTP_CHAT_COMPLETIONS
    ]
    assert refused.attributes[attr.HTTP_RESPONSE_STATUS_CODE] == 404
    assert refused.attributes[attr.ERROR_TYPE] == "NOT_FOUND"
    assert refused.status.status_code is StatusCode.UNSET and not refused.events
    assert failed.attributes[attr.HTTP_RESPONSE_STATUS_CODE] == 503
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]


# ---- serving ---------------------------------------------------------------------------------


async def test_a_taken_http_port_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        path = tmp_path / "router.yaml"
        addrs = ("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
        path.write_text(yaml.safe_dump(config_data(*addrs, tmp_path / "l.db")))
        settings = RouterSettings(
            config=path, http_host="127.0.0.1", http_port=taken.getsockname()[1]
        )
        with pytest.raises(FailedPrecondition, match="cannot bind the HTTP door"):
            async with start_server(build_definition(settings), port=0):
                pass  # pragma: no cover - start-up fails


async def test_health_and_openapi_are_served(door: Door) -> None:
    async with httpx.AsyncClient(base_url=f"http://{door.http.address}") as http:
        assert (await http.get("/health")).json() == {"status": "SERVING"}
        doc = (await http.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.1")
        model = doc["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"]
        assert model["enum"][0] == "switchyard/auto"
        assert (await http.get("/v2/nothing")).status_code == 404
        assert (await http.get("/v1/chat/completions")).status_code == 405


async def test_stop_drains_in_flight_streams_and_refuses_new_connections(door: Door) -> None:
    door.local.delay_s = 0.6
    async with door.client(max_retries=0) as client:

        async def in_flight() -> str:
            s = await client.chat.completions.create(
                model="local-general", messages=user("x"), stream=True
            )
            return "".join(
                c.choices[0].delta.content or "" for c in [x async for x in s] if c.choices
            )

        task = asyncio.create_task(in_flight())
        await asyncio.sleep(0.2)  # the request is in the backend now
        stopping = asyncio.create_task(door.router.stop(grace=5))
        await asyncio.sleep(0.1)
        with pytest.raises(openai.APIConnectionError):
            async with door.client(max_retries=0) as late:
                await late.chat.completions.create(model="local-general", messages=user("x"))
        assert await task == "local answered in pieces "
        await stopping


@pytest.mark.slow  # about a minute on the 2-core build machine
async def test_openapi_document_fuzzed_with_schemathesis_finds_no_server_error(
    door: Door, tmp_path: Path
) -> None:
    st = str(Path(sys.executable).parent / "st")
    proc = await asyncio.create_subprocess_exec(
        st,
        "run",
        f"http://{door.http.address}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        "60",
        "--header",
        f"Authorization: Bearer {KEY}",
        "--seed",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "No issues found" in text or "passed" in text, text[-3000:]
