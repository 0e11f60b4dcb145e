"""The shared server bootstrap, exercised through a small echo service over real channels."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace

import grpc
import pytest
from echo_service import EchoSettings, echo_definition
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, StatusCode

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc
from switchyard.api.options import trace_id_from_metadata
from switchyard.runtime import attributes
from switchyard.runtime.channels import open_channel
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.logging import setup_logging
from switchyard.runtime.server import RunningServer, ServiceRuntime, start_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE = "switchyard.inference.v1.InferenceService"


def ask(content: str) -> pb.GenerateRequest:
    return pb.GenerateRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content=content)])


@pytest.fixture
async def echo() -> AsyncIterator[RunningServer]:
    async with start_server(echo_definition(EchoSettings(port=0)), port=0) as running:
        yield running


@pytest.fixture
async def stub(echo: RunningServer) -> AsyncIterator[pb_grpc.InferenceServiceStub]:
    async with open_channel(echo.address) as channel:
        yield pb_grpc.InferenceServiceStub(channel)


async def test_serving_only_after_warmup(unused_port: int) -> None:
    gate = asyncio.Event()
    definition = echo_definition(EchoSettings(), warmup_gate=gate)
    started = asyncio.Event()

    async def serve() -> None:
        async with start_server(definition, port=unused_port):
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(serve())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{unused_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await channel.channel_ready()
            for name in ("", SERVICE):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
                assert reply.status == NOT_SERVING
            assert not started.is_set()
            gate.set()
            await asyncio.wait_for(started.wait(), 5)
            for name in ("", SERVICE):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
                assert reply.status == SERVING
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_graceful_shutdown_reports_not_serving_and_finishes_inflight_stream() -> None:
    async with start_server(echo_definition(EchoSettings()), port=0) as running:
        async with grpc.aio.insecure_channel(running.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
            assert (await watch.read()).status == SERVING

            stub = pb_grpc.InferenceServiceStub(channel)
            stream = stub.GenerateStream(
                pb.GenerateStreamRequest(
                    messages=[pb.ChatMessage(role=pb.ROLE_USER, content="words 5 0.2")]
                ),
                timeout=10,
            )
            first = await stream.read()
            assert first.delta.text == "w0 "
            stopping = asyncio.create_task(running.stop(grace=5))
            assert (await watch.read()).status == NOT_SERVING
            rest = []
            while (message := await stream.read()) is not grpc.aio.EOF:
                rest.append(message)
            await stopping
    texts = [first.delta.text] + [m.delta.text for m in rest if m.HasField("delta")]
    assert texts == ["w0 ", "w1 ", "w2 ", "w3 ", "w4 "]
    assert rest[-1].HasField("complete")


async def test_reflection_lists_services(echo: RunningServer) -> None:
    def list_services() -> list[str]:
        # The reflection client is synchronous: run it off the loop that serves.
        with grpc.insecure_channel(echo.address) as channel:
            return list(ProtoReflectionDescriptorDatabase(channel).get_services())

    services = await asyncio.to_thread(list_services)
    assert set(services) >= {
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_health_and_reflection_calls_are_not_traced(spans, echo: RunningServer) -> None:  # type: ignore[no-untyped-def]
    def reflect() -> None:
        with grpc.insecure_channel(echo.address) as channel:
            list(ProtoReflectionDescriptorDatabase(channel).get_services())

    spans.clear()
    async with grpc.aio.insecure_channel(echo.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        await asyncio.to_thread(reflect)
        assert spans.get_finished_spans() == ()
        await pb_grpc.InferenceServiceStub(channel).Generate(ask("hello"), timeout=5)
    names = [s.name for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert names == [f"/{SERVICE}/Generate"]


async def test_server_spans_carry_the_rpc_attributes_and_the_code_the_call_ended_with(
    spans,
    echo: RunningServer,  # type: ignore[no-untyped-def]
) -> None:
    spans.clear()
    async with grpc.aio.insecure_channel(echo.address) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        await stub.Generate(ask("echo hi"), timeout=5)
        for prompt in ("invalid", "crash"):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Generate(ask(prompt), timeout=5)
        stream = stub.GenerateStream(
            pb.GenerateStreamRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="s 3 0")]),
            timeout=5,
        )
        assert len([m async for m in stream]) == 4
    ok, refused, crashed, streamed = [
        s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER
    ]
    for span, method, code in (
        (ok, "Generate", grpc.StatusCode.OK),
        (refused, "Generate", grpc.StatusCode.INVALID_ARGUMENT),
        (crashed, "Generate", grpc.StatusCode.INTERNAL),
        (streamed, "GenerateStream", grpc.StatusCode.OK),
    ):
        assert span.name == f"/{SERVICE}/{method}"
        assert span.attributes[attributes.RPC_SYSTEM] == "grpc"
        assert span.attributes[attributes.RPC_SERVICE] == SERVICE
        assert span.attributes[attributes.RPC_METHOD] == method
        assert span.attributes[attributes.RPC_GRPC_STATUS_CODE] == code.value[0], method
        assert span.attributes[attributes.NETWORK_PEER_ADDRESS] == "127.0.0.1"
        assert span.attributes[attributes.NETWORK_PEER_PORT] > 0
    # A refusal is the caller's: no error status, no traceback; a crash is the server's.
    assert ok.status.status_code is StatusCode.UNSET and not ok.events
    assert refused.status.status_code is StatusCode.UNSET and not refused.events
    assert crashed.status.status_code is StatusCode.ERROR
    assert [e.name for e in crashed.events] == ["exception"]
    assert streamed.status.status_code is StatusCode.UNSET


async def test_a_caller_without_opentelemetry_continues_its_trace_through_plain_metadata(
    spans,
    echo: RunningServer,  # type: ignore[no-untyped-def]
) -> None:
    # What a Go, Node or Java backend sends: W3C headers as metadata, no Python tracer behind.
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    metadata = (
        ("traceparent", f"00-{trace_id}-{parent_id}-01"),
        ("baggage", f"{attributes.BAGGAGE_TENANT}=acme"),
        ("other-bin", b"\x00\x01"),
    )
    spans.clear()
    async with grpc.aio.insecure_channel(echo.address) as channel:
        call = pb_grpc.InferenceServiceStub(channel).Generate(
            ask("echo hi"), timeout=5, metadata=metadata
        )
        await call
        returned = trace_id_from_metadata(await call.trailing_metadata())
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert format(server.context.trace_id, "032x") == trace_id == returned
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == parent_id
    assert server.attributes[attributes.BAGGAGE_TENANT] == "acme"


async def test_a_malformed_traceparent_starts_a_new_trace(
    spans,
    echo: RunningServer,  # type: ignore[no-untyped-def]
) -> None:
    spans.clear()
    async with grpc.aio.insecure_channel(echo.address) as channel:
        reply = await pb_grpc.InferenceServiceStub(channel).Generate(
            ask("echo hi"), timeout=5, metadata=(("traceparent", "00-not-a-trace-01"),)
        )
    assert reply.text == "hi"
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.parent is None and server.context.is_valid


async def test_switchyard_errors_map_to_status_codes(stub: pb_grpc.InferenceServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.Generate(ask("invalid"), timeout=5)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert invalid.value.details() == "the echo service refuses this prompt"

    with pytest.raises(grpc.aio.AioRpcError) as crash:
        await stub.Generate(ask("crash"), timeout=5)
    assert crash.value.code() == grpc.StatusCode.INTERNAL
    assert "secret internal detail" not in (crash.value.details() or "")
    assert "trace id" in (crash.value.details() or "")


async def test_expired_deadline_is_deadline_exceeded(stub: pb_grpc.InferenceServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(ask("sleep 2"), timeout=0.2)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_oversized_message_is_resource_exhausted() -> None:
    settings = EchoSettings(max_message_bytes=64 * 1024)
    async with start_server(echo_definition(settings), port=0) as running:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.InferenceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Generate(ask("echo " + "x" * 100_000), timeout=5)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            ok = await stub.Generate(ask("echo small"), timeout=5)
            assert ok.text == "small"


async def test_trace_and_baggage_continue_across_two_hops(spans) -> None:  # type: ignore[no-untyped-def]
    async with start_server(echo_definition(EchoSettings()), port=0) as back:
        front_settings = EchoSettings(downstream=back.address)
        async with start_server(echo_definition(front_settings), port=0) as front:
            async with open_channel(front.address) as channel:
                stub = pb_grpc.InferenceServiceStub(channel)
                tracer = trace.get_tracer("test")
                ctx = baggage.set_baggage(attributes.BAGGAGE_TENANT, "acme")
                token = context.attach(ctx)
                try:
                    with tracer.start_as_current_span("caller") as caller:
                        reply = await stub.Generate(ask("forward hello"), timeout=5)
                finally:
                    context.detach(token)
    assert reply.text == "hello"
    trace_id = caller.get_span_context().trace_id
    finished = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    servers = [s for s in finished if s.kind == SpanKind.SERVER]
    clients = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert len(servers) == 2 and len(clients) == 2
    by_id = {s.context.span_id: s for s in finished}
    # caller -> client -> front server -> client -> back server
    chain = []
    span = next(
        s
        for s in servers
        if s.parent
        and by_id[s.parent.span_id] in clients
        and by_id[by_id[s.parent.span_id].parent.span_id] in servers
    )
    while span is not None:
        chain.append(span)
        span = by_id.get(span.parent.span_id) if span.parent else None
    assert [s.kind for s in chain] == [
        SpanKind.SERVER,
        SpanKind.CLIENT,
        SpanKind.SERVER,
        SpanKind.CLIENT,
        SpanKind.INTERNAL,
    ]
    assert chain[-1].name == "caller"
    for server in servers:
        assert server.attributes[attributes.BAGGAGE_TENANT] == "acme"


async def test_logs_carry_trace_id(stub: pb_grpc.InferenceServiceStub) -> None:
    buffer = io.StringIO()
    setup_logging("echo", "INFO", stream=buffer)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("caller") as caller:
        await stub.Generate(ask("echo hi"), timeout=5)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    generate = [line for line in lines if line.get("message") == "generate"]
    assert generate, lines
    assert generate[0]["trace_id"] == format(caller.get_span_context().trace_id, "032x")
    assert len(generate[0]["span_id"]) == 16
    assert generate[0]["service"] == "echo"


# ---- bad bytes, long values, draining, trace ids, reflection v1 -------------------------------

GENERATE = f"/{SERVICE}/Generate"
GENERATE_STREAM = f"/{SERVICE}/GenerateStream"
# messages[0].content = b"\xff\xfe": a string field holding invalid UTF-8
BAD_UTF8 = b"\x0a\x04\x12\x02\xff\xfe"
TRUNCATED = ask("hello there").SerializeToString()[:-3]


def _log_lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def _raw_call(channel: grpc.aio.Channel, method: str, data: bytes) -> grpc.StatusCode:
    try:
        if method == GENERATE_STREAM:
            call = channel.unary_stream(method)(data, timeout=5)
            async for _ in call:
                pass
        else:
            await channel.unary_unary(method)(data, timeout=5)
    except grpc.aio.AioRpcError as err:
        assert len(err.details() or "") < 400, err.details()
        return err.code()
    return grpc.StatusCode.OK


async def test_undecodable_requests_are_invalid_argument_with_one_warning() -> None:
    now = [0.0]
    buffer = io.StringIO()
    setup_logging("echo", "INFO", stream=buffer)
    try:
        definition = echo_definition(EchoSettings())
        async with start_server(definition, port=0, clock=lambda: now[0]) as running:
            async with grpc.aio.insecure_channel(running.address) as channel:
                for method in (GENERATE, GENERATE_STREAM):
                    for data in (BAD_UTF8, TRUNCATED, b"\xff" * 7) * 5:
                        assert await _raw_call(channel, method, data) == (
                            grpc.StatusCode.INVALID_ARGUMENT
                        )
                now[0] += 61.0  # a minute later, one more warning says what was held back
                assert await _raw_call(channel, GENERATE, BAD_UTF8) == (
                    grpc.StatusCode.INVALID_ARGUMENT
                )
                # the service still serves
                stub = pb_grpc.InferenceServiceStub(channel)
                assert (await stub.Generate(ask("echo still here"), timeout=5)).text == (
                    "still here"
                )
    finally:
        setup_logging("switchyard-tests", "INFO")
    lines = _log_lines(buffer)
    assert not [line for line in lines if line.get("level") in ("error", "critical")], lines
    assert not any("Traceback" in json.dumps(line) for line in lines)
    warnings = [line for line in lines if line.get("message") == "undecodable request refused"]
    assert [(w["method"], w["held_back"]) for w in warnings] == [
        (GENERATE, 0),
        (GENERATE_STREAM, 0),
        (GENERATE, 14),
    ]


async def test_details_quoting_a_huge_caller_value_stay_invalid_argument(
    stub: pb_grpc.InferenceServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(ask("refuse " + "é" * 200_000), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert details.startswith("refused éé") and details.endswith("(truncated)")


async def test_calls_arriving_while_draining_are_unavailable_and_inflight_ones_finish() -> None:
    async with start_server(echo_definition(EchoSettings()), port=0) as running:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.InferenceServiceStub(channel)
            await stub.Generate(ask("echo warm"), timeout=5)
            inflight = asyncio.ensure_future(stub.Generate(ask("sleep 0.5"), timeout=10))
            await asyncio.sleep(0.2)  # it is running in the server now

            async def one() -> str:
                try:
                    await stub.Generate(ask("sleep 0.5"), timeout=10)
                except grpc.aio.AioRpcError as err:
                    return err.code().name
                return "OK"

            # a burst arrives just as the server starts draining: some are still queued
            # inside gRPC when it stops, which used to cancel them (CANCELLED)
            burst = [asyncio.ensure_future(one()) for _ in range(200)]
            await asyncio.sleep(0.001)
            await running.stop(grace=5)
            codes = set(await asyncio.gather(*burst))
            assert (await inflight).model == "echo"
    assert codes <= {"OK", "UNAVAILABLE"}, codes
    assert "UNAVAILABLE" in codes


async def test_every_call_returns_its_trace_id(spans, echo: RunningServer) -> None:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(echo.address) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        call = stub.Generate(ask("echo hi"), timeout=5)
        await call
        ok = await call.trailing_metadata()
        failed = stub.Generate(ask("invalid"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError):
            await failed
        refused = await failed.trailing_metadata()
    servers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    server_ids = {format(s.context.trace_id, "032x") for s in servers}
    ids = [trace_id_from_metadata(ok), trace_id_from_metadata(refused)]
    assert all(ids) and set(ids) <= server_ids and ids[0] != ids[1]


async def test_reflection_v1_is_served_beside_v1alpha(echo: RunningServer) -> None:
    request = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
    async with grpc.aio.insecure_channel(echo.address) as channel:
        call = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")(
            iter([request]), timeout=5
        )
        reply = reflection_pb2.ServerReflectionResponse.FromString(await call.read())
        call.cancel()
    names = {s.name for s in reply.list_services_response.service}
    assert {
        SERVICE,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


class _DeallocMessages(logging.Handler):
    """Keeps grpcio's messages as text only: holding its records could crash the process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def grpc_dealloc_messages() -> Iterator[list[str]]:
    logger = logging.getLogger("grpc._cython.cygrpc")
    handler, level = _DeallocMessages(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_start_that_fails_leaves_no_server_unstopped(
    grpc_dealloc_messages: list[str],
) -> None:
    # A service whose resources cannot open, and one whose port is taken: each start fails
    # with its error, and no gRPC server is left to be deallocated unstopped (grpcio logs that
    # with a reference to the freed server; a handler keeping the record crashed pytest).
    definition = echo_definition(EchoSettings(port=0))

    @asynccontextmanager
    async def broken(runtime: ServiceRuntime) -> AsyncIterator[None]:
        raise FailedPrecondition("the model directory is missing")
        yield

    with pytest.raises(FailedPrecondition, match="model directory"):
        async with start_server(replace(definition, resources=broken), port=0):
            pass
    async with start_server(definition, port=0) as running:
        with pytest.raises((OSError, RuntimeError)):
            async with start_server(definition, port=running.port):
                pass
    gc.collect()
    assert not [m for m in grpc_dealloc_messages if "__dealloc__ called on running" in m]
