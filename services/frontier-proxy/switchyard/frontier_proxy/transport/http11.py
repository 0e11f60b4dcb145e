"""One HTTP/1.1 client connection, its responses parsed by llhttp (through httptools).

httpcore's `AsyncHTTP11Connection` parses with h11, in pure Python: measured alone, one POST
and its JSON answer over a kept-alive local connection cost 0.89 ms of CPU through it and 0.15
ms written and read by hand (docs/benchmarks.md, "The HTTP client"); h11's per-event work is
most of the frontier proxy's cost per call after gRPC's own. `Http11Connection` is a drop-in
for it in `pool.ConnectionPool`: the same methods the pool and the transport call
(`handle_async_request`, `is_available`, `is_idle`, `has_expired`, `aclose`), the same
exceptions (httpcore's, which the transport maps to httpx's), over the same network streams
(`network.AsyncioNetworkStream`, TCP or TLS). What h11 checked is still checked:

- the request: a Host header, no CR or LF in a header (no header injection), a body that
  matches its Content-Length, chunked framing when the headers ask for it;
- the response: llhttp's strict parsing (a malformed status line, header or chunk is a
  `RemoteProtocolError`), a head of at most `MAX_HEAD_BYTES`, a body that ends where its
  framing says (Content-Length, chunked, or the connection's close when neither is given), an
  upstream that closes early (`RemoteProtocolError`, as h11 raises it);
- keep-alive: a connection is reused only after a response read to its end that did not ask
  to close, with nothing unasked after it, and not past `keepalive_expiry`. A response closed
  before its end, any error and any cancellation close the connection.

Informational (1xx) responses are skipped. A HEAD response is taken as bodiless and its
connection is not reused (llhttp cannot be told the request's method).
"""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncIterator

import httpcore
import httptools

__all__ = ["MAX_HEAD_BYTES", "Http11Connection"]

#: A response head (status line and headers) longer than this is refused (h11's limit is 16 KiB).
MAX_HEAD_BYTES = 64 * 1024
_READ_SIZE = 64 * 1024


class _State(enum.Enum):
    IDLE = "idle"
    ACTIVE = "active"
    CLOSED = "closed"


class _Message:
    """httptools' callbacks for one response: head, body parts, completion."""

    __slots__ = (
        "body",
        "complete",
        "extra",
        "headers",
        "head_bytes",
        "headers_done",
        "keep_alive",
        "parser",
        "reason",
        "started",
    )

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0  # of the status line and headers, informational answers' included
        self.headers_done = False
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.started = 0  # messages begun: a second one is bytes nobody asked for
        self.extra = False

    def on_message_begin(self) -> None:
        self.started += 1
        if self.complete:
            self.extra = True

    def on_status(self, status: bytes) -> None:
        self.reason += status
        self.head_bytes += len(status) + 15

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if not self.headers_done:  # trailers of a chunked body are not headers
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # informational: dropped, the final response follows on the same connection
            self.reason, self.headers = b"", []
            return
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True
            # llhttp clears its flags once the message is done: ask now
            self.keep_alive = self.parser.should_keep_alive()

    def take_body(self) -> list[bytes]:
        parts, self.body = self.body, []
        return parts


def _check_header(name: bytes, value: bytes) -> None:
    if not name or b":" in name or b"\r" in name or b"\n" in name or b" " in name:
        raise httpcore.LocalProtocolError(f"illegal header name {name!r}")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise httpcore.LocalProtocolError(f"illegal value for header {name!r}")


class Http11Connection:
    """One connection to `origin` over `stream`; one request at a time."""

    __slots__ = ("_expire_at", "_keepalive_expiry", "_origin", "_state", "_stream")

    def __init__(
        self,
        *,
        origin: httpcore.Origin,
        stream: httpcore.AsyncNetworkStream,
        keepalive_expiry: float | None = None,
    ) -> None:
        self._origin = origin
        self._stream = stream
        self._keepalive_expiry = keepalive_expiry
        self._state = _State.IDLE
        self._expire_at: float | None = None

    # --- what the pool asks -------------------------------------------------------------------

    def is_available(self) -> bool:
        return self._state is _State.IDLE

    def is_idle(self) -> bool:
        return self._state is _State.IDLE

    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    def has_expired(self) -> bool:
        if self._expire_at is not None and time.monotonic() > self._expire_at:
            return True
        # an idle connection the server closed (or sent something unasked on) is done
        return self._state is _State.IDLE and bool(self._stream.get_extra_info("is_readable"))

    async def aclose(self) -> None:
        self._state = _State.CLOSED
        await self._stream.aclose()

    # --- one request --------------------------------------------------------------------------

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if self._state is not _State.IDLE:
            raise httpcore.ConnectionNotAvailable()
        self._state = _State.ACTIVE
        self._expire_at = None
        timeouts = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")
        try:
            await self._send(request, timeouts.get("write"))
            message = await self._receive_head(read_timeout)
        except BaseException:
            await self.aclose()
            raise
        parser = message.parser
        version = b"HTTP/1.0" if parser.get_http_version() == "1.0" else b"HTTP/1.1"
        head_only = request.method.upper() == b"HEAD"
        return httpcore.Response(
            status=parser.get_status_code(),
            headers=message.headers,
            content=_Body(self, message, read_timeout, head_only=head_only),
            extensions={
                "http_version": version,
                "reason_phrase": message.reason,
                "network_stream": self._stream,
            },
        )

    async def _send(self, request: httpcore.Request, timeout: float | None) -> None:
        lines = [request.method, b" ", request.url.target, b" HTTP/1.1\r\n"]
        host = chunked = False
        length: int | None = None
        for name, value in request.headers:
            _check_header(name, value)
            lower = name.lower()
            if lower == b"host":
                host = True
            elif lower == b"content-length":
                if not value.strip().isdigit():
                    raise httpcore.LocalProtocolError(f"illegal Content-Length {value!r}")
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = value.strip().lower() == b"chunked"
            lines += [name, b": ", value, b"\r\n"]
        if not host:
            raise httpcore.LocalProtocolError("missing mandatory Host: header")
        lines.append(b"\r\n")
        head = b"".join(lines)
        stream = request.stream
        if isinstance(stream, bytes | bytearray):  # pragma: no cover - httpcore wraps bytes
            parts: list[bytes] = [bytes(stream)]
        else:
            parts = [part async for part in stream]  # type: ignore[union-attr]
        sent = 0
        if chunked:
            framed = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p]
            await self._stream.write(head + b"".join(framed) + b"0\r\n\r\n", timeout)
            return
        for part in parts:
            sent += len(part)
        if length is None and sent:
            raise httpcore.LocalProtocolError("a request body needs Content-Length or chunked")
        if length is not None and sent != length:
            raise httpcore.LocalProtocolError(
                f"request body of {sent} bytes where Content-Length says {length}"
            )
        await self._stream.write(head + b"".join(parts), timeout)

    async def _receive_head(self, timeout: float | None) -> _Message:
        message = _Message()
        received = 0
        while not message.headers_done:
            data = await self._stream.read(_READ_SIZE, timeout)
            if not data:
                if received == 0:
                    raise httpcore.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                raise httpcore.RemoteProtocolError(
                    "peer closed connection without sending a complete response head"
                )
            received += len(data)
            _feed(message, data)
            if message.head_bytes > MAX_HEAD_BYTES or (
                not message.headers_done and received > MAX_HEAD_BYTES
            ):
                raise httpcore.RemoteProtocolError(
                    f"response head longer than {MAX_HEAD_BYTES} bytes"
                )
        return message

    def _finished(self, message: _Message, *, reusable: bool) -> None:
        """The response was read to its end: the connection is idle again, or done."""
        if reusable and not message.extra and message.keep_alive and self._state is _State.ACTIVE:
            self._state = _State.IDLE
            if self._keepalive_expiry is not None:
                self._expire_at = time.monotonic() + self._keepalive_expiry
        else:
            self._state = _State.CLOSED


def _feed(message: _Message, data: bytes) -> None:
    try:
        message.parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        raise httpcore.RemoteProtocolError("the upstream switched protocols") from None
    except httptools.HttpParserError as exc:
        if message.complete:  # bytes after a whole response: it stands, the connection not
            message.extra = True
            return
        raise httpcore.RemoteProtocolError(f"malformed response: {exc}") from exc


def _until_close(message: _Message) -> bool:
    """Whether the body's end is the connection's close (neither a length nor chunks)."""
    for name, value in message.headers:
        lower = name.lower()
        if lower == b"content-length":
            return False
        if lower == b"transfer-encoding" and b"chunked" in value.lower():
            return False
    return True


class _Body:
    """A response's body as it arrives; closing it early closes the connection."""

    __slots__ = ("_connection", "_done", "_head_only", "_message", "_timeout")

    def __init__(
        self,
        connection: Http11Connection,
        message: _Message,
        timeout: float | None,
        *,
        head_only: bool,
    ) -> None:
        self._connection = connection
        self._message = message
        self._timeout = timeout
        self._head_only = head_only
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        message = self._message
        connection = self._connection
        if self._head_only:
            self._done = True
            connection._finished(message, reusable=False)
            return
        try:
            for part in message.take_body():
                yield part
            while not message.complete:
                data = await connection._stream.read(_READ_SIZE, self._timeout)
                if not data:
                    if _until_close(message):
                        break  # the close is the body's end; nothing to reuse
                    raise httpcore.RemoteProtocolError(
                        "peer closed connection without sending complete message body"
                    )
                _feed(message, data)
                for part in message.take_body():
                    yield part
        except BaseException:
            await connection.aclose()
            raise
        self._done = True
        connection._finished(message, reusable=message.complete)
        if connection.is_closed():
            await connection._stream.aclose()

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            await self._connection.aclose()  # not read to its end: not reusable
