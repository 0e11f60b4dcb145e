"""The classifier's label space: task types (in the model's output order) and complexity levels.

Shared by the service (to read the model's outputs) and the training code (to write them).
"""

from __future__ import annotations

from switchyard.api.classifier.v1 import classifier_pb2

__all__ = [
    "DEFAULT_CUT_POINTS",
    "TASK_TYPES",
    "TASK_TYPE_NAMES",
    "complexity_level",
    "task_type_from_name",
]

# The model's task-type output columns, in this order: every TaskType of the contract except
# UNSPECIFIED, by enum number.
TASK_TYPES: tuple[int, ...] = tuple(
    value.number
    for value in classifier_pb2.TaskType.DESCRIPTOR.values
    if value.number != classifier_pb2.TASK_TYPE_UNSPECIFIED
)
# Short names used in label files and the model manifest: "chat", "math", "code_review", ...
TASK_TYPE_NAMES: tuple[str, ...] = tuple(
    classifier_pb2.TaskType.Name(number).removeprefix("TASK_TYPE_").lower() for number in TASK_TYPES
)

# Complexity score -> level: LOW below the first cut, HIGH at or above the second.
DEFAULT_CUT_POINTS: tuple[float, float] = (0.35, 0.65)


def task_type_from_name(name: str) -> int:
    """``"code_review"`` or ``"TASK_TYPE_CODE_REVIEW"`` -> the TaskType number; ValueError else."""
    key = name.strip().lower().removeprefix("task_type_")
    try:
        return TASK_TYPES[TASK_TYPE_NAMES.index(key)]
    except ValueError:
        raise ValueError(
            f"unknown task type {name!r}; expected one of {', '.join(TASK_TYPE_NAMES)}"
        ) from None


def complexity_level(score: float, cut_points: tuple[float, float] = DEFAULT_CUT_POINTS) -> int:
    """The ComplexityLevel for a score, at the given cut points."""
    low, high = cut_points
    if score < low:
        return classifier_pb2.COMPLEXITY_LEVEL_LOW
    if score < high:
        return classifier_pb2.COMPLEXITY_LEVEL_MEDIUM
    return classifier_pb2.COMPLEXITY_LEVEL_HIGH
