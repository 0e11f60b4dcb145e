"""From a routed request to an evaluation: whether it is sampled (with its decision), and the
job the evaluator runs once it is answered. Pure: no I/O, nothing waits."""

from __future__ import annotations

from collections.abc import Sequence

from switchyard.api.inference.v1 import inference_pb2
from switchyard.router.evaluation.evaluator import EvaluationJob
from switchyard.router.evaluation.sampling import (
    is_sampled,
    other_tier,
    sample_share,
    stores_prompts,
)
from switchyard.router.policy import bind
from switchyard.router.request import RoutedRequest

__all__ = ["evaluation_job", "sampled_share"]


def sampled_share(req: RoutedRequest) -> float:
    """The share `req` is sampled at for shadow evaluation; 0 when it is not sampled (a
    route-only call, evaluation off, or a request that forbade frontier models: no shadow call
    goes to one either)."""
    config = req.config
    if req.operation == "route" or req.inputs is None:
        return 0.0
    if not config.evaluation.samples_anything or req.inputs.overrides.disallow_frontier:
        return 0.0
    share = sample_share(config, req.tenant, req.task_type)
    return share if is_sampled(req.request_id, share) else 0.0


def evaluation_job(
    req: RoutedRequest,
    messages: Sequence[inference_pb2.ChatMessage],
    parameters: inference_pb2.GenerationParameters,
    answer: str,
) -> EvaluationJob | None:
    """The evaluation of an answered, sampled request (None without a judge)."""
    config = req.config
    judge = config.evaluation.judge_target
    if judge is None or req.served is None or not req.sample_share:
        return None
    return EvaluationJob(
        request_id=req.request_id,
        tenant=req.tenant,
        task_type=req.task_type,
        config=config,
        sample_share=req.sample_share,
        served=req.served,
        served_model=req.served_model,
        answer=answer,
        messages=messages,
        parameters=parameters,
        shadow=bind(config, other_tier(config, req.task_type, req.served.kind)),
        judge=bind(config, judge),
        prompt=req.classifier_text if stores_prompts(config, req.tenant) else None,
        link=req.span.get_span_context(),
    )
