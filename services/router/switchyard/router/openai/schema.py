"""The OpenAI Chat Completions wire shapes the HTTP door accepts and answers with.

Requests are validated with these models (a field the door cannot honour is refused, never
ignored); responses are built as plain dicts by `conversion` (cheaper on the hot path) and these
response models document them in the OpenAPI document (`openapi.py`); the unit tests check
that what `conversion` builds validates against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "HARMLESS_DEFAULTS",
    "UNSUPPORTED_FIELDS",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "ErrorResponse",
    "ModelList",
    "ModelObject",
    "RoutingExtension",
    "SwitchyardInfo",
    "TextPart",
    "UnsupportedField",
]

#: Fields real clients send that the door cannot honour: each is refused with a 400 naming it.
UNSUPPORTED_FIELDS: dict[str, str] = {
    "tools": "tool calling is not supported",
    "tool_choice": "tool calling is not supported",
    "parallel_tool_calls": "tool calling is not supported",
    "functions": "function calling is not supported",
    "function_call": "function calling is not supported",
    "logprobs": "log probabilities are not supported",
    "top_logprobs": "log probabilities are not supported",
    "logit_bias": "logit_bias is not supported",
    "response_format": "response_format (JSON mode, structured outputs) is not supported",
    "audio": "audio output is not supported",
    "modalities": "only text output is supported",
    "prediction": "predicted outputs are not supported",
    "presence_penalty": "presence_penalty is not supported",
    "frequency_penalty": "frequency_penalty is not supported",
    "web_search_options": "web search is not supported",
    "reasoning_effort": "reasoning_effort is not supported",
    "n": "only one choice per request (n = 1) is supported",
}
#: Values of refused fields that mean "off" and are accepted as such (clients send defaults).
HARMLESS_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "logprobs": (False, None),
    "top_logprobs": (None, 0),
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "parallel_tool_calls": (None, True),
    "tool_choice": (None, "none"),
    "tools": (None, []),
    "functions": (None, []),
    "modalities": (None, ["text"]),
    "response_format": (None, {"type": "text"}),
    "n": (None, 1),
}


class UnsupportedField(Exception):
    """A request set a field the door cannot honour (400 naming the field)."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextPart(_Strict):
    """A text content part; every other part type (images, audio, files) is refused."""

    type: Literal["text"]
    text: str


class ChatMessageIn(_Strict):
    """One turn. `developer` is read as `system`; tool and function turns are refused."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    #: Accepted for compatibility; not passed to the models.
    name: str | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class RoutingExtension(_Strict):
    """Per-request routing options (`extra_body={"switchyard": {...}}` in the SDKs)."""

    escalation_threshold: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="Escalate at or above this score instead of the configured threshold."
    )
    disallow_frontier: bool = Field(
        False, description="Never use a frontier target for this request, fallbacks included."
    )
    max_cost_usd: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Refuse any target whose estimated cost exceeds this many USD."
    )


class ChatCompletionRequest(_Strict):
    """`POST /v1/chat/completions` body: the fields the door honours."""

    model: str = Field(
        min_length=1,
        description="The routed name (the policy decides) or a logical target's name (forced).",
    )
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: Annotated[int, Field(ge=1, le=4_294_967_295)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=4_294_967_295)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=8)] | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    user: str | None = Field(None, description="Accepted for compatibility; not recorded.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    switchyard: RoutingExtension | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(k in UNSUPPORTED_FIELDS for k in data):
            return data
        kept = dict(data)
        for name, why in UNSUPPORTED_FIELDS.items():
            if name not in kept:
                continue
            value = kept.pop(name)
            if not any(
                value == off and type(value) is type(off) for off in HARMLESS_DEFAULTS.get(name, ())
            ):
                raise UnsupportedField(name, why)
        return kept

    @model_validator(mode="after")
    def _one_token_limit(self) -> ChatCompletionRequest:
        if (
            self.max_tokens is not None
            and self.max_completion_tokens is not None
            and self.max_tokens != self.max_completion_tokens
        ):
            raise ValueError("max_tokens and max_completion_tokens disagree; send one of them")
        return self


# ---- responses (documentation and tests; `conversion` builds them as dicts) ------------------


class Hop(BaseModel):
    kind: Literal["CLASSIFY", "GENERATE", "UNSPECIFIED"]
    service: str
    target: str
    model: str
    status: str
    latency_ms: float
    cost_usd: float
    input_tokens: int
    output_tokens: int


class Decision(BaseModel):
    target: str
    target_kind: Literal["LOCAL", "FRONTIER", "UNSPECIFIED"]
    backend: str
    model: str
    reason: str
    reason_detail: str
    escalation_score: float
    escalation_threshold: float
    estimated_cost_usd: float
    task_type: str = Field(description="The classifier's task type; empty when it was down.")
    complexity: float | None


class SwitchyardInfo(BaseModel):
    """What Switchyard adds to a completion: where it went, why, and what it cost."""

    request_id: str
    decision: Decision | None = None
    hops: list[Hop] | None = None
    total_cost_usd: float | None = None
    total_latency_ms: float | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int]
    completion_tokens_details: dict[str, int]
    cost_usd: float


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    reasoning_content: str | None = None


class Choice(BaseModel):
    index: Literal[0]
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice] = Field(min_length=1, max_length=1)
    usage: Usage
    switchyard: SwitchyardInfo


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None


class ChunkChoice(BaseModel):
    index: Literal[0]
    delta: Delta
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"] | None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One `data:` event of a stream (the stream ends with `data: [DONE]`)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice] = Field(max_length=1)
    usage: Usage | None = None
    switchyard: SwitchyardInfo | None = None


class ModelObject(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelObject]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorBody
