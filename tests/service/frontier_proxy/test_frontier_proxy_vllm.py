"""The frontier proxy against a real OpenAI-compatible server: vLLM's own API server (CPU
build) on the small prepared model. Slow: the server takes ~30 s to start."""

from __future__ import annotations

import random
from decimal import Decimal

import grpc
import pytest
from support.vllm_server import VllmOpenAIServer, vllm_openai_server  # noqa: F401 (fixture)

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc
from switchyard.frontier_proxy.catalog import parse_catalog
from switchyard.frontier_proxy.service import build_definition
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.runtime.server import start_server

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.timeout(600)]

# Explicit prices: a self-hosted server is in no price table.
INPUT_RATE, OUTPUT_RATE = Decimal("0.1"), Decimal("0.4")


def _cost(usage: pb.Usage) -> Decimal:
    return (usage.input_tokens * INPUT_RATE + usage.output_tokens * OUTPUT_RATE) / 1_000_000


async def test_proxy_over_vllm_openai_server(vllm_openai_server: VllmOpenAIServer) -> None:  # noqa: F811
    base_url = f"{vllm_openai_server.base_url}/v1"
    catalog = parse_catalog(
        {
            "models": [
                {
                    "name": "smollm2",
                    "provider": "openai_compatible",
                    "provider_name": "vllm",
                    "upstream_model": vllm_openai_server.model,
                    "base_url": base_url,
                    "price_lookup": False,
                    "context_window": 1024,
                    "prices": {"input_usd_per_mtok": "0.1", "output_usd_per_mtok": "0.4"},
                },
                {
                    "name": "not-served",
                    "provider": "openai_compatible",
                    "upstream_model": "no-such-model",
                    "base_url": base_url,
                    "price_lookup": False,
                    "context_window": 1024,
                    "prices": {"input_usd_per_mtok": "0.1", "output_usd_per_mtok": "0.4"},
                },
            ]
        },
        {},
    )
    settings = FrontierProxySettings(host="127.0.0.1", grace_period_s=1.0)
    definition = build_definition(settings, catalog=catalog, rng=random.Random(1))
    messages = [pb.ChatMessage(role=pb.ROLE_USER, content="Name three colours.")]
    params = pb.GenerationParameters(max_tokens=16, temperature=0.0)
    async with start_server(definition, port=0) as running:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            unary = await stub.Generate(
                pb.GenerateRequest(model="smollm2", messages=messages, parameters=params),
                timeout=120,
            )
            assert unary.text.strip()
            assert unary.provider == "vllm"
            assert unary.model == vllm_openai_server.model
            assert unary.usage.input_tokens > 0
            assert 0 < unary.usage.output_tokens <= 16
            assert unary.usage.cost_usd == float(_cost(unary.usage))

            deltas: list[str] = []
            completes: list[pb.GenerationComplete] = []
            async for message in stub.GenerateStream(
                pb.GenerateStreamRequest(model="smollm2", messages=messages, parameters=params),
                timeout=120,
            ):
                if message.HasField("delta"):
                    deltas.append(message.delta.text)
                else:
                    completes.append(message.complete)
            (complete,) = completes
            assert "".join(deltas).strip()
            # Usage came from the stream itself (vLLM honours stream_options.include_usage).
            assert complete.usage.input_tokens == unary.usage.input_tokens
            assert 0 < complete.usage.output_tokens <= 16
            assert complete.usage.cost_usd == float(_cost(complete.usage))
            assert complete.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)

            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.Generate(
                    pb.GenerateRequest(model="not-served", messages=messages), timeout=60
                )
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND

            too_long = pb.GenerationParameters(max_tokens=5000)
            with pytest.raises(grpc.aio.AioRpcError) as rejected:
                await stub.Generate(
                    pb.GenerateRequest(model="smollm2", messages=messages, parameters=too_long),
                    timeout=60,
                )
            assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert rejected.value.details()
            # Refused by the proxy itself (beyond the catalog's window) ...
            assert "context window of 1024 tokens" in rejected.value.details()
            # ... while a prompt the proxy's low estimate lets through (5.8 KB, ~970 tokens at
            # 6 bytes each) but that holds ~2900 real tokens gets vLLM's own 400.
            dense = [pb.ChatMessage(role=pb.ROLE_USER, content="a b c d e f g h " * 362)]
            with pytest.raises(grpc.aio.AioRpcError) as upstream:
                await stub.Generate(
                    pb.GenerateRequest(model="smollm2", messages=dense, parameters=params),
                    timeout=60,
                )
            assert upstream.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "vllm rejected the request" in upstream.value.details()
