"""The classifier's model in the router's own process: an opt-in for co-located deployments.

With `SWITCHYARD_ROUTER_CLASSIFIER_IN_PROCESS=true` the router loads the classifier's model at
start and classifies without a network hop; the classifier service is not called (the
configuration's `classifier.address` is then unused). The separate service stays the default:
it scales and restarts on its own, keeps the model's memory (~170 MB) and its CPU out of the
router, and can serve several routers. In process, a co-located deployment saves the gRPC
server and client work of one call per request (docs/benchmarks.md has the numbers).

Nothing is copied: the model, the micro-batcher and the servicer are the classifier
distribution's own (`switchyard-router[classifier]` installs it), configured by the same
`SWITCHYARD_CLASSIFIER_*` variables as the service (model directory, threads, batch size,
price per core-hour). `InProcessClassifier.Classify` has the stub's signature, so the router's
classify phase is the same code either way: its errors are raised as the `grpc.aio.AioRpcError`
the service would have answered with (INVALID_ARGUMENT for a prompt it refuses,
DEADLINE_EXCEEDED past the timeout), and the classifier's span attributes (model version, batch
size, CPU seconds, cost) land on the router's classify span.

A configured model directory (`SWITCHYARD_CLASSIFIER_MODEL_DIR`) is watched as the service
watches it (`switchyard.classifier.reloading.ModelSource`, `..._MODEL_RELOAD_POLL_S`): a
promotion or rollback written there is loaded, warmed up and swapped in without a restart and
without dropping requests, and every decision names the model that made it. SIGHUP stays the
router's (it reloads router.yaml), so in process only a manifest change reloads the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.router.in_process import rpc_error, service_settings
from switchyard.runtime.errors import FailedPrecondition, SwitchyardError
from switchyard.runtime.logging import get_logger

__all__ = ["InProcessClassifier"]

log = get_logger(__name__)

_INSTALL = (
    "the in-process classifier needs switchyard-classifier: "
    "pip install 'switchyard-router[classifier]'"
)


class InProcessClassifier:
    """The classifier servicer called in process (see the module docstring)."""

    def __init__(self, servicer: Any, batcher: Any, source: Any) -> None:
        self._servicer = servicer
        self._batcher = batcher
        self._source = source

    @property
    def model_version(self) -> str:
        """The model in force (a reload may replace it)."""
        version: str = self._source.current.version
        return version

    @classmethod
    async def open(cls) -> InProcessClassifier:
        """Load the model (SWITCHYARD_CLASSIFIER_* settings) and start its micro-batcher."""
        try:
            from switchyard.classifier.model import ClassifierModel
            from switchyard.classifier.reloading import ModelSource
            from switchyard.classifier.service import WARMUP_PROMPTS, load_model, make_batcher
            from switchyard.classifier.servicer import ClassifierServicer
            from switchyard.classifier.settings import ClassifierSettings
        except ImportError:
            raise FailedPrecondition(_INSTALL) from None
        settings = service_settings(ClassifierSettings)
        model = await asyncio.to_thread(load_model, settings)
        source = ModelSource(
            model,
            lambda d: ClassifierModel(d, intra_op_threads=settings.intra_op_threads),
            poll_s=settings.model_reload_poll_s,
            warmup=WARMUP_PROMPTS,
        )
        batcher = make_batcher(source, settings)
        await batcher.start()
        servicer = ClassifierServicer(
            batcher,
            model_version=model.version,
            cut_points=model.manifest.cut_points,
            usd_per_core_hour=settings.usd_per_core_hour,
            max_prompt_bytes=settings.max_prompt_bytes,
            max_batch_request=settings.max_batch_request,
        )
        classifier = cls(servicer, batcher, source)
        await batcher.classify_many(list(WARMUP_PROMPTS))
        if settings.model_dir is not None:  # the shipped model is part of the package
            source.start(handle_sighup=False)
        log.info("classifier model loaded in process", model_version=model.version)
        return classifier

    async def Classify(  # noqa: N802 - the stub's method name
        self,
        request: classifier_pb2.ClassifyRequest,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> classifier_pb2.ClassifyResponse:
        """What the service's Classify answers; `metadata` is unused (same process, same trace)."""
        try:
            async with asyncio.timeout(timeout):
                response: classifier_pb2.ClassifyResponse = await self._servicer.Classify(
                    request, None
                )
                return response
        except TimeoutError:
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "classifier timed out") from None
        except SwitchyardError as error:
            raise rpc_error(error.code, error.message) from None

    async def close(self) -> None:
        await self._source.stop()
        await self._batcher.close()
