"""Assembles the router process: configuration, ledger, channels, servicers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc

from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.inference.v1.inference_pb2 import ListModelsRequest, ListModelsResponse
from switchyard.api.router.v1 import outcomes_pb2, outcomes_pb2_grpc, router_pb2, router_pb2_grpc
from switchyard.router.budget import SpendTracker
from switchyard.router.config import ConfigError, RouterConfig
from switchyard.router.connections import Connections
from switchyard.router.evaluation.evaluator import ShadowEvaluator
from switchyard.router.in_process_frontier import InProcessFrontier, in_process_backends
from switchyard.router.ledger import CostLedger, LedgerError, OutcomeStore, open_ledger
from switchyard.router.ledger.writer import Durability, LedgerWriter
from switchyard.router.reloading import ConfigSource
from switchyard.router.request import InFlight
from switchyard.router.routing import Router
from switchyard.router.servicer import RouterServicer
from switchyard.router.settings import RouterSettings
from switchyard.router.tenancy import DEV_TENANT, authenticate, is_admin
from switchyard.router.windows import ContextWindows, ListModels
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.logging import get_logger
from switchyard.runtime.server import Companion, ServiceDefinition, ServiceRuntime

__all__ = ["RouterResources", "build_definition", "http_door"]

log = get_logger(__name__)

#: The time source for record times, budgets' days and months, and reports' default window.
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RouterResources:
    source: ConfigSource
    ledger: CostLedger
    writer: LedgerWriter
    router: Router
    connections: Connections
    spend: SpendTracker
    windows: ContextWindows
    clock: Clock
    evaluator: ShadowEvaluator


def _frontier_names(settings: RouterSettings, config: RouterConfig) -> list[str]:
    """The backends SWITCHYARD_ROUTER_FRONTIER_PROXY_IN_PROCESS names; each must be a backend of
    the configuration at start (a later reload that drops one just stops using it). Usually
    FRONTIER ones; a LOCAL one is an OpenAI-compatible server of the team's own (vLLM's, say)
    that the proxy calls."""
    names = in_process_backends(settings.frontier_proxy_in_process)
    problems = [
        f"{name!r} is not a backend of {settings.config}"
        for name in names
        if name not in config.backends
    ]
    if problems:
        raise FailedPrecondition(
            "SWITCHYARD_ROUTER_FRONTIER_PROXY_IN_PROCESS: " + "; ".join(problems)
        )
    return names


def _lister(frontier: InProcessFrontier) -> ListModels:
    async def list_models(timeout_s: float) -> ListModelsResponse:
        return await frontier.ListModels(ListModelsRequest(), timeout=timeout_s)

    return list_models


def _warn_if_open(config: RouterConfig) -> None:
    if not config.tenants:
        log.warning(
            "NO API KEYS CONFIGURED: every caller is the single dev tenant "
            f"{DEV_TENANT!r}, unauthenticated. Add tenants with hashed keys before exposing "
            "this router."
        )


@asynccontextmanager
async def open_resources(
    settings: RouterSettings, clock: Clock = _utc_now
) -> AsyncIterator[RouterResources]:
    try:
        source = ConfigSource(settings.config, poll_s=settings.reload_poll_s)
    except ConfigError as error:
        raise FailedPrecondition(str(error)) from None
    _warn_if_open(source.current)
    source.on_change(_warn_if_open)
    try:
        ledger = await open_ledger(source.current.ledger.url)
    except (ValueError, LedgerError) as error:
        raise FailedPrecondition(f"cannot open the cost ledger: {error}") from None
    spend = SpendTracker(ledger.spend_since, ttl_s=settings.budget_cache_s, clock=clock)
    writer = LedgerWriter(
        ledger,
        on_written=lambda r: spend.written(r.tenant, r.total_cost_usd, r.request_id),
        on_committing=lambda r: spend.committing(r.tenant, r.request_id),
        journal_dir=settings.ledger_journal_dir,
        durability=Durability(settings.ledger_durability),
    )
    local = None
    frontier: InProcessFrontier | None = None
    try:
        frontier_names = _frontier_names(settings, source.current)
        await writer.replay()
        if settings.classifier_in_process:
            from switchyard.router.local_classifier import InProcessClassifier

            local = await InProcessClassifier.open()
        if frontier_names:
            frontier = await InProcessFrontier.open()
    except BaseException:
        if local is not None:
            await local.close()
        await writer.close(0)
        await ledger.close()
        raise
    in_process = dict.fromkeys(frontier_names, frontier) if frontier is not None else {}
    connections = Connections(in_process_classifier=local, in_process_backends=in_process)
    windows = ContextWindows(
        lambda: source.current,
        retry_s=settings.context_window_retry_s,
        in_process={name: _lister(f) for name, f in in_process.items()},
    )
    await windows.refresh()  # the first request is checked against what the backends report
    source.on_change(windows.config_changed)
    assert isinstance(ledger, OutcomeStore)  # both engines keep the outcome tables
    in_flight = InFlight()
    evaluator = ShadowEvaluator(
        lambda: source.current,
        connections,
        ledger,
        in_flight=in_flight,
        clock=clock,
        budget_cache_s=settings.budget_cache_s,
    )
    router = Router(
        lambda: source.current,
        connections,
        spend,
        writer,
        windows=windows,
        evaluator=evaluator,
        in_flight=in_flight,
        log_prompts=settings.log_prompts,
        clock=clock,
    )
    writer.start()
    source.start()
    try:
        async with windows.watching():
            yield RouterResources(
                source, ledger, writer, router, connections, spend, windows, clock, evaluator
            )
    finally:
        await evaluator.close()
        await source.stop()
        await writer.close(settings.ledger_drain_s)
        await ledger.close()
        await connections.close()
        if local is not None:
            await local.close()
        if frontier is not None:
            await frontier.close()


def _tenant_scope(source: ConfigSource) -> Any:
    from switchyard.router.cost_service import TenantScope

    def tenant_of(context: grpc.aio.ServicerContext) -> TenantScope:
        config = source.current
        if not config.tenants:
            return TenantScope.admin()  # dev mode: the one caller sees every request
        metadata = context.invocation_metadata()
        if is_admin(config, metadata):
            return TenantScope.admin()
        return TenantScope.of(authenticate(config, metadata))

    return tenant_of


def register(server: grpc.aio.Server, resources: RouterResources) -> Sequence[str]:
    from switchyard.router.cost_service import CostServiceServicer
    from switchyard.router.outcome_service import OutcomeServiceServicer

    source = resources.source
    router_pb2_grpc.add_RouterServiceServicer_to_server(
        RouterServicer(resources.router, lambda md: authenticate(source.current, md)), server
    )
    assert isinstance(resources.ledger, OutcomeStore)
    outcomes_pb2_grpc.add_OutcomeServiceServicer_to_server(
        OutcomeServiceServicer(
            resources.ledger,
            lambda: source.current,
            lambda md: authenticate(source.current, md),
            _tenant_scope(source),
            unwritten=resources.writer.unwritten,
            clock=resources.clock,
        ),
        server,
    )
    config = source.current
    baseline = config.targets[config.baseline_target].model or config.baseline_target
    cost_pb2_grpc.add_CostServiceServicer_to_server(
        CostServiceServicer(
            resources.ledger, baseline, _tenant_scope(source), clock=resources.clock
        ),
        server,
    )
    return [
        router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name,
        outcomes_pb2.DESCRIPTOR.services_by_name["OutcomeService"].full_name,
        cost_pb2.DESCRIPTOR.services_by_name["CostService"].full_name,
    ]


def http_door(
    settings: RouterSettings, resources: RouterResources, runtime: ServiceRuntime
) -> list[Companion]:
    """The OpenAI-compatible HTTP door onto the same Router (none when HTTP_ENABLED=false)."""
    if not settings.http_enabled:
        return []
    from switchyard.router.openai.app import OpenAIDoor
    from switchyard.router.openai.server import FrontDoorServer

    source = resources.source
    app = OpenAIDoor(
        resources.router,
        lambda: source.current,
        routed_model=settings.http_routed_model,
        max_request_bytes=settings.http_max_request_bytes,
        serving=lambda: runtime.health.serving,
    )
    host = settings.http_host if settings.http_host is not None else settings.host
    return [
        FrontDoorServer(
            app, host=host, port=settings.http_port, max_concurrency=settings.max_concurrent_rpcs
        )
    ]


def build_definition(
    settings: RouterSettings, *, clock: Clock = _utc_now
) -> ServiceDefinition[RouterResources]:
    """The router service; `clock` (tests pin it) dates records, budget periods and reports."""

    def resources(runtime: ServiceRuntime) -> Any:
        return open_resources(settings, clock)

    return ServiceDefinition(
        name="switchyard-router",
        settings=settings,
        resources=resources,
        register=register,
        companions=lambda r, runtime: http_door(settings, r, runtime),
    )
