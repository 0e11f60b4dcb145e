"""Split generated text into reasoning and answer with one of vLLM's reasoning parsers.

Reasoning models (the DeepSeek-R1 family, Qwen3, ...) write `<think> ... </think>` before the
answer. `ReasoningSplit` feeds each delta of one generation through the parser's streaming
extraction (so unary and streamed answers are split identically) and counts reasoning tokens
from the token ids. Without a parser (the default for SmolLM2) everything is answer text.

The parser is any object with vLLM's `ReasoningParser` interface; this module never imports
vLLM, so the split is unit-tested with the real parser classes and a small tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["ReasoningParserLike", "ReasoningSplit"]


class ReasoningParserLike(Protocol):
    def extract_reasoning_streaming(
        self,
        previous_text: str,
        current_text: str,
        delta_text: str,
        previous_token_ids: Sequence[int],
        current_token_ids: Sequence[int],
        delta_token_ids: Sequence[int],
    ) -> Any: ...

    def extract_content_ids(self, input_ids: list[int]) -> list[int]: ...

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool: ...


class ReasoningSplit:
    """Per-generation state: feed deltas, get (reasoning, answer) pieces; count tokens."""

    def __init__(self, parser: ReasoningParserLike | None) -> None:
        self._parser = parser
        self._text = ""
        self._token_ids: list[int] = []
        self._reasoning_chars = 0

    def feed(self, delta_text: str, delta_token_ids: Sequence[int]) -> tuple[str, str]:
        """Return the (reasoning_text, answer_text) carried by this delta."""
        previous_text, previous_ids = self._text, list(self._token_ids)
        self._text += delta_text
        self._token_ids.extend(delta_token_ids)
        if self._parser is None:
            return "", delta_text
        if not delta_text and not delta_token_ids:
            return "", ""
        message = self._parser.extract_reasoning_streaming(
            previous_text,
            self._text,
            delta_text,
            previous_ids,
            list(self._token_ids),
            list(delta_token_ids),
        )
        if message is None:
            return "", ""
        reasoning = getattr(message, "reasoning", None) or ""
        content = getattr(message, "content", None) or ""
        self._reasoning_chars += len(reasoning)
        return reasoning, content

    def reasoning_tokens(self) -> int:
        """Output tokens spent on reasoning, markers included (a subset of all output tokens)."""
        if self._parser is None or not self._token_ids:
            return 0
        ids = self._token_ids
        if self._parser.is_reasoning_end(ids):
            return len(ids) - len(self._parser.extract_content_ids(list(ids)))
        # Reasoning never closed (stopped by max_tokens): reasoning throughout, if any was seen.
        return len(ids) if self._reasoning_chars else 0
