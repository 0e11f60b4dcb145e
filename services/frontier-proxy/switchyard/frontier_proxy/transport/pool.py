"""A keep-alive pool of HTTP/1.1 connections, O(1) per request.

httpcore's own `AsyncConnectionPool` runs a bookkeeping pass over every pooled connection on
every request and every response close, and for each idle connection builds a list over the
whole pool to count it: quadratic in the pool's size. With 200 pooled connections that pass
took over a third of the proxy's CPU at 200 concurrent streams (py-spy,
docs/services/frontier-proxy.md). This pool keeps a stack of idle connections per origin and
two counters instead. Its connections are `http11.Http11Connection`s (llhttp parsing, keep-alive
expiry, the connection's state; the interface of httpcore's `AsyncHTTP11Connection`, which can
be passed as `connection` instead) over any httpcore `AsyncNetworkBackend`.

Its decisions are httpcore's: reuse an idle connection to the request's origin (the most
recently used one, so the others can expire) unless it has expired or the server closed it;
else open a new one while fewer than `max_connections` are open; else close an idle connection
to another origin to make room; else wait (at most the request's `pool` timeout) for one to be
returned. A returned connection is kept idle while fewer than `max_keepalive_connections` are,
and closed otherwise; a response closed before its body's end closes its connection (the
connection does that). HTTP/1.1 only (HTTP/2 would need the `h2` package; see the service's docs).
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections import deque

import httpcore

from switchyard.frontier_proxy.transport.http11 import Http11Connection

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """Connections per origin; `checkout` one for a request, `checkin` or `discard` it after."""

    __slots__ = (
        "_backend",
        "_connection",
        "_idle",
        "_idle_count",
        "_keepalive_expiry",
        "_max_connections",
        "_max_keepalive",
        "_open",
        "_ssl_context",
        "_waiters",
    )

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        network_backend: httpcore.AsyncNetworkBackend,
        max_connections: int | None,
        max_keepalive_connections: int | None,
        keepalive_expiry: float | None,
        connection: type[Http11Connection] = Http11Connection,
    ) -> None:
        ssl_context.set_alpn_protocols(["http/1.1"])
        self._connection = connection  # what each connection is (a seam for benchmarks)
        self._ssl_context = ssl_context
        self._backend = network_backend
        self._max_connections = sys.maxsize if max_connections is None else max_connections
        self._max_keepalive = (
            self._max_connections
            if max_keepalive_connections is None
            else min(max_keepalive_connections, self._max_connections)
        )
        self._keepalive_expiry = keepalive_expiry
        # Keyed by (scheme, host, port): httpcore's `Origin` is not hashable.
        self._idle: dict[tuple[bytes, bytes, int], list[Http11Connection]] = {}
        self._idle_count = 0
        self._open = 0  # connections opened (or opening) and not yet closed
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return self._idle_count

    async def checkout(
        self, origin: httpcore.Origin, timeouts: dict[str, float | None]
    ) -> Http11Connection:
        """A connection to `origin` that can take a request now (reused or new)."""
        while True:
            idle = self._idle.get((origin.scheme, origin.host, origin.port))
            while idle:
                connection = idle.pop()
                self._idle_count -= 1
                if connection.is_available() and not connection.has_expired():
                    return connection
                await self._close(connection)
            if self._open >= self._max_connections and self._idle_count:
                await self._close(self._evict_other())
            if self._open < self._max_connections:
                self._open += 1
                try:
                    return await self._connect(origin, timeouts)
                except BaseException:
                    self._closed_one()
                    raise
            await self._wait(timeouts.get("pool"))

    def checkin(self, origin: httpcore.Origin, connection: Http11Connection) -> bool:
        """Take `connection` back after its response was closed; False: the caller closes it."""
        if connection.is_idle() and self._idle_count < self._max_keepalive:
            key = (origin.scheme, origin.host, origin.port)
            self._idle.setdefault(key, []).append(connection)
            self._idle_count += 1
            self._wake_one()
            return True
        self._closed_one()
        return False

    def discard(self, connection: Http11Connection) -> None:
        """`connection` will not be used again (the caller closes it)."""
        self._closed_one()

    async def aclose(self) -> None:
        idle = [c for connections in self._idle.values() for c in connections]
        self._idle.clear()
        self._idle_count = 0
        for connection in idle:
            await self._close(connection)

    # --- internals ---------------------------------------------------------------------------

    async def _connect(
        self, origin: httpcore.Origin, timeouts: dict[str, float | None]
    ) -> Http11Connection:
        host = origin.host.decode("ascii")
        timeout = timeouts.get("connect")
        stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout)
        if origin.scheme in (b"https", b"wss"):
            try:
                stream = await stream.start_tls(
                    self._ssl_context, server_hostname=host, timeout=timeout
                )
            except BaseException:
                await stream.aclose()
                raise
        return self._connection(
            origin=origin, stream=stream, keepalive_expiry=self._keepalive_expiry
        )

    def _evict_other(self) -> Http11Connection:
        """An idle connection to some origin (the least recently used of its origin's)."""
        for key, connections in self._idle.items():
            if connections:
                self._idle_count -= 1
                connection = connections.pop(0)
                if not connections:
                    del self._idle[key]
                return connection
        raise AssertionError("idle count and idle lists disagree")

    async def _close(self, connection: Http11Connection) -> None:
        self._closed_one()
        await connection.aclose()

    def _closed_one(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _wait(self, timeout: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except BaseException as exc:
            # Woken but leaving (timed out or cancelled): pass the wake-up on.
            if waiter.done() and not waiter.cancelled():
                self._wake_one()
            if isinstance(exc, TimeoutError):
                raise httpcore.PoolTimeout("no upstream connection became free in time") from None
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
