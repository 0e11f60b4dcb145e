"""Request validation and response conversion (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.frontier_proxy.completion import (
    CallTiming,
    Completion,
    FinishReason,
    PricedCompletion,
    TokenUsage,
    TurnRole,
)
from switchyard.frontier_proxy.conversion import chat_call, generate_response
from switchyard.runtime.errors import InvalidArgument


def msg(role: int, content: str = "x") -> pb.ChatMessage:
    return pb.ChatMessage(role=role, content=content)


def test_valid_request_converts() -> None:
    params = pb.GenerationParameters(max_tokens=5, temperature=0.0, top_p=1.0, stop=["\n"], seed=4)
    call = chat_call([msg(pb.ROLE_SYSTEM), msg(pb.ROLE_USER, "hi")], params)
    assert [t.role for t in call.turns] == [TurnRole.SYSTEM, TurnRole.USER]
    s = call.sampling
    assert (s.max_tokens, s.temperature, s.top_p, s.stop, s.seed) == (5, 0.0, 1.0, ("\n",), 4)
    unset = chat_call([msg(pb.ROLE_USER)], pb.GenerationParameters()).sampling
    assert (unset.max_tokens, unset.temperature, unset.top_p, unset.seed) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("messages", "params", "problem"),
    [
        ([], pb.GenerationParameters(), "at least one message"),
        ([msg(pb.ROLE_UNSPECIFIED)], pb.GenerationParameters(), "role"),
        ([msg(pb.ROLE_SYSTEM)], pb.GenerationParameters(), "USER or ASSISTANT"),
        ([msg(pb.ROLE_USER)], pb.GenerationParameters(max_tokens=0), "max_tokens"),
        ([msg(pb.ROLE_USER)], pb.GenerationParameters(temperature=2.5), "temperature"),
        ([msg(pb.ROLE_USER)], pb.GenerationParameters(top_p=0), "top_p"),
        ([msg(pb.ROLE_USER)], pb.GenerationParameters(stop=["a"] * 9), "stop"),
        ([msg(pb.ROLE_USER)], pb.GenerationParameters(stop=[""]), "stop"),
    ],
)
def test_invalid_requests(
    messages: list[pb.ChatMessage], params: pb.GenerationParameters, problem: str
) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        chat_call(messages, params)


def test_every_problem_reported_together() -> None:
    with pytest.raises(InvalidArgument) as info:
        chat_call([msg(pb.ROLE_UNSPECIFIED)], pb.GenerationParameters(temperature=3, top_p=2))
    assert info.value.message.count(";") >= 2


def test_response_conversion_and_timing() -> None:
    result = PricedCompletion(
        Completion(
            "m", "t", "r", FinishReason.TOOL_CALLS, "tool_calls", TokenUsage(10, 5, 2, 0, 1)
        ),
        Decimal("0.000123"),
        "openai",
        CallTiming(first_chunk_s=0.1, total_s=0.5),
    )
    response = generate_response(result)
    assert response.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    assert response.usage.cost_usd == 0.000123
    assert (response.usage.cached_input_tokens, response.usage.reasoning_tokens) == (2, 1)
    assert response.timing.time_to_first_token_ms == pytest.approx(100)
    assert response.timing.time_per_output_token_ms == pytest.approx(100)
    assert response.timing.total_ms == pytest.approx(500)
