"""Pure conversions between the inference contract and the engine (no engine, no I/O).

Validates a request (bad input -> `InvalidArgument`, unknown model -> `NotFound`), turns chat
messages into the role/content dicts a chat template takes, resolves sampling parameters against
the context window, and maps the engine's finish reasons onto `FinishReason`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.runtime.errors import InvalidArgument, NotFound, quote

__all__ = [
    "MAX_STOP_SEQUENCES",
    "MAX_STOP_SEQUENCE_CHARS",
    "ChatPlan",
    "SamplingSpec",
    "finish_reason",
    "plan_chat",
    "resolve_max_tokens",
]

MAX_STOP_SEQUENCES = 8
MAX_STOP_SEQUENCE_CHARS = 256

_ROLES = {
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
}

# vLLM's CompletionOutput.finish_reason values -> the contract's enum.
_FINISH_REASONS = {
    "stop": pb.FINISH_REASON_STOP,
    "length": pb.FINISH_REASON_LENGTH,
    "abort": pb.FINISH_REASON_ABORTED,
    "tool_calls": pb.FINISH_REASON_TOOL_CALLS,
    "content_filter": pb.FINISH_REASON_CONTENT_FILTER,
}


@dataclass(frozen=True, slots=True)
class SamplingSpec:
    """Validated sampling controls; None means "the model's default"."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ChatPlan:
    """A validated request: the model name, template-ready messages, sampling controls."""

    model: str
    messages: tuple[dict[str, str], ...]
    sampling: SamplingSpec


def _sampling(params: pb.GenerationParameters, context_window: int) -> SamplingSpec:
    problems: list[str] = []
    max_tokens = params.max_tokens if params.HasField("max_tokens") else None
    if max_tokens is not None and not 1 <= max_tokens <= context_window:
        problems.append(f"max_tokens must be between 1 and {context_window} (got {max_tokens})")
    temperature = params.temperature if params.HasField("temperature") else None
    if temperature is not None and not (math.isfinite(temperature) and 0 <= temperature <= 2):
        problems.append(f"temperature must be between 0 and 2 (got {temperature})")
    top_p = params.top_p if params.HasField("top_p") else None
    if top_p is not None and not (math.isfinite(top_p) and 0 < top_p <= 1):
        problems.append(f"top_p must be in (0, 1] (got {top_p})")
    stop = tuple(params.stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        problems.append(f"at most {MAX_STOP_SEQUENCES} stop sequences (got {len(stop)})")
    for i, s in enumerate(stop):
        if not s:
            problems.append(f"stop[{i}] is empty")
        elif len(s) > MAX_STOP_SEQUENCE_CHARS:
            problems.append(f"stop[{i}] is longer than {MAX_STOP_SEQUENCE_CHARS} characters")
    seed = params.seed if params.HasField("seed") else None
    if problems:
        raise InvalidArgument("; ".join(problems))
    return SamplingSpec(
        max_tokens=max_tokens,
        # float32 on the wire: round so 0.7 means 0.7, not 0.699999988079071.
        temperature=None if temperature is None else round(temperature, 6),
        top_p=None if top_p is None else round(top_p, 6),
        stop=stop,
        seed=seed,
    )


def plan_chat(
    model: str,
    messages: list[pb.ChatMessage] | tuple[pb.ChatMessage, ...],
    parameters: pb.GenerationParameters,
    *,
    served_model: str,
    context_window: int,
) -> ChatPlan:
    """Validate one Generate / GenerateStream request against this backend."""
    if model and model != served_model:
        raise NotFound(
            f"model {quote(model)} is not served here (this backend serves {served_model!r})"
        )
    if not messages:
        raise InvalidArgument("messages must hold at least one message")
    turns: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise InvalidArgument(f"messages[{i}].role must be system, user or assistant")
        turns.append({"role": role, "content": message.content})
    return ChatPlan(served_model, tuple(turns), _sampling(parameters, context_window))


def resolve_max_tokens(
    requested: int | None, *, prompt_tokens: int, context_window: int, default_max_tokens: int
) -> int:
    """max_tokens for the engine: the request's, or the default capped by what the window leaves.

    A prompt that leaves no room, or a requested max_tokens that does not fit, is INVALID_ARGUMENT.
    """
    room = context_window - prompt_tokens
    if room < 1:
        raise InvalidArgument(
            f"the prompt is {prompt_tokens} tokens; this model's context window is "
            f"{context_window} tokens"
        )
    if requested is None:
        return min(default_max_tokens, room)
    if requested > room:
        raise InvalidArgument(
            f"prompt ({prompt_tokens} tokens) + max_tokens ({requested}) exceeds the context "
            f"window ({context_window} tokens); ask for at most {room}"
        )
    return requested


def finish_reason(engine_reason: str | None) -> int:
    """The contract's FinishReason for an engine finish reason (None: unspecified)."""
    if engine_reason is None:
        return pb.FINISH_REASON_UNSPECIFIED
    return _FINISH_REASONS.get(engine_reason, pb.FINISH_REASON_UNSPECIFIED)
