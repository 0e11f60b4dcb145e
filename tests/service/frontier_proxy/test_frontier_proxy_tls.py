"""The proxy's upstream transport (asyncio streams under httpx's pool) over HTTPS: TLS
handshake and certificate check, streamed and unary calls, connection reuse, and a server
certificate the client does not trust."""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from frontier_fixtures import OPENAI_KEY_ENV, user
from support.frontier_standin import FrontierStandin, Reply

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc
from switchyard.frontier_proxy.catalog import parse_catalog
from switchyard.frontier_proxy.service import build_definition
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.runtime.server import start_server

# A self-signed certificate for localhost / 127.0.0.1, made for these tests only.
TLS = Path(__file__).parent / "tls"
CERT = TLS / "test-only-cert.pem"
KEY = TLS / "test-only-key.pem"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def tls_front(standin: FrontierStandin) -> AsyncIterator[tuple[int, list[int]]]:
    """A TLS terminator in front of `standin`: yields its port and a list of accepted
    connections (one entry per TLS connection)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    accepted: list[int] = []
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        up_reader, up_writer = await asyncio.open_connection(standin.host, standin.port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def spawn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(spawn, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def https_catalog(standin: FrontierStandin, port: int):  # type: ignore[no-untyped-def]
    document = {
        "models": [
            {
                "name": "gpt-4o",
                "provider": "openai",
                "base_url": f"https://localhost:{port}/openai/v1",
                "api_key_env": OPENAI_KEY_ENV,
            }
        ]
    }
    return parse_catalog(document, {OPENAI_KEY_ENV: standin.openai_key}, source="(test)")


async def test_https_upstream_streams_and_reuses_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(CERT))  # httpx trusts it (trust_env)
    async with FrontierStandin() as standin, tls_front(standin) as (port, accepted):
        standin.reply = Reply(text="over TLS we go", chunk_delay_s=0.002)
        settings = FrontierProxySettings(host="127.0.0.1", grace_period_s=1.0)
        definition = build_definition(
            settings, catalog=https_catalog(standin, port), rng=random.Random(1)
        )
        async with start_server(definition, port=0) as running:
            async with grpc.aio.insecure_channel(running.address) as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                for i in range(2):
                    text = ""
                    request = pb.GenerateStreamRequest(model="gpt-4o", messages=user(f"s{i}"))
                    async for message in stub.GenerateStream(request, timeout=10):
                        if message.HasField("delta"):
                            text += message.delta.text
                    assert text == "over TLS we go"
                answer = await stub.Generate(
                    pb.GenerateRequest(model="gpt-4o", messages=user("unary")), timeout=10
                )
                assert answer.text == "over TLS we go"
        assert len(standin.requests) == 3
        assert len(accepted) == 1  # one TLS connection, reused by all three calls


async def test_untrusted_certificate_is_a_connection_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with FrontierStandin() as standin, tls_front(standin) as (port, _):
        settings = FrontierProxySettings(
            host="127.0.0.1", grace_period_s=1.0, backoff_base_s=0.01, backoff_max_s=0.02
        )
        definition = build_definition(
            settings, catalog=https_catalog(standin, port), rng=random.Random(1)
        )
        async with start_server(definition, port=0) as running:
            async with grpc.aio.insecure_channel(running.address) as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.Generate(
                        pb.GenerateRequest(model="gpt-4o", messages=user("hi")), timeout=10
                    )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "CERTIFICATE_VERIFY_FAILED" in (caught.value.details() or "")
        assert standin.requests == []
