"""What the upstream receives: the catalog's default max_tokens on every wire format when the
caller sets none, and nothing at all for a call that cannot fit the model's context window."""

from __future__ import annotations

import grpc
import pytest
from frontier_fixtures import user

from switchyard.api.inference.v1 import inference_pb2 as pb

pytestmark = pytest.mark.timeout(30)

# (model, the body field its wire format caps output with, the catalog's default_max_tokens)
CAPS = [
    ("gpt-4o", "max_completion_tokens", 1024),  # OpenAI
    ("compat-reasoner", "max_tokens", 512),  # OpenAI-compatible, its own default
    ("claude-haiku-4-5", "max_tokens", 1024),  # Anthropic
]


@pytest.mark.parametrize(("model", "field", "default"), CAPS)
async def test_calls_without_max_tokens_send_the_catalog_default(
    proxy, fresh_standin, model, field, default
) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    await stub.Generate(pb.GenerateRequest(model=model, messages=user("hi")), timeout=10)
    async for _ in stub.GenerateStream(
        pb.GenerateStreamRequest(model=model, messages=user("hi")), timeout=10
    ):
        pass
    await stub.Generate(
        pb.GenerateRequest(
            model=model, messages=user("hi"), parameters=pb.GenerationParameters(max_tokens=7)
        ),
        timeout=10,
    )
    unary, streamed, capped = fresh_standin.requests
    assert unary.body[field] == default
    assert streamed.body[field] == default and streamed.body["stream"] is True
    assert capped.body[field] == 7  # the caller's own cap wins
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert not other & set(unary.body)  # one cap field, the one this API takes


async def test_a_prompt_beyond_the_context_window_is_refused_before_any_upstream_call(
    proxy, fresh_standin
) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    document = "Revenue grew in every region this quarter. " * 6000  # ~260 KB
    request = pb.GenerateRequest(model="compat-reasoner", messages=user(document))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "context window of 32768 tokens" in info.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.GenerateStream(
            pb.GenerateStreamRequest(model="compat-reasoner", messages=user(document)),
            timeout=10,
        ):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(
            pb.GenerateRequest(
                model="gpt-4o",
                messages=user("hi"),
                parameters=pb.GenerationParameters(max_tokens=200_000),
            ),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "context window of 128000 tokens" in info.value.details()
    assert fresh_standin.requests == []
    # The same document fits gpt-4o's 128k window and is sent.
    await stub.Generate(pb.GenerateRequest(model="gpt-4o", messages=user(document)), timeout=10)
    assert len(fresh_standin.requests) == 1


async def test_list_models_reports_every_context_window(proxy) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    listing = await stub.ListModels(pb.ListModelsRequest(), timeout=5)
    windows = {m.name: m.context_window for m in listing.models}
    assert windows == {
        "gpt-4o": 128_000,
        "claude-haiku-4-5": 200_000,
        "compat-reasoner": 32_768,
        "gone-model": 128_000,
        "gpt-4o-badkey": 128_000,
    }
