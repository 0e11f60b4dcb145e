"""The proxy's upstream transport on real sockets: pooled connections the server has spoken on
while idle are not reused."""

from __future__ import annotations

import asyncio

import httpx

from switchyard.frontier_proxy.transport import pooled_transport


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
        async with httpx.AsyncClient(transport=pooled_transport(limits)) as client:
            first = await client.get(f"http://127.0.0.1:{port}/")
            await asyncio.sleep(0.15)  # the stray 408 has arrived
            second = await client.get(f"http://127.0.0.1:{port}/")
    finally:
        server.close()
    assert (first.status_code, second.status_code) == (200, 200)
    assert connections == 2
