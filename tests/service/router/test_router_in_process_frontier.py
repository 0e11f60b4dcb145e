"""The router with the frontier proxy in its own process (opt-in, co-located), against the
frontier stand-in speaking OpenAI's wire format: answers, cost, streams, the proxy's failures
as the attempt loop's fallbacks, deadlines, context windows, and the start-up checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from router_doubles import Doubles, ledger_records, start_doubles
from support.frontier_standin import Fault, FrontierStandin, Reply, StandinUsage
from test_router_service import ask, config_data, stream_req

from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.router.in_process_frontier import InProcessFrontier
from switchyard.router.service import RouterResources, build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.server import RunningServer, start_server

KEY_ENV = "IN_PROCESS_TEST_OPENAI_KEY"
BIG_WINDOW = 32768


@pytest.fixture
async def standin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FrontierStandin]:
    """The stand-in, and the SWITCHYARD_FRONTIER_PROXY_* environment the in-process proxy reads:
    a catalog serving the router's frontier models `big` and `huge` from it."""
    async with FrontierStandin() as server:
        prices = {"input_usd_per_mtok": "100", "output_usd_per_mtok": "400"}
        model = {
            "provider": "openai_compatible",
            "base_url": server.openai_base_url,
            "api_key_env": KEY_ENV,
            "price_lookup": False,
            "prices": prices,
        }
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            yaml.safe_dump(
                {
                    "models": [
                        {"name": "big", "context_window": BIG_WINDOW, **model},
                        {"name": "huge", "context_window": 128000, **model},
                    ]
                }
            )
        )
        monkeypatch.setenv(KEY_ENV, server.openai_key)
        monkeypatch.setenv("SWITCHYARD_FRONTIER_PROXY_CATALOG", str(catalog))
        monkeypatch.setenv("SWITCHYARD_FRONTIER_PROXY_MAX_ATTEMPTS", "1")
        yield server


def settings(tmp_path: Path, doubles: Doubles, in_process: str) -> RouterSettings:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config_data(*doubles.addresses, tmp_path / "l.db")))
    return RouterSettings(
        config=path,
        ledger_journal_dir=tmp_path / "journal",
        http_enabled=False,
        context_window_retry_s=0.05,
        frontier_proxy_in_process=in_process,
    )


@pytest.fixture
async def doubles() -> AsyncIterator[Doubles]:
    started = await start_doubles()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def router(
    tmp_path: Path, doubles: Doubles, standin: FrontierStandin
) -> AsyncIterator[RunningServer[RouterResources]]:
    definition = build_definition(settings(tmp_path, doubles, "frontier-proxy"))
    async with start_server(definition, port=0) as running:
        yield running


async def test_frontier_calls_are_served_in_process(
    router: RunningServer[RouterResources], doubles: Doubles, standin: FrontierStandin
) -> None:
    standin.reply = Reply(text="four words of answer", usage=StandinUsage(10, 4))
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        reply = await stub.Complete(ask("CHAT 0.9 escalate me"), timeout=30)
        events = [e async for e in stub.CompleteStream(stream_req("CHAT 0.9 again"), timeout=30)]
    records = await ledger_records(router)
    assert doubles.frontier.models == []  # the proxy service's address was never called
    assert [r.body["model"] for r in standin.requests] == ["big", "big"]
    assert reply.text == "four words of answer"
    assert reply.decision.target == "frontier-general"
    generate = reply.cost.hops[-1]
    assert (generate.kind, generate.status) == (router_pb2.HOP_KIND_GENERATE, "OK")
    # the proxy's exact price: 10 tokens at $100 and 4 at $400 per million
    assert generate.cost_usd == pytest.approx(10 * 100e-6 + 4 * 400e-6)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (10, 4)
    text = "".join(e.delta.text for e in events if e.HasField("delta"))
    assert text == "four words of answer"
    summary = events[-1].summary
    assert summary.usage.output_tokens == 4
    assert summary.cost.hops[-1].cost_usd == pytest.approx(generate.cost_usd)
    assert [(r.target, r.status) for r in records] == [("frontier-general", "OK")] * 2
    # the context window came from the in-process proxy's ListModels
    windows = router.resources.windows.for_targets(router.resources.source.current)
    assert windows["frontier-general"] == BIG_WINDOW


async def test_the_proxys_failures_take_the_routers_fallbacks(
    router: RunningServer[RouterResources], doubles: Doubles, standin: FrontierStandin
) -> None:
    # a 503 from the provider is UNAVAILABLE from the proxy: the chain moves to local-general
    standin.inject(Fault("status", status=503, message="overloaded"))
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        reply = await stub.Complete(ask("CHAT 0.9 x"), timeout=30)
        # a request the proxy refuses (INVALID_ARGUMENT) ends with that code, not a fallback
        bad = ask("CHAT 0.9 x")
        bad.parameters.temperature = 5.0
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Complete(bad, timeout=30)
    assert [(router_pb2.HopKind.Name(h.kind), h.target, h.status) for h in reply.cost.hops] == [
        ("HOP_KIND_CLASSIFY", "", "OK"),
        ("HOP_KIND_GENERATE", "frontier-general", "UNAVAILABLE"),
        ("HOP_KIND_GENERATE", "local-general", "OK"),
    ]
    assert doubles.local.models == ["small"]
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "temperature" in (refused.value.details() or "")
    assert standin.openai_key not in repr(reply) + (refused.value.details() or "")


async def test_a_caller_that_hangs_up_mid_stream_closes_the_upstream_call(
    router: RunningServer[RouterResources], standin: FrontierStandin
) -> None:
    standin.reply = Reply(text=" ".join(["word"] * 50), chunk_delay_s=0.05)
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        call = stub.CompleteStream(stream_req("CHAT 0.9 talk"), timeout=30)
        async for event in call:
            if event.HasField("delta"):
                break
        call.cancel()
    async with asyncio.timeout(10):
        # the stand-in records the hang-up, it has no event for it
        while not standin.requests or not standin.requests[-1].client_disconnected:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    records = await ledger_records(router)
    assert [r.status for r in records] == ["CANCELLED"]
    assert not standin.requests[-1].completed


async def test_in_process_calls_keep_their_deadline(standin: FrontierStandin) -> None:
    frontier = await InProcessFrontier.open()
    messages = [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="hello there")]
    try:
        standin.inject(Fault("delay", seconds=5))
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await frontier.Generate(
                inference_pb2.GenerateRequest(model="big", messages=messages), timeout=0.3
            )
        standin.reply = Reply(chunk_words=1)
        standin.inject(Fault("stall", seconds=5, after_chunks=3))
        stream = frontier.GenerateStream(
            inference_pb2.GenerateStreamRequest(model="big", messages=messages), timeout=0.5
        )
        seen: list[Any] = []
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async for event in stream:
                seen.append(event)
    finally:
        await frontier.close()
    assert unary.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert streamed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert seen and seen[0].HasField("delta")  # the first chunk came before the stall


async def test_in_process_backends_are_checked_at_start(
    tmp_path: Path, doubles: Doubles, standin: FrontierStandin
) -> None:
    definition = build_definition(settings(tmp_path, doubles, "frontier-proxy, nowhere"))
    with pytest.raises(FailedPrecondition, match="'nowhere' is not a backend"):
        async with start_server(definition, port=0):
            pass


async def test_a_bad_proxy_setting_stops_the_start(
    tmp_path: Path, doubles: Doubles, standin: FrontierStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_FRONTIER_PROXY_MAX_ATTEMPTS", "0")
    definition = build_definition(settings(tmp_path, doubles, "frontier-proxy"))
    with pytest.raises(FailedPrecondition, match="MAX_ATTEMPTS"):
        async with start_server(definition, port=0):
            pass
