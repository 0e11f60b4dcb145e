"""The classifier service on the shared runtime: the model and its micro-batcher as resources.

The model directory is ``SWITCHYARD_CLASSIFIER_MODEL_DIR`` or the shipped one; a missing or
corrupt file stops start-up with a message naming the file and its expected sha256. A configured
directory is watched: a changed manifest (``switchyard-classifier promote``) or SIGHUP reloads
it without a restart, and a directory that does not load leaves the previous model serving
(``reloading.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc
from switchyard.classifier.batching import MicroBatcher
from switchyard.classifier.model import SHIPPED_MODEL_DIR, ClassifierModel, ModelLoadError
from switchyard.classifier.reloading import ModelSource
from switchyard.classifier.servicer import ClassifierServicer, service_name
from switchyard.classifier.settings import ClassifierSettings
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.logging import get_logger
from switchyard.runtime.server import ServiceDefinition, ServiceRuntime

__all__ = ["SERVICE_NAME", "ClassifierResources", "build_service", "make_batcher", "serve"]

SERVICE_NAME = "switchyard-classifier"
log = get_logger(__name__)

WARMUP_PROMPTS = ("Warm-up: what is the capital of France?", "def f(x):\n    return x * 2")


@dataclass
class ClassifierResources:
    source: ModelSource
    batcher: MicroBatcher

    @property
    def model(self) -> ClassifierModel:
        """The model in force (a reload may replace it)."""
        return self.source.current


def load_model(settings: ClassifierSettings) -> ClassifierModel:
    directory = settings.model_dir or SHIPPED_MODEL_DIR
    try:
        return ClassifierModel(directory, intra_op_threads=settings.intra_op_threads)
    except ModelLoadError as exc:
        raise FailedPrecondition(f"classifier model not loaded: {exc}") from None


def make_batcher(
    model: ClassifierModel | ModelSource, settings: ClassifierSettings
) -> MicroBatcher:
    """The micro-batcher over `model` (or the model a source holds in force) as `settings`
    configure it (the service's and the router's in-process classifier's)."""
    return MicroBatcher(
        model.predict,
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_batch_wait_ms / 1000.0,
        threads_per_run=settings.intra_op_threads,
    )


def build_service(settings: ClassifierSettings) -> ServiceDefinition[ClassifierResources]:
    @contextlib.asynccontextmanager
    async def resources(runtime: ServiceRuntime) -> AsyncIterator[ClassifierResources]:
        model = await asyncio.to_thread(load_model, settings)
        log.info("model loaded", model_version=model.version, directory=str(model.directory))
        source = ModelSource(
            model,
            lambda d: ClassifierModel(d, intra_op_threads=settings.intra_op_threads),
            poll_s=settings.model_reload_poll_s,
            warmup=WARMUP_PROMPTS,
        )
        batcher = make_batcher(source, settings)
        await batcher.start()
        if settings.model_dir is not None:  # the shipped model is part of the package
            source.start()
        try:
            yield ClassifierResources(source, batcher)
        finally:
            await source.stop()
            await batcher.close()

    def register(server: grpc.aio.Server, res: ClassifierResources) -> Sequence[str]:
        pb_grpc.add_ClassifierServiceServicer_to_server(
            ClassifierServicer(
                res.batcher,
                model_version=res.model.version,
                cut_points=res.model.manifest.cut_points,
                usd_per_core_hour=settings.usd_per_core_hour,
                max_prompt_bytes=settings.max_prompt_bytes,
                max_batch_request=settings.max_batch_request,
            ),
            server,
        )
        return [service_name()]

    async def warmup(res: ClassifierResources) -> None:
        await res.batcher.classify_many(list(WARMUP_PROMPTS))

    return ServiceDefinition(
        name=SERVICE_NAME, settings=settings, resources=resources, register=register, warmup=warmup
    )


SUMMARY = (
    "The classifier: task type, complexity and escalation probability of a prompt from one ONNX "
    "model. Serves switchyard.classifier.v1.ClassifierService (docs/services/classifier.md)."
)
COMMANDS = {
    "train ...": "build a model from labelled data (needs switchyard-training; "
    "`switchyard-classifier train --help`)",
    "evaluate MODEL_DIR --outcomes FILE": "score a model's escalation on held-out outcomes "
    "(needs switchyard-training)",
    "promote CANDIDATE_DIR --serving DIR --outcomes FILE": "replace the serving model if the "
    "candidate beats it on held-out outcomes (needs switchyard-training)",
    "rollback --serving DIR": "put back the model the last promotion replaced "
    "(needs switchyard-training)",
}


def serve(argv: Sequence[str] = ()) -> int:
    """``switchyard-classifier`` with no subcommand: serve until SIGTERM / SIGINT."""
    from switchyard.runtime.server import run_service

    return run_service(
        SERVICE_NAME,
        ClassifierSettings,
        build_service,
        argv=argv,
        summary=SUMMARY,
        commands=COMMANDS,
    )
