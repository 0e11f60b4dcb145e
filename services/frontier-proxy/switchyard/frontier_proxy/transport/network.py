"""httpcore's network backend on plain asyncio, instead of anyio.

httpx's default transport reaches sockets through httpcore's anyio backend. Profiling the
proxy (docs/services/frontier-proxy.md) showed that layer's per-call costs on the streaming
path: every socket read opens an anyio cancel scope inside two context managers, and before
every request the pool asks each pooled connection whether it has expired, which makes anyio
build a dictionary of socket attributes and `select` the socket.

This backend implements httpcore's public `AsyncNetworkBackend` / `AsyncNetworkStream`
interfaces on an `asyncio.Protocol` of its own: received bytes wait in the protocol's buffer, a
read takes them (one `await` only when nothing is buffered, with an `asyncio.timeout` only when
httpcore passes a timeout), and an idle connection counts as closed by the server when its
buffer holds bytes nobody asked for (say a 408 sent before closing), it saw EOF, or its
transport is closing. TLS goes through `loop.start_tls`. Errors are raised as httpcore's
exception types, which the transport maps to httpx's (`httpx.ConnectError`, `httpx.ReadTimeout`,
...), as with the default backend.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any

import httpcore

__all__ = ["AsyncioNetworkBackend", "AsyncioNetworkStream"]

_SocketOption = Any  # httpcore's SOCKET_OPTION: the arguments of one `setsockopt` call

# Reading pauses while this much is buffered unread, and resumes below the low mark.
_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18


class _SocketProtocol(asyncio.Protocol):
    """One connection's receive buffer and flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.error: Exception | None = None
        self.reading_paused = False
        self.writing_paused = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # for the stream

    def _wake_reader(self) -> None:
        waiter, self._data_waiter = self._data_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_for_data(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._data_waiter = waiter
        try:
            await waiter
        finally:
            self._data_waiter = None

    async def wait_for_drain(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiter = waiter
        try:
            await waiter
        finally:
            self._drain_waiter = None

    def take(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` buffered bytes (a received chunk as it came when it fits)."""
        chunks = self.chunks
        first = chunks.popleft()
        if len(first) > max_bytes:
            chunks.appendleft(first[max_bytes:])
            first = first[:max_bytes]
        elif chunks and len(first) + len(chunks[0]) <= max_bytes:
            parts = [first]
            size = len(first)
            while chunks and size + len(chunks[0]) <= max_bytes:
                part = chunks.popleft()
                parts.append(part)
                size += len(part)
            first = b"".join(parts)
        self.buffered -= len(first)
        if self.reading_paused and self.buffered < _LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return first


class AsyncioNetworkStream(httpcore.AsyncNetworkStream):
    """One connection (TCP, or TLS over it) as httpcore sees it."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: _SocketProtocol) -> None:
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.chunks:
            if protocol.eof:
                return self._at_eof()
            try:
                if timeout is None:
                    await protocol.wait_for_data()
                else:
                    async with asyncio.timeout(timeout):
                        await protocol.wait_for_data()
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading from the upstream") from None
            if not protocol.chunks:
                return self._at_eof()
        return protocol.take(max_bytes)

    def _at_eof(self) -> bytes:
        error = self._protocol.error
        if error is not None:
            raise httpcore.ReadError(str(error) or type(error).__name__) from error
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        transport = protocol.transport
        if transport is None or transport.is_closing():
            error = protocol.error
            raise httpcore.WriteError(
                str(error) if error is not None else "the connection is closed"
            ) from error
        transport.write(buffer)
        if not protocol.writing_paused:
            return
        try:
            if timeout is None:
                await protocol.wait_for_drain()
            else:
                async with asyncio.timeout(timeout):
                    await protocol.wait_for_drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing to the upstream") from None
        if protocol.error is not None:
            raise httpcore.WriteError(str(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        # Not waiting for the close to finish: a TLS close_notify to a peer that is gone
        # could hang, and nothing is read from this connection again.
        transport = self._protocol.transport
        if transport is not None:
            transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        protocol = self._protocol
        transport = protocol.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    transport, protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            transport.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            transport.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if tls is None:  # the connection closed during the handshake
            transport.close()
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        protocol.transport = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        protocol = self._protocol
        transport = protocol.transport
        if info == "is_readable":
            # Asked of idle pooled connections: readable means the server closed it (or sent
            # something unasked), so it must not be reused.
            return (
                bool(protocol.chunks)
                or protocol.eof
                or transport is None
                or (transport.is_closing())
            )
        if transport is None:
            return None
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


class AsyncioNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioNetworkStream`s (TCP, or a Unix socket)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        connecting = loop.create_connection(_SocketProtocol, host, port, local_addr=local)
        return await _connected(connecting, f"{host}:{port}", timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connecting = asyncio.get_running_loop().create_unix_connection(_SocketProtocol, path)
        return await _connected(connecting, path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connected(
    connecting: Coroutine[Any, Any, tuple[asyncio.BaseTransport, _SocketProtocol]],
    where: str,
    timeout: float | None,
    options: Iterable[_SocketOption] | None,
) -> AsyncioNetworkStream:
    """The stream once `connecting` (a loop.create_*connection call) is done."""
    try:
        async with asyncio.timeout(timeout):
            _, protocol = await connecting
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"timed out connecting to {where}") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
    sock: socket.socket | None = (
        protocol.transport.get_extra_info("socket") if protocol.transport else None
    )
    if sock is not None:
        for option in options or ():
            sock.setsockopt(*option)
    return AsyncioNetworkStream(protocol)
