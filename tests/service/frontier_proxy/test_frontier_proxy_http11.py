"""The proxy's HTTP/1.1 connection (transport/http11.py, llhttp through httptools) on real
sockets, against a server that answers with scripted bytes: the framings a response can have,
what h11 refused and this must refuse too (malformed or truncated answers, header injection,
a body that disagrees with its Content-Length), and when a connection is reused or closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from switchyard.frontier_proxy.transport import pooled_transport
from switchyard.frontier_proxy.transport.http11 import MAX_HEAD_BYTES

pytestmark = pytest.mark.timeout(30)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A server whose every connection runs `handler`; counts connections, keeps requests."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request: its head and the body its Content-Length or chunks give."""
        head = await reader.readuntil(b"\r\n\r\n")
        body = b""
        lower = head.lower()
        if b"content-length:" in lower:
            length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
        elif b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        self.requests.append(head + body)
        return head + body


@asynccontextmanager
async def scripted(handler: Callable[[Scripted], Handler]) -> AsyncIterator[Scripted]:
    box = Scripted(lambda r, w: asyncio.sleep(0))
    box._handler = handler(box)
    server = await asyncio.start_server(box._serve, "127.0.0.1", 0)
    box.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        yield box
    finally:
        server.close()


@asynccontextmanager
async def client(**limits: float) -> AsyncIterator[httpx.AsyncClient]:
    transport = pooled_transport(httpx.Limits(max_connections=4, **limits))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, timeout=5) as http:
        yield http


def answering(
    *responses: bytes, then_close: bool = False, later: bytes | None = None
) -> Callable[[Scripted], Handler]:
    """Each request on a connection gets the next of `responses` (on the second and later
    connections, with `later`, that answer instead)."""

    def make(box: Scripted) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            script = responses if later is None or box.connections == 1 else (later,)
            for response in script:
                await box.read_request(reader)
                writer.write(response)
                await writer.drain()
            if not then_close:
                await asyncio.sleep(5)

        return handler

    return make


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_content_length_chunked_and_keep_alive_on_one_connection() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-upstream: 1\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\ntrailer: t\r\n\r\n"
    )
    async with scripted(answering(OK, chunked, OK)) as box, client() as http:
        first = await http.post(box.url, content=b'{"a": 1}')
        second = await http.get(box.url)
        third = await http.get(box.url)
    assert (first.text, second.text, third.text) == ("ok", "hello, world", "ok")
    assert second.headers["x-upstream"] == "1"
    assert "trailer" not in second.headers  # trailers are not headers
    assert box.connections == 1
    assert box.requests[0].endswith(b'\r\n\r\n{"a": 1}')
    assert b"content-length: 8\r\n" in box.requests[0].lower()
    assert first.http_version == "HTTP/1.1" and first.reason_phrase == "OK"


async def test_a_streamed_body_arrives_in_parts_as_it_is_sent() -> None:
    release = asyncio.Event()

    def make(box: Scripted) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await box.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst \r\n")
            await writer.drain()
            await release.wait()
            writer.write(b"4\r\nlast\r\n0\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(5)

        return handler

    async with scripted(make) as box, client() as http:
        async with http.stream("GET", box.url) as response:
            parts = response.aiter_raw()
            assert await parts.__anext__() == b"first "  # before the rest was sent
            release.set()
            assert [p async for p in parts] == [b"last"]


async def test_a_body_to_the_close_when_no_length_is_given_and_no_reuse() -> None:
    until_close = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it"
    async with scripted(answering(until_close, then_close=True)) as box, client() as http:
        first = await http.get(box.url)
        assert first.text == "all of it"
        second = await http.get(box.url)
        assert second.text == "all of it"
    assert box.connections == 2


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",  # closed inside the body
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",  # inside a chunk
        b"HTTP/1.1 200 OK\r\ncontent-le",  # inside the head
        b"",  # before any byte
    ],
    ids=["content-length", "chunked", "head", "nothing"],
)
async def test_an_upstream_that_closes_early_is_a_protocol_error(response: bytes) -> None:
    async with scripted(answering(response, then_close=True)) as box, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(box.url)
        assert box.connections == 1


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 two hundred OK\r\n\r\n",
        b"SMTP 220 hello\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nok",
    ],
    ids=["status", "protocol", "header", "chunk-size", "two-lengths"],
)
async def test_malformed_answers_are_protocol_errors_and_close(response: bytes) -> None:
    async with scripted(answering(response, OK, later=OK)) as box, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(box.url)
        assert (await http.get(box.url)).text == "ok"
    assert box.connections == 2  # the bad connection was not reused


async def test_a_head_over_the_limit_is_refused() -> None:
    huge = b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * (MAX_HEAD_BYTES + 10) + b"\r\n\r\n"
    async with scripted(answering(huge)) as box, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="longer than"):
            await http.get(box.url)


async def test_informational_answers_are_skipped() -> None:
    response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + OK
    async with scripted(answering(response, OK)) as box, client() as http:
        first = await http.get(box.url)
        assert (first.status_code, first.text) == (200, "ok")
        assert "link" not in first.headers
        assert (await http.get(box.url)).text == "ok"
    assert box.connections == 1


async def test_connection_close_http_1_0_and_head_are_not_reused() -> None:
    close = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
    old = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
    for response, method in ((close, "GET"), (old, "GET"), (head, "HEAD")):
        async with scripted(answering(response, response)) as box, client() as http:
            first = await http.request(method, box.url)
            second = await http.request(method, box.url)
        assert first.status_code == second.status_code == 200
        assert box.connections == 2, response
    assert first.content == b""  # HEAD: no body read, whatever the length says


async def test_bodiless_statuses_keep_the_connection() -> None:
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    not_modified = b"HTTP/1.1 304 Not Modified\r\ncontent-length: 12\r\n\r\n"
    async with scripted(answering(no_content, not_modified, OK)) as box, client() as http:
        assert (await http.get(box.url)).status_code == 204
        assert (await http.get(box.url)).status_code == 304
        assert (await http.get(box.url)).text == "ok"
    assert box.connections == 1


async def test_bytes_after_a_whole_answer_do_not_spoil_it_but_end_the_connection() -> None:
    async with scripted(answering(OK + b"garbage", OK, later=OK)) as box, client() as http:
        assert (await http.get(box.url)).text == "ok"
        assert (await http.get(box.url)).text == "ok"
    assert box.connections == 2


async def test_header_injection_and_bad_bodies_are_refused_before_sending() -> None:
    async with scripted(answering(OK, OK)) as box, client() as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.get(box.url, headers={"x-evil": "a\r\nx-injected: 1"})
        request = http.build_request("POST", box.url, content=b"12345")
        request.headers["content-length"] = "3"
        with pytest.raises(httpx.LocalProtocolError, match="Content-Length"):
            await http.send(request)
        assert (await http.get(box.url)).text == "ok"
    assert all(b"x-injected" not in r for r in box.requests)
    assert len(box.requests) == 1


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b""
        yield b"part two"

    async with scripted(answering(OK)) as box, client() as http:
        assert (await http.post(box.url, content=body())).text == "ok"
    assert box.requests[0].endswith(b"part one, part two")
    assert b"transfer-encoding: chunked" in box.requests[0].lower()


async def test_an_idle_connection_past_its_keepalive_expiry_is_replaced() -> None:
    async with scripted(answering(OK, OK)) as box, client(keepalive_expiry=0.05) as http:
        assert (await http.get(box.url)).text == "ok"
        await asyncio.sleep(0.2)
        assert (await http.get(box.url)).text == "ok"
    assert box.connections == 2


async def test_a_cancelled_request_closes_its_connection() -> None:
    def make(box: Scripted) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await box.read_request(reader)
            if box.connections == 1:
                await asyncio.sleep(5)  # never answers the first
            writer.write(OK)
            await writer.drain()
            await asyncio.sleep(5)

        return handler

    async with scripted(make) as box, client() as http:
        task = asyncio.create_task(http.get(box.url))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await http.get(box.url)).text == "ok"
    assert box.connections == 2


async def test_upstream_clients_keep_no_cookies_between_calls() -> None:
    """One client serves every tenant's calls to an upstream: a cookie one answer sets must not
    ride on the next request (whoever's it is)."""
    from switchyard.frontier_proxy.catalog import parse_catalog
    from switchyard.frontier_proxy.upstream import open_upstreams

    with_cookie = (
        b"HTTP/1.1 200 OK\r\nset-cookie: session=tenant-a; Path=/\r\ncontent-length: 2\r\n\r\nok"
    )
    async with scripted(answering(with_cookie, OK)) as box:
        catalog = parse_catalog(
            {
                "models": [
                    {
                        "name": "m",
                        "provider": "openai_compatible",
                        "base_url": box.url + "v1",
                        "api_key_env": "KEY",
                        "prices": {"input_usd_per_mtok": 0, "output_usd_per_mtok": 0},
                        "context_window": 8192,
                    }
                ]
            },
            {"KEY": "sk-test"},
        )
        async with open_upstreams(
            catalog.models.values(),
            max_connections=4,
            connect_timeout_s=5,
            breaker_failure_threshold=5,
            breaker_reset_s=30,
        ) as upstreams:
            (upstream,) = upstreams.values()
            first = await upstream.client.post(upstream.url("/chat/completions"), content=b"{}")
            second = await upstream.client.post(upstream.url("/chat/completions"), content=b"{}")
    assert first.headers["set-cookie"].startswith("session=")  # the answer still shows it
    assert second.status_code == 200
    assert len(box.requests) == 2
    assert b"cookie" not in box.requests[1].lower().split(b"\r\n\r\n", 1)[0]
