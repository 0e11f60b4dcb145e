"""Assembles the frontier proxy process: catalog, redactor, upstream clients, proxy, servicer.

`build_definition(settings)` is what `switchyard-frontier-proxy` serves; tests pass a catalog,
an HTTP transport or a seeded RNG. The catalog is read once at start-up (keys included); a
catalog with a problem stops start-up with one message listing every problem.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import httpx

from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.frontier_proxy.catalog import Catalog, CatalogError, builtin_catalog, load_catalog
from switchyard.frontier_proxy.proxy import FrontierProxy
from switchyard.frontier_proxy.resilience.retry import RetryPolicy
from switchyard.frontier_proxy.servicer import FrontierInferenceServicer
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.frontier_proxy.upstream import open_upstreams
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.redaction import Redactor
from switchyard.runtime.server import ServiceDefinition, ServiceRuntime

__all__ = [
    "SERVICE_NAME",
    "FrontierResources",
    "build_definition",
    "load_service_catalog",
    "open_proxy",
]

SERVICE_NAME = "switchyard-frontier-proxy"
_GRPC_SERVICE = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name


@dataclass(frozen=True)
class FrontierResources:
    proxy: FrontierProxy
    settings: FrontierProxySettings


def load_service_catalog(settings: FrontierProxySettings) -> Catalog:
    """The catalog named by the settings (or the built-in one); start-up fails on any problem."""
    try:
        return load_catalog(settings.catalog) if settings.catalog else builtin_catalog()
    except CatalogError as exc:
        raise FailedPrecondition(str(exc)) from None


def retry_policy(settings: FrontierProxySettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        base_delay_s=settings.backoff_base_s,
        max_delay_s=settings.backoff_max_s,
        max_retry_after_s=settings.max_retry_after_s,
    )


@asynccontextmanager
async def open_proxy(
    settings: FrontierProxySettings,
    *,
    catalog: Catalog | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[FrontierProxy]:
    """The proxy with its upstream clients open while the block runs: what this service
    serves, and what a router serving the proxy in process (`switchyard.router.in_process_
    frontier`) calls. Raises FailedPrecondition for a catalog with a problem."""
    for noisy in ("httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    resolved = catalog if catalog is not None else load_service_catalog(settings)
    async with open_upstreams(
        resolved.models.values(),
        max_connections=settings.max_connections_per_upstream,
        connect_timeout_s=settings.connect_timeout_s,
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_reset_s=settings.breaker_reset_s,
        transport=transport,
    ) as upstreams:
        yield FrontierProxy(
            resolved,
            upstreams,
            retry_policy(settings),
            rng=rng,
            log_prompts=settings.log_prompts,
            # every secret this process holds: upstream text is redacted of them on its way to
            # logs, spans and errors
            redactor=Redactor(resolved.secrets()),
        )


def build_definition(
    settings: FrontierProxySettings,
    *,
    catalog: Catalog | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
) -> ServiceDefinition[FrontierResources]:
    """The service definition; tests pass a catalog, an HTTP transport or a seeded RNG."""
    resolved = catalog if catalog is not None else load_service_catalog(settings)

    @asynccontextmanager
    async def resources(runtime: ServiceRuntime) -> AsyncIterator[FrontierResources]:
        async with open_proxy(settings, catalog=resolved, transport=transport, rng=rng) as proxy:
            yield FrontierResources(proxy=proxy, settings=settings)

    def register(server: grpc.aio.Server, res: FrontierResources) -> Sequence[str]:
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(
            FrontierInferenceServicer(res.proxy, res.settings.default_deadline_s), server
        )
        return [_GRPC_SERVICE]

    return ServiceDefinition(
        name=SERVICE_NAME, settings=settings, resources=resources, register=register
    )
