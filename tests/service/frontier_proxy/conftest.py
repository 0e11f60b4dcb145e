"""Fixtures: the frontier stand-in (session), and a frontier proxy in-process (per test) whose
catalog points at it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from support.frontier_standin import FrontierStandin
from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc
from switchyard.frontier_proxy.__main__ import FrontierResources, build
from switchyard.frontier_proxy.catalog import Catalog, parse_catalog
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.runtime.server import RunningServer, start_server

OPENAI_KEY_ENV = "STANDIN_OPENAI_KEY"
ANTHROPIC_KEY_ENV = "STANDIN_ANTHROPIC_KEY"
BAD_KEY = "sk-wrong-key-that-must-never-leak-42"


def standin_catalog(standin: FrontierStandin) -> Catalog:
    env = {
        OPENAI_KEY_ENV: standin.openai_key,
        ANTHROPIC_KEY_ENV: standin.anthropic_key,
        "STANDIN_BAD_KEY": BAD_KEY,
    }
    document: dict[str, Any] = {
        "default_model": "gpt-4o",
        "models": [
            {
                "name": "gpt-4o",
                "provider": "openai",
                "base_url": standin.openai_base_url,
                "api_key_env": OPENAI_KEY_ENV,
            },
            {
                "name": "claude-haiku-4-5",
                "provider": "anthropic",
                "base_url": standin.anthropic_base_url,
                "api_key_env": ANTHROPIC_KEY_ENV,
            },
            {
                "name": "compat-reasoner",
                "provider": "openai_compatible",
                "provider_name": "vllm",
                "upstream_model": "my-org/reasoner-7b",
                "base_url": standin.openai_base_url,
                "api_key_env": OPENAI_KEY_ENV,
                "price_lookup": False,
                "context_window": 32768,
                "prices": {
                    "input_usd_per_mtok": "0.2",
                    "output_usd_per_mtok": "0.8",
                    "cached_input_usd_per_mtok": "0.05",
                    "reasoning_usd_per_mtok": "1.6",
                },
            },
            {
                "name": "gone-model",
                "provider": "openai",
                "upstream_model": "missing-model-x",
                "base_url": standin.openai_base_url,
                "api_key_env": OPENAI_KEY_ENV,
                "price_lookup": {"provider_id": "openai", "model": "gpt-4o"},
            },
            {
                "name": "gpt-4o-badkey",
                "provider": "openai",
                "upstream_model": "gpt-4o",
                # A different base URL (same server) so its failures do not touch gpt-4o's breaker.
                "base_url": standin.url + "/second/openai/v1",
                "api_key_env": "STANDIN_BAD_KEY",
            },
        ],
    }
    return parse_catalog(document, env, source="(test)")


@pytest.fixture(scope="session")
async def standin() -> AsyncIterator[FrontierStandin]:
    async with FrontierStandin() as server:
        yield server


@pytest.fixture
def fresh_standin(standin: FrontierStandin) -> FrontierStandin:
    standin.reset()
    return standin


ProxyFactory = Callable[..., Any]


@pytest.fixture
def proxy_factory(fresh_standin: FrontierStandin) -> ProxyFactory:
    """`async with proxy_factory(**settings) as (running, stub):` a proxy on port 0."""

    @asynccontextmanager
    async def make(
        **overrides: Any,
    ) -> AsyncIterator[
        tuple[RunningServer[FrontierResources], inference_pb2_grpc.InferenceServiceStub]
    ]:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "breaker_failure_threshold": 5,
            "breaker_reset_s": 0.5,
            "grace_period_s": 1.0,
        }
        values.update(overrides)
        settings = FrontierProxySettings(**values)
        definition = build(settings, catalog=standin_catalog(fresh_standin), rng=random.Random(7))
        async with start_server(definition, port=0) as running:
            async with grpc.aio.insecure_channel(running.address) as channel:
                yield running, inference_pb2_grpc.InferenceServiceStub(channel)

    return make


@pytest.fixture
async def proxy(
    proxy_factory: ProxyFactory,
) -> AsyncIterator[
    tuple[RunningServer[FrontierResources], inference_pb2_grpc.InferenceServiceStub]
]:
    async with proxy_factory() as pair:
        yield pair


def user(text: str, *, system: str | None = None) -> list[pb.ChatMessage]:
    turns = [pb.ChatMessage(role=pb.ROLE_SYSTEM, content=system)] if system else []
    turns.append(pb.ChatMessage(role=pb.ROLE_USER, content=text))
    return turns
