"""The frontier proxy in-process against the stand-in: both providers, unary and streamed,
exact cost, spans, and ListModels."""

from __future__ import annotations

from decimal import Decimal

import pytest
from frontier_fixtures import user
from support.frontier_standin import Reply, StandinUsage

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.runtime import attributes as attr

pytestmark = pytest.mark.timeout(30)


def per_mtok(tokens: int, rate: str) -> Decimal:
    return Decimal(tokens) * Decimal(rate) / Decimal(1_000_000)


async def collect(stream):  # type: ignore[no-untyped-def]
    deltas, reasoning, completes = [], [], []
    async for message in stream:
        if message.HasField("delta"):
            deltas.append(message.delta.text)
            reasoning.append(message.delta.reasoning_text)
        else:
            completes.append(message.complete)
    return "".join(deltas), "".join(reasoning), completes


# gpt-4o in genai-prices 0.2.3: input 2.5, cached input 1.25, output 10 USD per million tokens.
OPENAI_USAGE = StandinUsage(
    input_tokens=1000, cached_input_tokens=400, output_tokens=300, reasoning_tokens=120
)
OPENAI_COST = per_mtok(600, "2.5") + per_mtok(400, "1.25") + per_mtok(300, "10")


async def test_openai_unary_is_priced_exactly(proxy, fresh_standin, spans) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(
        text="Paris is the capital.", usage=OPENAI_USAGE, response_model="gpt-4o-2024-08-06"
    )
    _, stub = proxy
    params = pb.GenerationParameters(max_tokens=50, temperature=0.2)
    answer = await stub.Generate(
        pb.GenerateRequest(
            model="gpt-4o", messages=user("capital of France?", system="terse"), parameters=params
        ),
        timeout=10,
    )
    assert answer.text == "Paris is the capital."
    assert answer.provider == "openai"
    assert answer.model == "gpt-4o-2024-08-06"
    assert answer.finish_reason == pb.FINISH_REASON_STOP
    u = answer.usage
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens) == (
        1000,
        400,
        300,
        120,
    )
    assert OPENAI_COST == Decimal("0.0050")
    assert u.cost_usd == float(OPENAI_COST)

    (sent,) = fresh_standin.requests
    assert sent.headers["authorization"] == f"Bearer {fresh_standin.openai_key}"
    assert sent.body["model"] == "gpt-4o"
    assert sent.body["max_completion_tokens"] == 50
    assert sent.body["messages"][0] == {"role": "system", "content": "terse"}
    assert "stream" not in sent.body

    (span,) = [s for s in spans.get_finished_spans() if s.name == "chat gpt-4o"]
    a = span.attributes
    assert a[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attr.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[attr.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert a[attr.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 300
    assert a[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 400
    assert a[attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 120
    assert tuple(a[attr.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert a[attr.COST_USD] == float(OPENAI_COST)
    assert a[attr.GEN_AI_USAGE_COST] == float(OPENAI_COST)
    assert a[attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert a[attr.FRONTIER_ATTEMPTS] == 1
    assert a[attr.GEN_AI_REQUEST_MAX_TOKENS] == 50


async def test_openai_stream_uses_stream_usage_and_prices_like_unary(
    proxy, fresh_standin, spans
) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(text="one two three four five six", usage=OPENAI_USAGE)
    _, stub = proxy
    text, _, completes = await collect(
        stub.GenerateStream(
            pb.GenerateStreamRequest(model="gpt-4o", messages=user("count")), timeout=10
        )
    )
    assert text == "one two three four five six"
    (complete,) = completes
    assert complete.usage.cost_usd == float(OPENAI_COST)
    assert complete.usage.cached_input_tokens == 400
    assert complete.usage.reasoning_tokens == 120
    assert complete.finish_reason == pb.FINISH_REASON_STOP
    assert complete.timing.time_to_first_token_ms > 0
    assert complete.timing.total_ms >= complete.timing.time_to_first_token_ms
    (sent,) = fresh_standin.requests
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    (span,) = [s for s in spans.get_finished_spans() if s.name == "chat gpt-4o"]
    assert span.attributes[attr.FRONTIER_STREAM] is True
    assert span.attributes[attr.COST_USD] == float(OPENAI_COST)
    assert span.attributes[attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


# claude-haiku-4-5 in genai-prices 0.2.3: input 1, cache read 0.1, cache write 1.25, output 5.
ANTHROPIC_USAGE = StandinUsage(
    input_tokens=2000, cached_input_tokens=500, cache_write_tokens=300, output_tokens=400
)
ANTHROPIC_COST = (
    per_mtok(1200, "1") + per_mtok(500, "0.1") + per_mtok(300, "1.25") + per_mtok(400, "5")
)


async def test_anthropic_unary_sums_cache_tokens_and_prices_them(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(
        text="Bonjour.", reasoning_text="the user wants French", usage=ANTHROPIC_USAGE
    )
    _, stub = proxy
    answer = await stub.Generate(
        pb.GenerateRequest(
            model="claude-haiku-4-5", messages=user("greet me", system="Speak French.")
        ),
        timeout=10,
    )
    assert answer.text == "Bonjour."
    assert answer.reasoning_text == "the user wants French"
    assert answer.provider == "anthropic"
    assert answer.usage.input_tokens == 2000
    assert answer.usage.cached_input_tokens == 500
    assert answer.usage.cost_usd == float(ANTHROPIC_COST)
    (sent,) = fresh_standin.requests
    assert sent.headers["x-api-key"] == fresh_standin.anthropic_key
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["system"] == "Speak French."
    assert sent.body["messages"] == [{"role": "user", "content": "greet me"}]
    assert sent.body["max_tokens"] == 1024  # the catalog's default: Anthropic requires one


async def test_anthropic_stream_matches_unary_cost(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(
        text="alpha beta gamma", reasoning_text="think think", usage=ANTHROPIC_USAGE
    )
    _, stub = proxy
    text, reasoning, completes = await collect(
        stub.GenerateStream(
            pb.GenerateStreamRequest(model="claude-haiku-4-5", messages=user("go")), timeout=10
        )
    )
    assert text == "alpha beta gamma"
    assert reasoning == "think think"
    (complete,) = completes
    assert complete.usage.cost_usd == float(ANTHROPIC_COST)
    assert complete.usage.output_tokens == 400  # message_delta's cumulative count
    assert complete.provider == "anthropic"


async def test_max_tokens_cut_reports_length(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(text="a b c d e f g h")
    _, stub = proxy
    params = pb.GenerationParameters(max_tokens=3)
    for model in ("gpt-4o", "claude-haiku-4-5"):
        answer = await stub.Generate(
            pb.GenerateRequest(model=model, messages=user("x"), parameters=params), timeout=10
        )
        assert answer.finish_reason == pb.FINISH_REASON_LENGTH
        assert answer.text == "a b c"


async def test_compatible_endpoint_reasoning_priced_at_its_own_rate(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    usage = StandinUsage(
        input_tokens=100, cached_input_tokens=20, output_tokens=50, reasoning_tokens=30
    )
    fresh_standin.reply = Reply(text="42", reasoning_text="six times seven", usage=usage)
    expected = (
        per_mtok(80, "0.2") + per_mtok(20, "0.05") + per_mtok(20, "0.8") + per_mtok(30, "1.6")
    )
    _, stub = proxy
    unary = await stub.Generate(
        pb.GenerateRequest(model="compat-reasoner", messages=user("6*7?")), timeout=10
    )
    assert unary.reasoning_text == "six times seven"
    assert unary.provider == "vllm"
    assert unary.usage.cost_usd == float(expected)
    _, reasoning, (complete,) = await collect(
        stub.GenerateStream(
            pb.GenerateStreamRequest(model="compat-reasoner", messages=user("6*7?")), timeout=10
        )
    )
    assert reasoning == "six times seven"
    assert complete.usage.cost_usd == float(expected)
    first, second = fresh_standin.requests
    assert first.body["model"] == "my-org/reasoner-7b"
    assert "max_completion_tokens" not in first.body


async def test_empty_model_means_the_default(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    answer = await stub.Generate(pb.GenerateRequest(messages=user("hi")), timeout=10)
    assert answer.provider == "openai"
    assert fresh_standin.requests[0].body["model"] == "gpt-4o"


async def test_list_models_shows_catalog_prices(proxy) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    listing = await stub.ListModels(pb.ListModelsRequest(), timeout=5)
    models = {m.name: m for m in listing.models}
    assert set(models) == {
        "gpt-4o",
        "claude-haiku-4-5",
        "compat-reasoner",
        "gone-model",
        "gpt-4o-badkey",
    }
    gpt = models["gpt-4o"]
    assert (
        gpt.pricing.input_usd_per_million_tokens,
        gpt.pricing.output_usd_per_million_tokens,
    ) == (2.5, 10.0)
    assert gpt.pricing.cached_input_usd_per_million_tokens == 1.25
    assert gpt.context_window == 128000
    assert not gpt.pricing.estimated
    assert models["compat-reasoner"].context_window == 32768
    assert models["compat-reasoner"].provider == "vllm"
