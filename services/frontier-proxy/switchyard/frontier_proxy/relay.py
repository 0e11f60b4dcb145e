"""The streamed body relay: one upstream SSE body in, text deltas out, then the stream's end.

`StreamRelay.next_delta()` reads the body until a network read carries text and returns it as
one delta (the events that arrive in one read are merged: under load this saves gRPC messages;
unloaded, each read holds one event), or None once the provider's terminal event (`[DONE]`,
`message_stop`) or the body's end has come. `end()` then gives the stream's outcome (model,
finish reason, usage), or raises if the stream ended early or malformed.

After the terminal event only the end of the HTTP body is left, normally in the same read. The
relay reads it (briefly) so the pool can reuse the connection: a response closed before its end
closes the connection, and the next call would pay a new TCP (and TLS) handshake.

Errors are the upstream's own (`httpx.TransportError`, `UpstreamStreamError`, `WireError`,
`StreamIncomplete`); the proxy classifies them (resilience/failures.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx

from switchyard.frontier_proxy.completion import StreamDelta, StreamEnd
from switchyard.frontier_proxy.providers.dialects import StreamFold
from switchyard.frontier_proxy.providers.sse import SseDecoder
from switchyard.frontier_proxy.providers.wire import UNEXPECTED_SHAPE, StreamIncomplete, WireError

__all__ = ["DRAIN_MAX_BYTES", "DRAIN_TIMEOUT_S", "StreamRelay"]

DRAIN_TIMEOUT_S = 0.25
DRAIN_MAX_BYTES = 65536


class StreamRelay:
    """Relays one streamed response; `aclose()` always (it closes the response)."""

    __slots__ = ("_body", "_clock", "_deadline", "_decoder", "_fold", "_response", "_state")

    def __init__(
        self,
        response: httpx.Response,
        fold: StreamFold,
        *,
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self._response = response
        self._body: AsyncIterator[bytes] = response.aiter_bytes()
        self._decoder = SseDecoder()
        self._fold = fold
        self._deadline = deadline
        self._clock = clock
        self._state = "reading"  # -> "terminal" (terminal event seen, body left) -> "ended"

    async def next_delta(self) -> StreamDelta | None:
        """The next read's text, or None when the stream has ended."""
        fold = self._fold
        decoder = self._decoder
        while self._state == "reading":
            try:
                data = await anext(self._body)
            except StopAsyncIteration:
                if (tail := decoder.flush()) is not None:
                    fold.feed(tail)
                self._state = "ended"
                return None
            text: list[str] = []
            reasoning: list[str] = []
            try:
                for event in decoder.feed_bytes(data):
                    delta = fold.feed(event)
                    if delta is not None:
                        text.append(delta.text)
                        reasoning.append(delta.reasoning_text)
                    if fold.done:
                        self._state = "terminal"
                        break
            except WireError:
                raise
            except UNEXPECTED_SHAPE as exc:
                raise WireError(f"unexpected event shape ({type(exc).__name__}: {exc})") from None
            if any(text) or any(reasoning):
                return StreamDelta("".join(text), "".join(reasoning))
        if self._state == "terminal":
            self._state = "ended"
            await self._drain()
        return None

    def end(self) -> StreamEnd:
        """The stream's outcome, once `next_delta()` returned None; raises if it is incomplete."""
        try:
            return self._fold.end()
        except (WireError, StreamIncomplete):
            raise
        except UNEXPECTED_SHAPE as exc:
            raise WireError(f"unexpected usage shape ({type(exc).__name__}: {exc})") from None

    async def aclose(self) -> None:
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:
            await aclose()
        await self._response.aclose()

    async def _drain(self) -> None:
        """Read what is left of the body, briefly; give up (the connection closes) if it drags."""
        left = DRAIN_MAX_BYTES
        remaining = self._deadline - self._clock()
        try:
            async with asyncio.timeout(max(0.0, min(DRAIN_TIMEOUT_S, remaining))):
                async for data in self._body:
                    left -= len(data)
                    if left < 0:
                        return
        except (TimeoutError, httpx.HTTPError):
            return
