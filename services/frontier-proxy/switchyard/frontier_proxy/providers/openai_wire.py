"""The OpenAI Chat Completions wire format (OpenAI itself and OpenAI-compatible servers).

Request: `POST {base_url}/chat/completions` with `Authorization: Bearer <key>`. Streaming sets
`stream: true` and `stream_options: {"include_usage": true}`, so the stream carries one last
chunk with empty `choices` and the whole request's `usage` before `data: [DONE]`.
Usage: `prompt_tokens` (cached ones included, `prompt_tokens_details.cached_tokens`),
`completion_tokens` (reasoning included, `completion_tokens_details.reasoning_tokens`).
Reasoning text of OpenAI-compatible reasoning servers (vLLM, DeepSeek, OpenRouter) arrives as
`reasoning_content` or `reasoning` beside `content`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchyard.frontier_proxy.completion import (
    ChatCall,
    Completion,
    FinishReason,
    StreamDelta,
    StreamEnd,
    TokenUsage,
)
from switchyard.frontier_proxy.providers.sse import SseEvent
from switchyard.frontier_proxy.providers.wire import (
    StreamIncomplete,
    UpstreamStreamError,
    WireError,
    as_int,
    load_json,
)

__all__ = [
    "CHAT_PATH",
    "OpenAIStream",
    "auth_headers",
    "build_body",
    "finish_reason",
    "parse_completion",
    "parse_usage",
]

CHAT_PATH = "/chat/completions"

_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
}


def finish_reason(raw: str | None) -> FinishReason:
    return _FINISH.get(raw or "", FinishReason.UNSPECIFIED)


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def build_body(
    upstream_model: str, call: ChatCall, *, stream: bool, max_tokens_field: str
) -> dict[str, Any]:
    """The JSON body. `max_tokens_field` is `max_completion_tokens` for OpenAI (its reasoning
    models refuse `max_tokens`) and `max_tokens` for OpenAI-compatible servers."""
    body: dict[str, Any] = {
        "model": upstream_model,
        "messages": [{"role": t.role.value, "content": t.content} for t in call.turns],
    }
    s = call.sampling
    if s.max_tokens is not None:
        body[max_tokens_field] = s.max_tokens
    if s.temperature is not None:
        body["temperature"] = s.temperature
    if s.top_p is not None:
        body["top_p"] = s.top_p
    if s.stop:
        body["stop"] = list(s.stop)
    if s.seed is not None:
        body["seed"] = s.seed
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def parse_usage(usage: Mapping[str, Any]) -> TokenUsage:
    if not isinstance(usage, Mapping):
        raise WireError("upstream usage is not an object")
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    result = TokenUsage(
        input_tokens=as_int(usage, "prompt_tokens"),
        output_tokens=as_int(usage, "completion_tokens"),
        cached_input_tokens=as_int(prompt_details, "cached_tokens"),
        reasoning_tokens=as_int(completion_details, "reasoning_tokens"),
    )
    if result.cached_input_tokens > result.input_tokens:
        raise WireError("upstream reported more cached tokens than prompt tokens")
    if result.reasoning_tokens > result.output_tokens:
        raise WireError("upstream reported more reasoning tokens than completion tokens")
    return result


def _reasoning(fields: Mapping[str, Any]) -> str:
    value = fields.get("reasoning_content")
    if value is None:
        value = fields.get("reasoning")
    return value if isinstance(value, str) else ""


def parse_completion(body: Any) -> Completion:
    """A non-streamed answer."""
    if not isinstance(body, Mapping):
        raise WireError("upstream answer is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise WireError("upstream answer has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise WireError("upstream answer's choice has no message")
    usage = body.get("usage")
    if usage is None:
        raise WireError("upstream answer has no usage; it cannot be priced")
    raw_finish = str(choice.get("finish_reason") or "")
    content = message.get("content")
    return Completion(
        model=str(body.get("model") or ""),
        text=content if isinstance(content, str) else "",
        reasoning_text=_reasoning(message),
        finish_reason=finish_reason(raw_finish),
        raw_finish_reason=str(raw_finish),
        usage=parse_usage(usage),
    )


class OpenAIStream:
    """Folds the chunks of one streamed completion; `feed` returns each text delta."""

    __slots__ = ("_done", "_model", "_raw_finish", "_usage", "chunks")

    def __init__(self) -> None:
        self._model = ""
        self._raw_finish = ""
        self._usage: TokenUsage | None = None
        self._done = False
        self.chunks = 0

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SseEvent) -> StreamDelta | None:
        data = event.data
        if data == "[DONE]":
            self._done = True
            return None
        if not data:
            return None
        chunk = load_json(data)
        if not isinstance(chunk, Mapping):
            raise WireError("upstream stream chunk is not a JSON object")
        error = chunk.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, Mapping) else str(error)
            kind = str(error.get("type") or "") if isinstance(error, Mapping) else ""
            code = error.get("code") if isinstance(error, Mapping) else None
            status = code if isinstance(code, int) else 500
            raise UpstreamStreamError(kind or "error", str(message or "stream error"), status)
        self.chunks += 1
        if not self._model and isinstance(chunk.get("model"), str):
            self._model = chunk["model"]
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = parse_usage(usage)
        choices = chunk.get("choices")
        if not choices:
            return None
        choice = choices[0]
        if not isinstance(choice, Mapping):
            raise WireError("upstream stream choice is not an object")
        if choice.get("finish_reason"):
            self._raw_finish = str(choice["finish_reason"])
        delta = choice.get("delta")
        if not isinstance(delta, Mapping):
            return None
        content = delta.get("content")
        text = content if isinstance(content, str) else ""
        reasoning = _reasoning(delta)
        if text or reasoning:
            return StreamDelta(text=text, reasoning_text=reasoning)
        return None

    def end(self) -> StreamEnd:
        """The stream's outcome; raises if it ended early or without usage."""
        if not self._done:
            raise StreamIncomplete(f"stream ended without [DONE] after {self.chunks} chunk(s)")
        if self._usage is None:
            raise WireError(
                "stream ended without usage (the upstream ignored stream_options.include_usage);"
                " it cannot be priced"
            )
        return StreamEnd(
            model=self._model,
            finish_reason=finish_reason(self._raw_finish),
            raw_finish_reason=self._raw_finish,
            usage=self._usage,
        )
