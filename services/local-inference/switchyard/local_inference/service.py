"""The local-inference service on the shared runtime: engine and meter as resources.

`build_service(settings)` gives the `ServiceDefinition` the console script runs and tests start
in process. The engine is started once, in `resources`, and shut down whatever happens; a
watcher checks its health every `health_check_interval_s` and reports NOT_SERVING if it died
(requests that hit a dead engine do the same at once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc
from switchyard.local_inference.cost import CostMeter
from switchyard.local_inference.engine import Engine, EngineUnavailable, VllmEngine
from switchyard.local_inference.inference import LocalInference
from switchyard.local_inference.model_preparation import ModelNotPrepared
from switchyard.local_inference.servicer import InferenceServicer
from switchyard.local_inference.settings import LocalInferenceSettings
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.logging import get_logger
from switchyard.runtime.server import ServiceDefinition, ServiceRuntime

__all__ = ["SERVICE_NAME", "build_service"]

SERVICE_NAME = "switchyard-local-inference"
log = get_logger(__name__)

EngineFactory = Callable[[LocalInferenceSettings], Engine]


async def _start_engine(settings: LocalInferenceSettings, factory: EngineFactory) -> Engine:
    try:
        # Loading takes tens of seconds; keep the event loop (health, signals) responsive.
        return await asyncio.to_thread(factory, settings)
    except ModelNotPrepared as exc:
        raise FailedPrecondition(str(exc)) from None


async def _watch_health(engine: Engine, runtime: ServiceRuntime, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await engine.check_health()
        except EngineUnavailable as exc:
            log.error("engine is down; reporting NOT_SERVING", error=exc.message)
            await runtime.health.set_serving(False)
            return


def build_service(
    settings: LocalInferenceSettings, *, engine_factory: EngineFactory | None = None
) -> ServiceDefinition[LocalInference]:
    """The service definition; `engine_factory` defaults to vLLM (tests pass a double)."""
    factory: EngineFactory = engine_factory or VllmEngine.start

    @contextlib.asynccontextmanager
    async def resources(runtime: ServiceRuntime) -> AsyncIterator[LocalInference]:
        engine = await _start_engine(settings, factory)
        meter = CostMeter(settings.usd_per_hour, prefill_token_weight=settings.prefill_token_weight)
        if settings.usd_per_hour == 0:
            log.warning(
                "the machine's hourly cost is 0: every local request will be reported at $0; "
                "set SWITCHYARD_LOCAL_INFERENCE_USD_PER_HOUR to what this machine costs"
            )

        async def engine_failed() -> None:
            await runtime.health.set_serving(False)

        inference = LocalInference(
            engine,
            meter,
            default_max_tokens=settings.default_max_tokens,
            max_queued_requests=settings.max_queued_requests,
            on_engine_failure=engine_failed,
            log_prompts=settings.log_prompts,
        )
        watcher = asyncio.create_task(
            _watch_health(engine, runtime, settings.health_check_interval_s)
        )
        try:
            yield inference
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            totals = meter.totals()
            log.info(
                "machine cost",
                **{
                    attr.LOCAL_INFERENCE_MACHINE_USD_PER_HOUR: meter.usd_per_hour,
                    attr.LOCAL_INFERENCE_IDLE_COST_USD: totals.idle_usd,
                },
                attributed_usd=totals.attributed_usd,
                elapsed_s=totals.elapsed_s,
                requests=totals.finished_requests,
            )
            await asyncio.to_thread(engine.shutdown)

    def register(server: grpc.aio.Server, inference: LocalInference) -> Sequence[str]:
        pb_grpc.add_InferenceServiceServicer_to_server(InferenceServicer(inference), server)
        return [pb.DESCRIPTOR.services_by_name["InferenceService"].full_name]

    async def warmup(inference: LocalInference) -> None:
        # One real token through the whole path before SERVING: the first request would
        # otherwise pay for lazy initialisation in the engine and the detokenizer.
        hello = [pb.ChatMessage(role=pb.ROLE_USER, content="hi")]
        async for _ in inference.run("", hello, pb.GenerationParameters(max_tokens=1)):
            pass

    return ServiceDefinition(
        name=SERVICE_NAME,
        settings=settings,
        resources=resources,
        register=register,
        warmup=warmup,
    )
