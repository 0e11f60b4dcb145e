"""Pure conversions: model predictions -> protobuf, request validation."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.classifier.model import Prediction
from switchyard.classifier.taxonomy import TASK_TYPES, complexity_level
from switchyard.runtime.errors import InvalidArgument

__all__ = ["check_no_unknown_fields", "check_prompt", "cost_usd", "to_classification"]


def check_no_unknown_fields(request: Message) -> None:
    from google.protobuf import unknown_fields

    if len(unknown_fields.UnknownFieldSet(request)):
        numbers = sorted({field.field_number for field in unknown_fields.UnknownFieldSet(request)})
        raise InvalidArgument(
            f"{request.DESCRIPTOR.name} has unknown field number(s) {numbers}: "
            "the client's contract does not match this service's"
        )


def check_prompt(prompt: str, max_bytes: int, where: str = "prompt") -> None:
    if not prompt.strip():
        raise InvalidArgument(f"{where} is empty")
    size = len(prompt.encode("utf-8"))
    if size > max_bytes:
        raise InvalidArgument(f"{where} is {size} bytes; the limit is {max_bytes}")


def cost_usd(cpu_seconds: float, usd_per_core_hour: float) -> float:
    return cpu_seconds * usd_per_core_hour / 3600.0


def to_classification(
    prediction: Prediction,
    *,
    model_version: str,
    cut_points: tuple[float, float],
    task_types: Sequence[int] = TASK_TYPES,
) -> pb.Classification:
    probabilities = prediction.task_probabilities
    best = max(range(len(probabilities)), key=probabilities.__getitem__)
    return pb.Classification(
        task_type=task_types[best],  # type: ignore[arg-type]
        task_type_probabilities=[
            pb.TaskTypeProbability(task_type=t, probability=p)  # type: ignore[arg-type]
            for t, p in zip(task_types, probabilities, strict=True)
        ],
        complexity_score=prediction.complexity,
        complexity_level=complexity_level(prediction.complexity, cut_points),  # type: ignore[arg-type]
        escalation_probability=min(1.0, max(0.0, prediction.escalation)),
        model_version=model_version,
        truncated=prediction.truncated,
        input_tokens=prediction.input_tokens,
    )
