"""Protobuf <-> domain conversion for the inference contract (pure).

Requests are validated here: a malformed request is the caller's error (INVALID_ARGUMENT), and
it is refused before any upstream is called (and before any money is spent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.frontier_proxy.catalog import CatalogModel
from switchyard.frontier_proxy.completion import (
    CallTiming,
    ChatCall,
    ChatTurn,
    FinishReason,
    PricedCompletion,
    PricedEnd,
    Sampling,
    TokenUsage,
    TurnRole,
)
from switchyard.runtime.errors import InvalidArgument

__all__ = [
    "MAX_MESSAGES",
    "MAX_STOP_SEQUENCES",
    "chat_call",
    "complete_message",
    "generate_response",
    "model_info",
]

MAX_STOP_SEQUENCES = 8
MAX_MESSAGES = 4096

_ROLES = {
    pb.ROLE_SYSTEM: TurnRole.SYSTEM,
    pb.ROLE_USER: TurnRole.USER,
    pb.ROLE_ASSISTANT: TurnRole.ASSISTANT,
}
_FINISH = {
    FinishReason.STOP: pb.FINISH_REASON_STOP,
    FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
    FinishReason.CONTENT_FILTER: pb.FINISH_REASON_CONTENT_FILTER,
    FinishReason.TOOL_CALLS: pb.FINISH_REASON_TOOL_CALLS,
    FinishReason.UNSPECIFIED: pb.FINISH_REASON_UNSPECIFIED,
}


def chat_call(messages: Iterable[pb.ChatMessage], parameters: pb.GenerationParameters) -> ChatCall:
    """The domain call for a request's messages and parameters; raises `InvalidArgument`."""
    msgs = list(messages)
    problems: list[str] = []
    if not msgs:
        problems.append("messages: at least one message is required")
    if len(msgs) > MAX_MESSAGES:
        problems.append(f"messages: at most {MAX_MESSAGES} messages")
    turns: list[ChatTurn] = []
    for i, message in enumerate(msgs):
        role = _ROLES.get(message.role)
        if role is None:
            problems.append(f"messages[{i}].role: must be SYSTEM, USER or ASSISTANT")
            continue
        turns.append(ChatTurn(role, message.content))
    if msgs and not any(t.role is not TurnRole.SYSTEM for t in turns):
        problems.append("messages: at least one USER or ASSISTANT message is required")
    p = parameters
    max_tokens = p.max_tokens if p.HasField("max_tokens") else None
    if max_tokens is not None and max_tokens < 1:
        problems.append("parameters.max_tokens: must be >= 1 when set")
    temperature = p.temperature if p.HasField("temperature") else None
    if temperature is not None and not (math.isfinite(temperature) and 0 <= temperature <= 2):
        problems.append(f"parameters.temperature: must be in [0, 2], got {temperature}")
    top_p = p.top_p if p.HasField("top_p") else None
    if top_p is not None and not (math.isfinite(top_p) and 0 < top_p <= 1):
        problems.append(f"parameters.top_p: must be in (0, 1], got {top_p}")
    if len(p.stop) > MAX_STOP_SEQUENCES:
        problems.append(f"parameters.stop: at most {MAX_STOP_SEQUENCES} sequences")
    if any(not s for s in p.stop):
        problems.append("parameters.stop: sequences must not be empty")
    if problems:
        raise InvalidArgument("; ".join(problems))
    return ChatCall(
        turns=tuple(turns),
        sampling=Sampling(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=tuple(p.stop),
            seed=p.seed if p.HasField("seed") else None,
        ),
    )


def _usage(usage: TokenUsage, cost_usd: float) -> pb.Usage:
    return pb.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost_usd=cost_usd,
    )


def _timing(timing: CallTiming, output_tokens: int) -> pb.Timing:
    per_token = (
        (timing.total_s - timing.first_chunk_s) / (output_tokens - 1) if output_tokens > 1 else 0.0
    )
    return pb.Timing(
        time_to_first_token_ms=timing.first_chunk_s * 1000.0,
        time_per_output_token_ms=per_token * 1000.0,
        total_ms=timing.total_s * 1000.0,
    )


def generate_response(result: PricedCompletion) -> pb.GenerateResponse:
    c = result.completion
    return pb.GenerateResponse(
        model=c.model,
        text=c.text,
        reasoning_text=c.reasoning_text,
        finish_reason=_FINISH[c.finish_reason],
        usage=_usage(c.usage, float(result.cost_usd)),
        timing=_timing(result.timing, c.usage.output_tokens),
        provider=result.provider,
    )


def complete_message(result: PricedEnd) -> pb.GenerateStreamResponse:
    e = result.end
    return pb.GenerateStreamResponse(
        complete=pb.GenerationComplete(
            model=e.model,
            finish_reason=_FINISH[e.finish_reason],
            usage=_usage(e.usage, float(result.cost_usd)),
            timing=_timing(result.timing, e.usage.output_tokens),
            provider=result.provider,
        )
    )


def model_info(model: CatalogModel) -> pb.ModelInfo:
    prices = model.prices
    return pb.ModelInfo(
        name=model.name,
        provider=model.provider_name,
        context_window=model.context_window,
        pricing=pb.ModelPricing(
            input_usd_per_million_tokens=float(prices.input_usd_per_mtok),
            output_usd_per_million_tokens=float(prices.output_usd_per_mtok),
            cached_input_usd_per_million_tokens=float(prices.cached_input_usd_per_mtok),
            estimated=False,
        ),
    )
