"""Domain types of one chat completion, independent of any wire format or of gRPC.

The wire modules (`providers.openai_wire`, `providers.anthropic_wire`) turn HTTP bodies into
these, the proxy prices them (`PricedCompletion`, `PricedEnd`), and `conversion` turns them into
protobuf messages. Token counts follow the proto's convention: cached input
tokens are a subset of `input_tokens`, reasoning tokens a subset of `output_tokens`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "CallTiming",
    "ChatCall",
    "ChatTurn",
    "Completion",
    "FinishReason",
    "PricedCompletion",
    "PricedEnd",
    "Sampling",
    "StreamDelta",
    "StreamEnd",
    "TokenUsage",
    "TurnRole",
]


class TurnRole(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class FinishReason(enum.StrEnum):
    """Why generation ended, normalised across providers (the proto's `FinishReason`)."""

    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"
    UNSPECIFIED = "unspecified"


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: TurnRole
    content: str


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling controls; `None` leaves the provider's default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ChatCall:
    """What the caller asked for: the conversation and the sampling controls."""

    turns: tuple[ChatTurn, ...]
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts exactly as the provider reported them, normalised.

    `input_tokens` counts every prompt token, including `cached_input_tokens` (read from the
    provider's prompt cache) and `cache_write_tokens` (written to it, Anthropic only).
    `output_tokens` includes `reasoning_tokens`.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer (a unary call, or a stream once it has ended)."""

    model: str
    text: str
    reasoning_text: str
    finish_reason: FinishReason
    raw_finish_reason: str
    usage: TokenUsage


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """The next piece of generated text (answer or reasoning)."""

    text: str = ""
    reasoning_text: str = ""


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """What a stream reported once it ended: the model, finish reason and usage."""

    model: str
    finish_reason: FinishReason
    raw_finish_reason: str
    usage: TokenUsage


@dataclass(frozen=True, slots=True)
class CallTiming:
    """Seconds from the call's start to its first text chunk and to its end."""

    first_chunk_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class PricedCompletion:
    """A unary call's answer with its exact cost."""

    completion: Completion
    cost_usd: Decimal
    provider: str
    timing: CallTiming


@dataclass(frozen=True, slots=True)
class PricedEnd:
    """A stream's end with its exact cost."""

    end: StreamEnd
    cost_usd: Decimal
    provider: str
    timing: CallTiming
