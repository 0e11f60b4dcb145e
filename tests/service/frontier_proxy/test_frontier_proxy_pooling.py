"""Streams read to the end of the upstream's HTTP body, so pooled connections are reused."""

from __future__ import annotations

import random

import grpc
import pytest
from frontier_fixtures import standin_catalog, user
from support.frontier_standin import FrontierStandin, Reply

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc
from switchyard.frontier_proxy.service import build_definition
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.runtime.server import start_server


@pytest.mark.parametrize("model", ["gpt-4o", "claude-haiku-4-5"])
async def test_sequential_streams_share_one_upstream_connection(model: str) -> None:
    # A stand-in of its own: its open connections are this test's alone.
    async with FrontierStandin() as standin:
        # Events apart in time, as a model sends them: each arrives in a read of its own.
        standin.reply = Reply(text="alpha beta gamma delta", chunk_delay_s=0.002)
        settings = FrontierProxySettings(host="127.0.0.1", grace_period_s=1.0)
        definition = build_definition(
            settings, catalog=standin_catalog(standin), rng=random.Random(1)
        )
        async with start_server(definition, port=0) as running:
            async with grpc.aio.insecure_channel(running.address) as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                for i in range(3):
                    request = pb.GenerateStreamRequest(model=model, messages=user(f"call {i}"))
                    text = ""
                    async for message in stub.GenerateStream(request, timeout=10):
                        if message.HasField("delta"):
                            text += message.delta.text
                    assert text == "alpha beta gamma delta"
                assert all(r.completed for r in standin.requests)
                # One keep-alive connection served all three calls: none was closed early.
                assert len(standin._writers) == 1
