"""Outcomes as the outcome file holds them: one JSON object per `Outcome` message.

`outcome_record(outcome)` is the line `switchyard outcomes export` writes and
`switchyard-classifier train --outcomes` reads; docs/services/outcomes.md defines every key.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.router.v1 import outcomes_pb2, router_pb2

__all__ = ["OUTCOME_FILE_VERSION", "outcome_record"]

#: The outcome file's format version (docs/services/outcomes.md).
OUTCOME_FILE_VERSION = 1


def _name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return ""


def _optional(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def _order(value: int) -> str:
    return (
        ""
        if value == outcomes_pb2.JUDGE_ORDER_UNSPECIFIED
        else _name(outcomes_pb2.JudgeOrder, value, "JUDGE_ORDER_")
    )


def _judge(judgement: outcomes_pb2.Judgement) -> dict[str, Any]:
    return {
        "verdict": _name(outcomes_pb2.JudgeVerdict, judgement.verdict, "JUDGE_VERDICT_"),
        "model": judgement.model,
        "orders": [_order(judgement.first_order), _order(judgement.second_order)],
    }


def _feedback(feedback: outcomes_pb2.Feedback) -> dict[str, Any]:
    verdict = _name(outcomes_pb2.FeedbackVerdict, feedback.verdict, "FEEDBACK_VERDICT_")
    return {"verdict": verdict, "reason": feedback.reason}


def outcome_record(outcome: outcomes_pb2.Outcome) -> dict[str, Any]:
    """The outcome file's line for `outcome` (JSON-ready)."""
    local_ok = _optional(outcome, "local_ok")
    frontier_ok = _optional(outcome, "frontier_ok")
    judged = outcome.HasField("judgement")
    rated = outcome.HasField("feedback")
    task = outcome.task_type
    unclassified = task == classifier_pb2.TASK_TYPE_UNSPECIFIED
    record: dict[str, Any] = {
        "id": outcome.request_id,
        "time": outcome.time.ToDatetime(tzinfo=UTC).isoformat(),
        "tenant": outcome.tenant,
        "task_type": "" if unclassified else _name(classifier_pb2.TaskType, task, "TASK_TYPE_"),
        "complexity": _optional(outcome, "complexity"),
        "escalation_score": _optional(outcome, "escalation_score"),
        "classifier_model_version": outcome.classifier_model_version,
        "prompt_chars": outcome.prompt_chars,
        "input_tokens": outcome.input_tokens,
        "served": _name(router_pb2.TargetKind, outcome.served, "TARGET_KIND_"),
        "local_model": _optional(outcome, "local_model"),
        "frontier_model": _optional(outcome, "frontier_model"),
        "local_ok": local_ok,
        "frontier_ok": frontier_ok,
        "partial": local_ok is None or frontier_ok is None,
        "source": "+".join(name for name, has in (("judge", judged), ("feedback", rated)) if has),
        "sample_share": _optional(outcome, "sample_share"),
        "judge": _judge(outcome.judgement) if judged else None,
        "feedback": _feedback(outcome.feedback) if rated else None,
    }
    if outcome.HasField("prompt"):
        record["prompt"] = outcome.prompt
    return record
