"""httpx's HTTP/1.1 connection pool on plain asyncio streams instead of anyio.

httpx's default transport reaches sockets through httpcore's anyio backend. Profiling the
proxy (docs/services/frontier-proxy.md) showed that layer's per-call costs on the streaming
path: every socket read opens an anyio cancel scope inside two context managers, and before
every request the pool asks each pooled connection whether it has expired, which makes anyio
build a dictionary of socket attributes and `select` the socket. This backend does the same
work with asyncio's `StreamReader` / `StreamWriter`: a read is one `await reader.read(n)`
(with an `asyncio.timeout` only when httpx passes a timeout), and an idle connection counts as
closed by the server when its reader saw EOF or its transport is closing.

Everything above the socket (h11 parsing, pooling, keep-alive expiry, TLS through
`StreamWriter.start_tls`, httpx's exception mapping, proxies from the environment, which httpx
mounts separately) stays httpx's and httpcore's own. Errors are raised as httpcore's
exception types, which httpx maps to `httpx.ConnectError`, `httpx.ReadTimeout` and so on, as
with the default backend.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioNetworkBackend", "AsyncioNetworkStream", "LinearPool", "pooled_transport"]

_SocketOption = Any  # httpcore's SOCKET_OPTION: the arguments of one `setsockopt` call


class AsyncioNetworkStream(httpcore.AsyncNetworkStream):
    """One connection as an asyncio stream pair."""

    __slots__ = ("_reader", "_writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out reading from the upstream") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
            else:
                async with asyncio.timeout(timeout):
                    await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing to the upstream") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # Not waiting for the close to finish: a TLS close_notify to a peer that is gone
        # could hang, and nothing is read from this connection again.
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._writer.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Asked of idle pooled connections: readable means the server closed it (or sent
            # something unasked), so it must not be reused.
            # The reader buffers what the transport received, so look there: bytes waiting
            # (say a 408 sent before closing; StreamReader has no public accessor for them),
            # EOF, a closing transport, or an error.
            reader = self._reader
            return (
                bool(getattr(reader, "_buffer", None))
                or reader.at_eof()
                or reader.exception() is not None
                or self._writer.transport.is_closing()
            )
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
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
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        _apply(writer, socket_options)
        return AsyncioNetworkStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        _apply(writer, socket_options)
        return AsyncioNetworkStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _apply(writer: asyncio.StreamWriter, options: Iterable[_SocketOption] | None) -> None:
    sock: socket.socket | None = writer.get_extra_info("socket")
    if sock is None or not options:
        return
    for option in options:
        sock.setsockopt(*option)  # type: ignore[arg-type]


class LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's pool with its bookkeeping pass made linear in the number of connections.

    httpcore 1.0 runs `_assign_requests_to_connections` on every request and every response
    close; for each idle connection it builds a list over the whole pool to count it, so the
    pass is quadratic: with 200 pooled connections it took over a third of the proxy's CPU at
    200 concurrent streams (py-spy, docs/services/frontier-proxy.md). This override keeps the
    same decisions (drop closed connections, close expired ones and idle ones beyond the
    keep-alive limit, give each queued request the first available connection, else a new
    one, else replace an idle one) with one pass over the pool plus one per queued request.
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        kept: list[httpcore.AsyncConnectionInterface] = []
        count = len(self._connections)
        for connection in self._connections:
            if connection.is_closed():
                count -= 1
            elif connection.has_expired() or (
                # httpcore compares the pool's size (all connections) with the limit here.
                connection.is_idle() and count > self._max_keepalive_connections
            ):
                count -= 1
                closing.append(connection)
            else:
                kept.append(connection)
        self._connections[:] = kept

        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            available = next(
                (c for c in self._connections if c.can_handle_request(origin) and c.is_available()),
                None,
            )
            if available is not None:
                pool_request.assign_to_connection(available)
                continue
            if len(self._connections) < self._max_connections:
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
                continue
            idle = next((c for c in self._connections if c.is_idle()), None)
            if idle is not None:
                self._connections.remove(idle)
                closing.append(idle)
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
        return closing


def pooled_transport(
    limits: httpx.Limits, *, ssl_context: ssl.SSLContext | None = None, trust_env: bool = True
) -> httpx.AsyncHTTPTransport:
    """httpx's transport with its pool rebuilt as a `LinearPool` on `AsyncioNetworkBackend`
    (the settings httpx would have given it)."""
    context = ssl_context or httpx.create_ssl_context(trust_env=trust_env)
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=trust_env)
    # httpx has no parameter for httpcore's network backend; its transport sends every
    # request through `_pool` (httpx 0.28, pinned <1 in pyproject). The pool below has the
    # settings httpx would have given it.
    transport._pool = LinearPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=AsyncioNetworkBackend(),
    )
    return transport
