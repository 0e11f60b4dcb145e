"""The proxy's upstream transport (transport/: its own pool and asyncio network backend under
httpx's client) on real sockets: keep-alive reuse, the connection limits, pool timeouts, what
is closed and what is kept, and httpx's exception types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from switchyard.frontier_proxy.transport import UpstreamTransport, pooled_transport

pytestmark = pytest.mark.timeout(30)


class GatedServer:
    """HTTP/1.1 keep-alive server answering `ok` to each request once `gate` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.accepted = 0
        self.open = 0
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests += 1
                await self.gate.wait()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def __aenter__(self) -> GatedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


@asynccontextmanager
async def client(**limits: int) -> AsyncIterator[tuple[httpx.AsyncClient, UpstreamTransport]]:
    transport = pooled_transport(httpx.Limits(**limits))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, timeout=5) as http:
        yield http, transport


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most ~5 s) for something the server does on its own schedule."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_sequential_requests_reuse_one_connection() -> None:
    async with GatedServer() as server, client(max_connections=4) as (http, transport):
        for _ in range(5):
            assert (await http.get(server.url)).text == "ok"
        assert server.accepted == 1
        assert transport.pool.open_connections == transport.pool.idle_connections == 1


async def test_max_connections_bounds_concurrent_requests_and_the_rest_wait() -> None:
    async with GatedServer() as server, client(max_connections=2) as (http, transport):
        server.gate.clear()
        calls = [asyncio.ensure_future(http.get(server.url)) for _ in range(5)]
        await until(lambda: server.requests == 2)
        await asyncio.sleep(0.05)  # the other three are queued, not connecting
        assert server.accepted == 2
        server.gate.set()
        assert [r.text for r in await asyncio.gather(*calls)] == ["ok"] * 5
        assert server.accepted == 2
        assert transport.pool.open_connections == 2


async def test_a_request_that_waits_past_its_pool_timeout_fails_with_pool_timeout() -> None:
    async with GatedServer() as server, client(max_connections=1) as (http, _):
        server.gate.clear()
        first = asyncio.ensure_future(http.get(server.url))
        await until(lambda: server.requests == 1)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(server.url, timeout=httpx.Timeout(5, pool=0.1))
        server.gate.set()
        assert (await first).text == "ok"


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    async with GatedServer() as server, client(max_connections=1) as (http, _):
        server.gate.clear()
        first = asyncio.ensure_future(http.get(server.url))
        await until(lambda: server.requests == 1)
        given_up = asyncio.ensure_future(http.get(server.url))
        waiting = asyncio.ensure_future(http.get(server.url))
        await asyncio.sleep(0.05)
        given_up.cancel()
        server.gate.set()
        assert (await first).text == "ok"
        assert (await asyncio.wait_for(waiting, 5)).text == "ok"
        with pytest.raises(asyncio.CancelledError):
            await given_up


async def test_idle_connections_beyond_the_keepalive_limit_are_closed() -> None:
    async with (
        GatedServer() as server,
        client(max_connections=3, max_keepalive_connections=1) as (http, transport),
    ):
        server.gate.clear()
        calls = [asyncio.ensure_future(http.get(server.url)) for _ in range(3)]
        await until(lambda: server.requests == 3)
        server.gate.set()
        await asyncio.gather(*calls)
        assert transport.pool.idle_connections == transport.pool.open_connections == 1
        await until(lambda: server.open == 1)  # the server saw the other two closed


async def test_a_response_closed_before_its_end_closes_its_connection() -> None:
    async with GatedServer() as server, client(max_connections=4) as (http, transport):
        async with http.stream("GET", server.url) as response:
            assert response.status_code == 200  # body left unread
        assert transport.pool.open_connections == 0
        assert (await http.get(server.url)).text == "ok"
        assert server.accepted == 2


async def test_failures_are_httpx_exceptions_and_free_their_slot(unused_port: int) -> None:
    async with GatedServer() as server, client(max_connections=1) as (http, transport):
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{unused_port}/")
        server.gate.clear()
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url, timeout=httpx.Timeout(5, read=0.1))
        assert transport.pool.open_connections == 0  # both slots given back
        server.gate.set()
        assert (await http.get(server.url)).text == "ok"


async def test_idle_connection_with_unasked_bytes_is_not_reused() -> None:
    """A server that answers a second time on an idle connection (a 408 before closing) must
    not have that answer read as the next request's: the pool opens a new connection."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)  # keep the connection open: only the stray bytes tell
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    try:
        async with httpx.AsyncClient(transport=pooled_transport(limits)) as http:
            first = await http.get(f"http://127.0.0.1:{port}/")
            await asyncio.sleep(0.15)  # the stray 408 has arrived
            second = await http.get(f"http://127.0.0.1:{port}/")
    finally:
        server.close()
    assert (first.status_code, second.status_code) == (200, 200)
    assert connections == 2
