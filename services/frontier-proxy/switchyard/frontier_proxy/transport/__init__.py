"""The proxy's HTTP transport: an `httpx.AsyncBaseTransport` on its own pool and network backend.

httpx documents subclassing `AsyncBaseTransport` as the way to change how requests are sent;
`UpstreamTransport` does that, on httpcore's public pieces only:

- `network.AsyncioNetworkBackend`: httpcore's `AsyncNetworkBackend` interface on plain asyncio
  (no anyio cancel scope per socket read, a cheap "did the server close this idle
  connection?" check);
- `pool.ConnectionPool`: keep-alive HTTP/1.1 connections, O(1) per request where httpcore's
  pool is quadratic in its size;
- `http11.Http11Connection`: one connection, its responses parsed by llhttp (httptools) where
  httpcore's `AsyncHTTP11Connection` uses h11 in pure Python (0.59x the connection layer's CPU
  per call, `scripts/bench_http_client.py`), with h11's checks kept.

Everything else stays httpx's: the client (URL merging, headers, timeouts, redirects off),
content decoding, and proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`), which httpx
mounts on transports of its own. httpcore's exceptions are mapped to httpx's exactly as httpx's
own transport maps them, so callers see `httpx.ConnectError`, `httpx.ReadTimeout` and so on.
Nothing here reaches into a private name of httpx or httpcore.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Protocol, cast

import httpcore
import httpx

from switchyard.frontier_proxy.transport.http11 import Http11Connection
from switchyard.frontier_proxy.transport.network import AsyncioNetworkBackend, AsyncioNetworkStream
from switchyard.frontier_proxy.transport.pool import ConnectionPool

__all__ = [
    "AsyncioNetworkBackend",
    "AsyncioNetworkStream",
    "ConnectionPool",
    "UpstreamTransport",
    "pooled_transport",
]

# httpcore's exceptions and httpx's, most specific first (as httpx's own transport maps them).
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)
_EXACT = dict(_EXCEPTIONS)


def _mapped(exc: Exception) -> httpx.HTTPError | None:
    target = _EXACT.get(type(exc))
    if target is None:
        target = next((to for src, to in _EXCEPTIONS if isinstance(exc, src)), None)
    return None if target is None else target(str(exc))


class _CoreBody(Protocol):
    """What a connection answers with: its body, closed once read."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class _ResponseBody(httpx.AsyncByteStream):
    """A response's body; closing it gives the connection back to the pool (or closes it)."""

    __slots__ = ("_closed", "_connection", "_origin", "_pool", "_stream")

    def __init__(
        self,
        stream: _CoreBody,
        connection: Http11Connection,
        origin: httpcore.Origin,
        pool: ConnectionPool,
    ) -> None:
        self._stream = stream
        self._connection = connection
        self._origin = origin
        self._pool = pool
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._stream.aclose()  # idle again if the body was read to its end
        finally:
            if not self._pool.checkin(self._origin, self._connection):
                await self._connection.aclose()


class UpstreamTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests over a `ConnectionPool` (see the package docstring)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        port = url.port or (443 if scheme == b"https" else 80)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=scheme, host=url.raw_host, port=port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        origin = core.url.origin
        timeouts = request.extensions.get("timeout", {})
        pool = self.pool
        try:
            while True:
                connection = await pool.checkout(origin, timeouts)
                try:
                    response = await connection.handle_async_request(core)
                    break
                except httpcore.ConnectionNotAvailable:
                    pool.discard(connection)  # it was closed under us: take another
                    await connection.aclose()
                except BaseException:
                    pool.discard(connection)
                    await connection.aclose()
                    raise
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(cast(_CoreBody, response.stream), connection, origin, pool),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


def pooled_transport(
    limits: httpx.Limits, *, ssl_context: ssl.SSLContext | None = None, trust_env: bool = True
) -> UpstreamTransport:
    """An `UpstreamTransport` with `limits` (as httpx's own transport takes them) and httpx's
    certificate checks (`httpx.create_ssl_context`, honouring `SSL_CERT_FILE` and friends)."""
    context = ssl_context or httpx.create_ssl_context(trust_env=trust_env)
    return UpstreamTransport(
        ConnectionPool(
            ssl_context=context,
            network_backend=AsyncioNetworkBackend(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )
    )
