"""The Anthropic Messages wire format.

Request: `POST {base_url}/messages` with `x-api-key` and `anthropic-version: 2023-06-01`.
System turns go to the top-level `system` field; `max_tokens` is required (the catalog's
default fills it). `seed` has no Anthropic equivalent and is not sent.
Usage: Anthropic's `input_tokens` excludes cache reads (`cache_read_input_tokens`) and cache
writes (`cache_creation_input_tokens`); they are added up here so `TokenUsage.input_tokens` is
the whole prompt, as for OpenAI. Anthropic reports no separate reasoning-token count (thinking
is billed as output), so `reasoning_tokens` stays 0; thinking text goes to `reasoning_text`.
Streaming: `message_start` carries the model and input usage, `content_block_delta` carries
`text_delta` / `thinking_delta`, `message_delta` carries the stop reason and cumulative usage,
`message_stop` ends the stream; `error` events (e.g. `overloaded_error`) end it in error.
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
    TurnRole,
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
    "API_VERSION",
    "ERROR_STATUS",
    "MESSAGES_PATH",
    "AnthropicStream",
    "auth_headers",
    "build_body",
    "finish_reason",
    "parse_completion",
    "parse_usage",
]

MESSAGES_PATH = "/messages"
API_VERSION = "2023-06-01"

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}

# Anthropic error types and the HTTP status each has outside a stream.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def finish_reason(raw: str | None) -> FinishReason:
    return _FINISH.get(raw or "", FinishReason.UNSPECIFIED)


def auth_headers(api_key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": API_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


def build_body(
    upstream_model: str, call: ChatCall, *, stream: bool, default_max_tokens: int
) -> dict[str, Any]:
    system = [t.content for t in call.turns if t.role is TurnRole.SYSTEM]
    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": call.sampling.max_tokens or default_max_tokens,
        "messages": [
            {"role": t.role.value, "content": t.content}
            for t in call.turns
            if t.role is not TurnRole.SYSTEM
        ],
    }
    if system:
        body["system"] = "\n\n".join(system)
    s = call.sampling
    if s.temperature is not None:
        body["temperature"] = s.temperature
    if s.top_p is not None:
        body["top_p"] = s.top_p
    if s.stop:
        body["stop_sequences"] = list(s.stop)
    if stream:
        body["stream"] = True
    return body


def parse_usage(usage: Any) -> TokenUsage:
    if not isinstance(usage, Mapping):
        raise WireError("upstream usage is not an object")
    cache_read = as_int(usage, "cache_read_input_tokens")
    cache_write = as_int(usage, "cache_creation_input_tokens")
    return TokenUsage(
        input_tokens=as_int(usage, "input_tokens") + cache_read + cache_write,
        output_tokens=as_int(usage, "output_tokens"),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def parse_completion(body: Any) -> Completion:
    if not isinstance(body, Mapping):
        raise WireError("upstream answer is not a JSON object")
    content = body.get("content")
    if not isinstance(content, list):
        raise WireError("upstream answer has no content list")
    if "usage" not in body:
        raise WireError("upstream answer has no usage; it cannot be priced")
    text: list[str] = []
    reasoning: list[str] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text.append(block["text"])
        elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            reasoning.append(block["thinking"])
    raw_finish = str(body.get("stop_reason") or "")
    return Completion(
        model=str(body.get("model") or ""),
        text="".join(text),
        reasoning_text="".join(reasoning),
        finish_reason=finish_reason(raw_finish),
        raw_finish_reason=raw_finish,
        usage=parse_usage(body["usage"]),
    )


class AnthropicStream:
    """Folds the events of one streamed message; `feed` returns each text delta."""

    __slots__ = ("_done", "_model", "_raw_finish", "_started", "_usage", "chunks")

    def __init__(self) -> None:
        self._model = ""
        self._raw_finish = ""
        self._usage: dict[str, Any] = {}
        self._started = False
        self._done = False
        self.chunks = 0

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SseEvent) -> StreamDelta | None:
        if not event.data:
            return None
        payload = load_json(event.data)
        if not isinstance(payload, Mapping):
            raise WireError("upstream stream event is not a JSON object")
        kind = payload.get("type") or event.event
        self.chunks += 1
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, Mapping):
                raise WireError("content_block_delta without delta")
            dtype = delta.get("type")
            if dtype == "text_delta" and isinstance(delta.get("text"), str):
                return StreamDelta(text=delta["text"])
            if dtype == "thinking_delta" and isinstance(delta.get("thinking"), str):
                return StreamDelta(reasoning_text=delta["thinking"])
            return None
        if kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, Mapping):
                if block.get("type") == "text" and block.get("text"):
                    return StreamDelta(text=str(block["text"]))
                if block.get("type") == "thinking" and block.get("thinking"):
                    return StreamDelta(reasoning_text=str(block["thinking"]))
            return None
        if kind == "message_start":
            message = payload.get("message")
            if not isinstance(message, Mapping):
                raise WireError("message_start without message")
            self._started = True
            self._model = str(message.get("model") or "")
            usage = message.get("usage")
            if isinstance(usage, Mapping):
                self._usage.update({k: v for k, v in usage.items() if v is not None})
            return None
        if kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, Mapping) and delta.get("stop_reason"):
                self._raw_finish = str(delta["stop_reason"])
            usage = payload.get("usage")
            if isinstance(usage, Mapping):
                # Counts in message_delta are cumulative: they replace message_start's.
                self._usage.update({k: v for k, v in usage.items() if v is not None})
            return None
        if kind == "message_stop":
            self._done = True
            return None
        if kind == "error":
            error = payload.get("error")
            etype = str(error.get("type") or "error") if isinstance(error, Mapping) else "error"
            message = error.get("message") if isinstance(error, Mapping) else None
            raise UpstreamStreamError(etype, str(message or etype), ERROR_STATUS.get(etype, 500))
        # ping, content_block_stop and event types added later carry nothing we need.
        return None

    def end(self) -> StreamEnd:
        if not self._done:
            raise StreamIncomplete(
                f"stream ended without message_stop after {self.chunks} event(s)"
            )
        if not self._started:
            raise WireError("stream ended without message_start; it cannot be priced")
        return StreamEnd(
            model=self._model,
            finish_reason=finish_reason(self._raw_finish),
            raw_finish_reason=self._raw_finish,
            usage=parse_usage(self._usage),
        )
