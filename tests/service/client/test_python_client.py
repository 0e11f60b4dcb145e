"""The Python client against an in-process router double: auth, deadlines, trace context, errors.

The router itself is tested end to end in tests/e2e; here the double at the gRPC seam records
what the client sent so each promise of the client can be checked.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from opentelemetry import trace

from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.runtime.errors import ResourceExhausted, Unauthenticated
from switchyard.runtime.server import RunningServer, ServiceDefinition, start_server
from switchyard.runtime.settings import ServiceSettings
from switchyard.suite.demo import DEMO_PROMPTS, run_demo
from switchyard_client import (
    AsyncSwitchyardClient,
    BudgetExceeded,
    CostGrouping,
    Message,
    MessageTooLarge,
    NotAuthenticated,
    RoutingOptions,
    SwitchyardClient,
    capture_trace_ids,
)

KEY = "sy-test-key"


class RecordingRouter(router_pb2_grpc.RouterServiceServicer, cost_pb2_grpc.CostServiceServicer):
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def _record(self, request: Any, context: Any) -> None:
        metadata = dict(context.invocation_metadata())
        self.calls.append(
            {"request": request, "metadata": metadata, "remaining": context.time_remaining()}
        )
        if metadata.get("authorization") != f"Bearer {KEY}":
            raise Unauthenticated("unknown API key")
        if "routing" in request.DESCRIPTOR.fields_by_name and request.routing.max_cost_usd == 0.001:
            raise ResourceExhausted("tenant 'acme' is over its daily hard budget")

    def _decision(self) -> router_pb2.RoutingDecision:
        return router_pb2.RoutingDecision(
            target="local-general",
            model="smollm2",
            reason=router_pb2.DECISION_REASON_BELOW_THRESHOLD,
        )

    async def Complete(self, request: Any, context: Any) -> router_pb2.CompleteResponse:
        self._record(request, context)
        return router_pb2.CompleteResponse(
            text=request.messages[-1].content.upper(), decision=self._decision()
        )

    async def CompleteStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self._record(request, context)
        yield router_pb2.CompleteStreamResponse(decision=self._decision())
        for word in request.messages[-1].content.split():
            yield router_pb2.CompleteStreamResponse(delta=inference_pb2.TextDelta(text=word))
        yield router_pb2.CompleteStreamResponse(
            summary=router_pb2.CompleteStreamSummary(request_id="r1")
        )

    async def Route(self, request: Any, context: Any) -> router_pb2.RouteResponse:
        self._record(request, context)
        return router_pb2.RouteResponse(decision=self._decision())

    async def GetCostReport(self, request: Any, context: Any) -> cost_pb2.GetCostReportResponse:
        self._record(request, context)
        return cost_pb2.GetCostReportResponse(group_by=request.group_by)


def serve_double(servicer: RecordingRouter, settings: ServiceSettings | None = None) -> Any:
    """`async with serve_double(servicer) as running:` the double on the shared runtime."""

    @asynccontextmanager
    async def resources(_: Any) -> AsyncIterator[RecordingRouter]:
        yield servicer

    def register(server: grpc.aio.Server, s: RecordingRouter) -> list[str]:
        router_pb2_grpc.add_RouterServiceServicer_to_server(s, server)
        cost_pb2_grpc.add_CostServiceServicer_to_server(s, server)
        return ["switchyard.router.v1.RouterService", "switchyard.cost.v1.CostService"]

    definition = ServiceDefinition(
        "router-double", settings or ServiceSettings(), resources, register
    )
    return start_server(definition, port=0)


@pytest.fixture
async def router() -> AsyncIterator[RunningServer[RecordingRouter]]:
    async with serve_double(RecordingRouter()) as running:
        yield running


async def test_sync_client_sends_key_deadline_and_trace_context(router: RunningServer) -> None:
    tracer = trace.get_tracer("caller")

    def call() -> tuple[Any, int]:
        with SwitchyardClient(router.address, api_key=KEY, timeout=7) as client:
            with tracer.start_as_current_span("checkout") as span:
                reply = client.complete(
                    [Message("system", "be brief"), {"role": "user", "content": "hello there"}],
                    max_tokens=32,
                    temperature=0.0,
                    routing=RoutingOptions(escalation_threshold=0.4, disallow_frontier=True),
                )
            return reply, span.get_span_context().trace_id

    reply, trace_id = await asyncio.to_thread(call)
    assert reply.text == "HELLO THERE"
    assert reply.decision.target == "local-general"
    recorded = router.resources.calls[-1]
    request = recorded["request"]
    assert [m.role for m in request.messages] == [
        inference_pb2.ROLE_SYSTEM,
        inference_pb2.ROLE_USER,
    ]
    assert request.parameters.max_tokens == 32 and request.parameters.HasField("temperature")
    assert request.routing.escalation_threshold == pytest.approx(0.4)
    assert request.routing.disallow_frontier
    assert not request.routing.HasField("max_cost_usd")
    assert 0 < recorded["remaining"] <= 7.1  # the 7 s deadline, give or take clock granularity
    traceparent = recorded["metadata"]["traceparent"]
    assert traceparent.split("-")[1] == format(trace_id, "032x")


async def test_sync_stream_yields_decision_deltas_summary(router: RunningServer) -> None:
    def call() -> list[str]:
        with SwitchyardClient(router.address, api_key=KEY) as client:
            return [e.WhichOneof("event") for e in client.stream("one two three")]

    assert await asyncio.to_thread(call) == ["decision", "delta", "delta", "delta", "summary"]


async def test_async_client_route_stream_and_costs(router: RunningServer) -> None:
    async with AsyncSwitchyardClient(router.address, api_key=KEY, timeout=5) as client:
        decision = await client.route("is this hard?")
        assert decision.decision.model == "smollm2"
        kinds = [e.WhichOneof("event") async for e in client.stream("a b")]
        assert kinds == ["decision", "delta", "delta", "summary"]
        report = await client.cost_report(CostGrouping.TENANT)
        assert report.group_by == cost_pb2.COST_GROUPING_TENANT


async def test_errors_become_typed_exceptions(router: RunningServer) -> None:
    async with AsyncSwitchyardClient(router.address, api_key="wrong") as client:
        with pytest.raises(NotAuthenticated) as err:
            await client.complete("hi")
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert "wrong" not in str(err.value)
    async with AsyncSwitchyardClient(router.address, api_key=KEY) as client:
        with pytest.raises(BudgetExceeded, match="hard budget"):
            await client.complete("hi", routing=RoutingOptions(max_cost_usd=0.001))

    def sync_stream() -> None:
        with SwitchyardClient(router.address, api_key="wrong") as client:
            list(client.stream("hi"))

    with pytest.raises(NotAuthenticated):
        await asyncio.to_thread(sync_stream)


async def test_a_message_over_the_size_limit_is_not_a_budget_refusal(
    router: RunningServer,
) -> None:
    five_mb = "x" * 5_000_000
    async with AsyncSwitchyardClient(router.address, api_key=KEY) as client:
        with pytest.raises(MessageTooLarge, match="larger than max") as err:
            await client.complete(five_mb)  # refused by the client's own channel
        assert not isinstance(err.value, BudgetExceeded)
        assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(BudgetExceeded, match="hard budget"):  # a budget stays a budget
            await client.complete("hi", routing=RoutingOptions(max_cost_usd=0.001))

    def sync_route() -> None:
        with SwitchyardClient(router.address, api_key=KEY) as client:
            client.route(five_mb)

    with pytest.raises(MessageTooLarge):
        await asyncio.to_thread(sync_route)


async def test_the_server_refusing_a_large_message_is_message_too_large() -> None:
    settings = ServiceSettings(max_message_bytes=64 * 1024)
    async with serve_double(RecordingRouter(), settings) as running:
        async with AsyncSwitchyardClient(running.address, api_key=KEY) as client:
            with pytest.raises(MessageTooLarge, match="Received message larger than max"):
                await client.complete("x" * 100_000)


async def test_trace_ids_of_calls_are_captured(spans, router: RunningServer) -> None:  # type: ignore[no-untyped-def]
    def sync_calls() -> list[str]:
        with SwitchyardClient(router.address, api_key=KEY) as client:
            with capture_trace_ids() as trace_ids:
                client.complete("one")
                list(client.stream("two words"))
                with pytest.raises(NotAuthenticated):
                    SwitchyardClient(router.address, api_key="wrong").route("three")
            client.complete("not captured")
        return trace_ids

    sync_ids = await asyncio.to_thread(sync_calls)
    async with AsyncSwitchyardClient(router.address, api_key=KEY) as client:
        with capture_trace_ids() as async_ids:
            await client.complete("four")
            [e async for e in client.stream("five six")]
    assert len(sync_ids) == 3 and len(async_ids) == 2
    served = {
        format(s.context.trace_id, "032x")
        for s in spans.get_finished_spans()
        if s.kind == trace.SpanKind.SERVER
    }
    assert set(sync_ids) | set(async_ids) <= served
    assert len(set(sync_ids) | set(async_ids)) == 5


async def test_ask_prints_the_trace_id(
    router: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from switchyard_client.cli import main as switchyard

    flags = ["--address", router.address, "--api-key", KEY]
    assert await asyncio.to_thread(switchyard, ["ask", "hello", *flags]) == 0
    out = capsys.readouterr().out
    assert "HELLO" in out
    (line,) = [line for line in out.splitlines() if line.startswith("trace:")]
    assert len(line.split()[1]) == 32
    assert await asyncio.to_thread(switchyard, ["ask", "hi", "--json", *flags]) == 0
    assert len(json.loads(capsys.readouterr().out)["trace_id"]) == 32


class DemoRouter(RecordingRouter):
    async def GetCostReport(self, request: Any, context: Any) -> cost_pb2.GetCostReportResponse:
        self._record(request, context)
        return cost_pb2.GetCostReportResponse(
            group_by=request.group_by,
            total=cost_pb2.CostReportRow(requests=len(DEMO_PROMPTS), cost_usd=1e-7),
        )


async def test_demo_reports_its_own_requests_with_trace_links() -> None:
    servicer = DemoRouter()
    started = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    ticks = iter([started, started + timedelta(seconds=30)])
    out = io.StringIO()
    async with serve_double(servicer) as running:
        await asyncio.to_thread(
            run_demo,
            running.address,
            out,
            api_key=KEY,
            trace_url="http://jaeger.example:16686",
            clock=lambda: next(ticks),
        )
    (report,) = [c["request"] for c in servicer.calls if hasattr(c["request"], "group_by")]
    # the report covers the demo's own window, not the ledger's last 24 hours
    assert report.start_time.ToDatetime(tzinfo=UTC) == started - timedelta(seconds=1)
    assert report.end_time.ToDatetime(tzinfo=UTC) == started + timedelta(seconds=31)
    text = out.getvalue()
    links = re.findall(r"http://jaeger\.example:16686/trace/([0-9a-f]{32})", text)
    assert len(set(links)) == len(DEMO_PROMPTS)
    assert f"{len(DEMO_PROMPTS)} of {len(DEMO_PROMPTS)} demo requests answered" in text
    assert "$0.000000100" in text  # a tiny total still shows its digits
