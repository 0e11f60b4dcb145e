"""Each provider kind's wire format behind one interface (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from switchyard.frontier_proxy.catalog import CatalogModel, ProviderKind
from switchyard.frontier_proxy.completion import ChatCall, Completion, StreamDelta, StreamEnd
from switchyard.frontier_proxy.providers import anthropic_wire, openai_wire
from switchyard.frontier_proxy.providers.sse import SseEvent

__all__ = ["DIALECTS", "Dialect", "StreamFold"]


class StreamFold(Protocol):
    """Folds one SSE stream: each event may give a delta; `end()` gives the outcome."""

    chunks: int

    @property
    def done(self) -> bool: ...

    def feed(self, event: SseEvent) -> StreamDelta | None: ...

    def end(self) -> StreamEnd: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    path: str
    auth_headers: Callable[[str | None], dict[str, str]]
    body: Callable[[CatalogModel, ChatCall, bool], dict[str, Any]]
    parse: Callable[[Any], Completion]
    stream: Callable[[], StreamFold]


def _openai_body(field: str) -> Callable[[CatalogModel, ChatCall, bool], dict[str, Any]]:
    def body(model: CatalogModel, call: ChatCall, stream: bool) -> dict[str, Any]:
        return openai_wire.build_body(
            model.upstream_model, call, stream=stream, max_tokens_field=field
        )

    return body


def _anthropic_body(model: CatalogModel, call: ChatCall, stream: bool) -> dict[str, Any]:
    return anthropic_wire.build_body(
        model.upstream_model, call, stream=stream, default_max_tokens=model.default_max_tokens
    )


def _openai(field: str) -> Dialect:
    return Dialect(
        path=openai_wire.CHAT_PATH,
        auth_headers=openai_wire.auth_headers,
        body=_openai_body(field),
        parse=openai_wire.parse_completion,
        stream=openai_wire.OpenAIStream,
    )


DIALECTS: dict[ProviderKind, Dialect] = {
    # OpenAI's reasoning models refuse `max_tokens`; compatible servers widely lack the newer field.
    ProviderKind.OPENAI: _openai("max_completion_tokens"),
    ProviderKind.OPENAI_COMPATIBLE: _openai("max_tokens"),
    ProviderKind.ANTHROPIC: Dialect(
        path=anthropic_wire.MESSAGES_PATH,
        auth_headers=anthropic_wire.auth_headers,
        body=_anthropic_body,
        parse=anthropic_wire.parse_completion,
        stream=anthropic_wire.AnthropicStream,
    ),
}
