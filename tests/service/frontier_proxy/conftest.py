"""Fixtures: the frontier stand-in (session), and a frontier proxy in-process (per test) whose
catalog points at it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from frontier_fixtures import standin_catalog
from support.frontier_standin import FrontierStandin

from switchyard.api.inference.v1 import inference_pb2_grpc
from switchyard.frontier_proxy.service import FrontierResources, build_definition
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.runtime.server import RunningServer, start_server


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
        extra_models: tuple[dict[str, Any], ...] = (),
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
        catalog = standin_catalog(fresh_standin, extra_models)
        definition = build_definition(settings, catalog=catalog, rng=random.Random(7))
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
