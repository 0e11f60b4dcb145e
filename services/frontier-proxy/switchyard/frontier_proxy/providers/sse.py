"""Incremental decoder for server-sent events (the `text/event-stream` format).

Both OpenAI and Anthropic stream over SSE. The decoder is fed raw body bytes (`feed_bytes`) or
lines without their endings (`feed`) and returns complete events at each blank line, following
the WHATWG rules the two APIs rely on: `event:` names the event, `data:` lines are joined with
newlines, a single space after the colon is dropped, lines starting with `:` are comments.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseDecoder", "SseEvent"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event: its name (`message` when the stream names none) and its data."""

    event: str
    data: str


class SseDecoder:
    """Collects lines into events; `feed` returns the event a blank line completes, if any."""

    __slots__ = ("_data", "_event", "_partial")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._partial = b""

    def feed_bytes(self, chunk: bytes) -> list[SseEvent]:
        """Every event completed by `chunk` (raw body bytes, split anywhere)."""
        if self._partial:
            chunk = self._partial + chunk
        lines = chunk.split(b"\n")
        self._partial = lines.pop()
        events = []
        for raw in lines:
            # UTF-8 never has 0x0A inside a multi-byte character, so splitting first is safe.
            event = self.feed(raw.removesuffix(b"\r").decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data))
            self._event = ""
            self._data = []
            return event
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # `id` and `retry` are not used by either API; unknown fields are ignored by the spec.
        return None

    def flush(self) -> SseEvent | None:
        """The event left pending when the stream ended without its blank line, if any."""
        if self._partial:
            self.feed(self._partial.removesuffix(b"\r").decode("utf-8", "replace"))
            self._partial = b""
        return self.feed("")
