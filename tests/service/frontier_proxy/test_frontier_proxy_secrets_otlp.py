"""The secret scan over the OTLP path: the proxy as its own process (`python -m
switchyard.frontier_proxy`) exports its spans over OTLP/gRPC to a receiver in this test, as to
a real collector, while the stand-in echoes its keys in failures of both wire formats. Neither
the exported bytes nor the process's own output (its JSON logs) may hold any part of a key.
Slow: it starts a process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import grpc
import pytest
from frontier_fixtures import user
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from support.frontier_standin import Fault, FrontierStandin

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


class RawTraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every OTLP trace export request as the bytes that came over the wire."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.spans = 0

    async def Export(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        self.requests.append(request.SerializeToString())
        self.spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def windows(secret: str, size: int = 12) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


async def wait_ready(stub: inference_pb2_grpc.InferenceServiceStub, process) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while True:
        assert process.returncode is None, "the proxy process exited"
        try:
            await stub.ListModels(pb.ListModelsRequest(), timeout=1)
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_exported_spans_and_process_logs_hold_no_key(
    fresh_standin: FrontierStandin, tmp_path: Path, unused_port: int
) -> None:
    receiver = RawTraceReceiver()
    collector = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, collector)
    otlp_port = collector.add_insecure_port("127.0.0.1:0")
    await collector.start()
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "gpt-4o",
                        "provider": "openai",
                        "base_url": fresh_standin.openai_base_url,
                        "api_key_env": "OTLP_TEST_OPENAI_KEY",
                    },
                    {
                        "name": "claude-haiku-4-5",
                        "provider": "anthropic",
                        "base_url": fresh_standin.anthropic_base_url,
                        "api_key_env": "OTLP_TEST_ANTHROPIC_KEY",
                    },
                ]
            }
        )
    )
    port = unused_port
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTLP_TEST_OPENAI_KEY=fresh_standin.openai_key,
        OTLP_TEST_ANTHROPIC_KEY=fresh_standin.anthropic_key,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_port}",
        SWITCHYARD_FRONTIER_PROXY_CATALOG=str(catalog),
        SWITCHYARD_FRONTIER_PROXY_HOST="127.0.0.1",
        SWITCHYARD_FRONTIER_PROXY_PORT=str(port),
        SWITCHYARD_FRONTIER_PROXY_BACKOFF_BASE_S="0.01",
        SWITCHYARD_FRONTIER_PROXY_BACKOFF_MAX_S="0.02",
        SWITCHYARD_FRONTIER_PROXY_LOG_LEVEL="DEBUG",
    )
    log_path = tmp_path / "proxy.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "switchyard.frontier_proxy",
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
    codes = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            await wait_ready(stub, process)
            for model, key in (
                ("gpt-4o", fresh_standin.openai_key),
                ("claude-haiku-4-5", fresh_standin.anthropic_key),
            ):
                request = pb.GenerateRequest(model=model, messages=user("hi"))
                stream_request = pb.GenerateStreamRequest(model=model, messages=user("a b c d"))
                cases = (
                    (Fault("status", status=503, message=f"down {key}"), 3, False),
                    (Fault("status", status=400, message=f"bad {key[2:-2]}"), 1, False),
                    (Fault("stream_error", after_chunks=1, error_type=key, message=key), 3, True),
                )
                for fault, times, stream in cases:
                    fresh_standin.inject(fault, times=times)
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        if stream:
                            await _drain(stub.GenerateStream(stream_request, timeout=10))
                        else:
                            await stub.Generate(request, timeout=10)
                    codes.append(info.value.code())
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # graceful stop flushes the span exporter
        await asyncio.wait_for(process.wait(), 30)
        await collector.stop(0)
    logs = log_path.read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, logs[-2000:]
    assert (
        codes
        == [
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.UNAVAILABLE,
        ]
        * 2
    )
    assert receiver.spans >= 12  # a server span and a `chat` span per call, at least
    exported = b"".join(receiver.requests).decode("utf-8", "replace")
    assert "exception.stacktrace" in exported
    assert "retrying upstream call" in logs
    for where, text in (("exported spans", exported), ("the process's logs", logs)):
        for key in (fresh_standin.openai_key, fresh_standin.anthropic_key):
            leaked = sorted(w for w in windows(key) if w in text)
            assert not leaked, f"part of an API key reached {where}: {leaked}"


async def _drain(stream) -> None:  # type: ignore[no-untyped-def]
    async for _ in stream:
        pass
