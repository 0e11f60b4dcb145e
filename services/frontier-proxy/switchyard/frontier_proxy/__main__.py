"""`switchyard-frontier-proxy`: serve `InferenceService` over frontier APIs."""

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
from switchyard.frontier_proxy.retry import RetryPolicy
from switchyard.frontier_proxy.servicer import FrontierInferenceServicer
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.frontier_proxy.upstream import open_upstreams
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.server import ServiceDefinition, ServiceRuntime, run_service

__all__ = ["FrontierResources", "build", "load_service_catalog", "main"]

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name


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


def build(
    settings: FrontierProxySettings,
    *,
    catalog: Catalog | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
) -> ServiceDefinition[FrontierResources]:
    """The service definition; tests pass a catalog, an HTTP transport or a seeded RNG."""
    for noisy in ("httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    resolved = catalog if catalog is not None else load_service_catalog(settings)
    retry = RetryPolicy(
        max_attempts=settings.max_attempts,
        base_delay_s=settings.backoff_base_s,
        max_delay_s=settings.backoff_max_s,
        max_retry_after_s=settings.max_retry_after_s,
    )

    @asynccontextmanager
    async def resources(runtime: ServiceRuntime) -> AsyncIterator[FrontierResources]:
        async with open_upstreams(
            resolved.models.values(),
            max_connections=settings.max_connections_per_upstream,
            connect_timeout_s=settings.connect_timeout_s,
            breaker_failure_threshold=settings.breaker_failure_threshold,
            breaker_reset_s=settings.breaker_reset_s,
            transport=transport,
        ) as upstreams:
            proxy = FrontierProxy(
                resolved, upstreams, retry, rng=rng, log_prompts=settings.log_prompts
            )
            yield FrontierResources(proxy=proxy, settings=settings)

    def register(server: grpc.aio.Server, res: FrontierResources) -> Sequence[str]:
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(
            FrontierInferenceServicer(res.proxy, res.settings.default_deadline_s), server
        )
        return [SERVICE_NAME]

    return ServiceDefinition(
        name="switchyard-frontier-proxy", settings=settings, resources=resources, register=register
    )


SUMMARY = (
    "The frontier proxy: switchyard.inference.v1.InferenceService over OpenAI, Anthropic and "
    "OpenAI-compatible APIs, priced exactly, with retries and circuit breakers. Keys come from "
    "the environment variables the catalog names (OPENAI_API_KEY, ANTHROPIC_API_KEY by default; "
    "docs/services/frontier-proxy.md)."
)


def main(argv: list[str] | None = None) -> int:
    return run_service(
        "switchyard-frontier-proxy", FrontierProxySettings, build, argv=argv, summary=SUMMARY
    )


if __name__ == "__main__":
    raise SystemExit(main())
