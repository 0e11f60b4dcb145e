"""ClassifierService: thin; validation in ``conversion``, inference in the injected batcher.

Each answer names the model that predicted it (``Prediction.model_version``, with that model's
cut points), so an answer is never labelled with a model that a reload swapped in after it; the
constructor's ``model_version`` and ``cut_points`` are for predictions that do not say."""

from __future__ import annotations

import grpc
from opentelemetry import trace

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc
from switchyard.classifier.batching import MicroBatcher
from switchyard.classifier.conversion import (
    check_no_unknown_fields,
    check_prompt,
    cost_usd,
    to_classification,
)
from switchyard.classifier.model import Prediction
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import InvalidArgument

__all__ = ["ClassifierServicer"]


class ClassifierServicer(pb_grpc.ClassifierServiceServicer):
    def __init__(
        self,
        batcher: MicroBatcher,
        *,
        model_version: str,
        cut_points: tuple[float, float],
        usd_per_core_hour: float,
        max_prompt_bytes: int,
        max_batch_request: int,
    ) -> None:
        self._batcher = batcher
        self._version = model_version
        self._cuts = cut_points
        self._price = usd_per_core_hour
        self._max_bytes = max_prompt_bytes
        self._max_batch = max_batch_request

    async def Classify(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        check_no_unknown_fields(request)
        check_prompt(request.prompt, self._max_bytes)
        outcome = await self._batcher.classify(request.prompt)
        classification = self._classification(outcome.prediction)
        cost = cost_usd(outcome.cpu_seconds, self._price)
        span = trace.get_current_span()
        span.set_attributes(
            {
                attr.TASK_TYPE: pb.TaskType.Name(classification.task_type),
                attr.COMPLEXITY: classification.complexity_score,
                attr.CLASSIFIER_COMPLEXITY_LEVEL: pb.ComplexityLevel.Name(
                    classification.complexity_level
                ),
                attr.CLASSIFIER_ESCALATION_PROBABILITY: classification.escalation_probability,
                attr.CLASSIFIER_MODEL_VERSION: classification.model_version,
                attr.CLASSIFIER_PROMPTS: 1,
                attr.CLASSIFIER_INPUT_TOKENS: classification.input_tokens,
                attr.CLASSIFIER_TRUNCATED: classification.truncated,
                attr.CLASSIFIER_BATCH_SIZE: outcome.batch_size,
                attr.CLASSIFIER_CPU_SECONDS: outcome.cpu_seconds,
                attr.CLASSIFIER_USD_PER_CORE_HOUR: self._price,
                attr.COST_USD: cost,
            }
        )
        return pb.ClassifyResponse(classification=classification, cost_usd=cost)

    async def ClassifyBatch(  # noqa: N802 - gRPC method name
        self, request: pb.ClassifyBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyBatchResponse:
        check_no_unknown_fields(request)
        count = len(request.prompts)
        if count == 0:
            raise InvalidArgument("prompts is empty: send at least one prompt")
        if count > self._max_batch:
            raise InvalidArgument(f"{count} prompts; the limit per call is {self._max_batch}")
        for index, prompt in enumerate(request.prompts):
            check_prompt(prompt, self._max_bytes, where=f"prompts[{index}]")
        outcomes = await self._batcher.classify_many(list(request.prompts))
        classifications = [self._classification(o.prediction) for o in outcomes]
        cpu = sum(o.cpu_seconds for o in outcomes)
        cost = cost_usd(cpu, self._price)
        span = trace.get_current_span()
        span.set_attributes(
            {
                # one model, unless a reload landed between this call's model runs
                attr.CLASSIFIER_MODEL_VERSION: ",".join(
                    sorted({c.model_version for c in classifications})
                ),
                attr.CLASSIFIER_PROMPTS: count,
                attr.CLASSIFIER_INPUT_TOKENS: sum(c.input_tokens for c in classifications),
                attr.CLASSIFIER_TRUNCATED: any(c.truncated for c in classifications),
                attr.CLASSIFIER_CPU_SECONDS: cpu,
                attr.CLASSIFIER_USD_PER_CORE_HOUR: self._price,
                attr.COST_USD: cost,
            }
        )
        if count == 1:
            span.set_attributes(
                {
                    attr.TASK_TYPE: pb.TaskType.Name(classifications[0].task_type),
                    attr.COMPLEXITY: classifications[0].complexity_score,
                }
            )
        return pb.ClassifyBatchResponse(classifications=classifications, cost_usd=cost)

    def _classification(self, prediction: Prediction) -> pb.Classification:
        return to_classification(
            prediction,
            model_version=prediction.model_version or self._version,
            cut_points=prediction.cut_points or self._cuts,
        )


def service_name() -> str:
    return pb.DESCRIPTOR.services_by_name["ClassifierService"].full_name
