"""Between outcomes and their protobuf messages (router.v1 outcomes, cost.v1 report lines). Pure."""

from __future__ import annotations

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.cost.v1 import cost_pb2
from switchyard.api.router.v1 import outcomes_pb2, router_pb2
from switchyard.router.evaluation.calibration import CalibrationPoint
from switchyard.router.evaluation.outcomes import EvaluationTotals, RatedOutcome, outcome_flags
from switchyard.router.ledger.outcome_records import (
    EvaluationRecord,
    FeedbackVerdict,
    JudgeOrder,
    OutcomeRow,
)

__all__ = [
    "add_evaluations",
    "feedback_verdict",
    "outcome_message",
    "point_message",
    "rated_outcome",
    "task_type_value",
]

_KIND = {"LOCAL": router_pb2.TARGET_KIND_LOCAL, "FRONTIER": router_pb2.TARGET_KIND_FRONTIER}
_FEEDBACK = {
    outcomes_pb2.FEEDBACK_VERDICT_GOOD: FeedbackVerdict.GOOD,
    outcomes_pb2.FEEDBACK_VERDICT_NOT_GOOD: FeedbackVerdict.NOT_GOOD,
}
_FEEDBACK_VALUES = {verdict: value for value, verdict in _FEEDBACK.items()}
_ORDERS = {
    JudgeOrder.LOCAL: outcomes_pb2.JUDGE_ORDER_LOCAL,
    JudgeOrder.FRONTIER: outcomes_pb2.JUDGE_ORDER_FRONTIER,
    JudgeOrder.TIE: outcomes_pb2.JUDGE_ORDER_TIE,
    JudgeOrder.UNPARSEABLE: outcomes_pb2.JUDGE_ORDER_UNPARSEABLE,
    JudgeOrder.NOT_ASKED: outcomes_pb2.JUDGE_ORDER_UNSPECIFIED,
}


def feedback_verdict(value: int) -> FeedbackVerdict | None:
    """The ledger's verdict of a `FeedbackVerdict` value (None: unspecified or unknown)."""
    return _FEEDBACK.get(value)  # type: ignore[call-overload]


def task_type_value(name: str) -> classifier_pb2.TaskType:
    if not name:
        return classifier_pb2.TASK_TYPE_UNSPECIFIED
    return classifier_pb2.TaskType.Value(f"TASK_TYPE_{name}")


def _tier_models(row: OutcomeRow) -> tuple[str | None, str | None]:
    served = row.request.target_kind
    served_model = row.request.model
    e = row.evaluation
    if e is not None:
        served_model = e.served_model
    shadow_model = e.shadow_model if e is not None and e.shadow_status == "OK" else None
    if served == "LOCAL":
        return served_model, shadow_model
    return shadow_model, served_model


def _judgement(e: EvaluationRecord) -> outcomes_pb2.Judgement:
    return outcomes_pb2.Judgement(
        verdict=outcomes_pb2.JudgeVerdict.Value(f"JUDGE_VERDICT_{e.verdict.value}"),
        model=e.judge_model,
        first_order=_ORDERS[e.first_order],
        second_order=_ORDERS[e.second_order],
    )


def outcome_message(row: OutcomeRow) -> outcomes_pb2.Outcome:
    """One outcome as `ExportOutcomes` streams it (a line of the outcome file)."""
    r, e, f = row.request, row.evaluation, row.feedback
    served = r.target_kind
    local_ok, frontier_ok = outcome_flags(
        e.verdict if e else None, f.verdict if f else None, served
    )
    local_model, frontier_model = _tier_models(row)
    message = outcomes_pb2.Outcome(
        request_id=r.request_id,
        tenant=r.tenant,
        task_type=task_type_value(r.task_type),
        classifier_model_version=r.classifier_model_version,
        prompt_chars=r.prompt_chars,
        input_tokens=r.input_tokens,
        served=_KIND[served],
    )
    message.time.FromDatetime(r.time)
    if r.complexity is not None:
        message.complexity = r.complexity
    if r.escalation_score is not None:
        message.escalation_score = r.escalation_score
    if local_model is not None:
        message.local_model = local_model
    if frontier_model is not None:
        message.frontier_model = frontier_model
    if local_ok is not None:
        message.local_ok = local_ok
    if frontier_ok is not None:
        message.frontier_ok = frontier_ok
    if e is not None:
        message.sample_share = e.sample_share
        message.judgement.CopyFrom(_judgement(e))
        if e.prompt is not None:
            message.prompt = e.prompt
    if f is not None:
        message.feedback.verdict = _FEEDBACK_VALUES[f.verdict]
        message.feedback.reason = f.reason
        message.feedback.time.FromDatetime(f.time)
    return message


def rated_outcome(row: OutcomeRow) -> RatedOutcome | None:
    """The outcome for calibration when both tiers are rated, else None."""
    e, f = row.evaluation, row.feedback
    served = row.request.target_kind
    local_ok, frontier_ok = outcome_flags(
        e.verdict if e else None, f.verdict if f else None, served
    )
    if local_ok is None or frontier_ok is None or e is None:
        return None
    return RatedOutcome(
        local_ok, frontier_ok, e.sample_share, row.request.escalation_score, served=served
    )


def point_message(point: CalibrationPoint) -> outcomes_pb2.CalibrationPoint:
    message = outcomes_pb2.CalibrationPoint(
        escalation_threshold=point.escalation_threshold,
        frontier_share=point.frontier_share or 0.0,
    )
    if point.quality_share is not None:
        message.quality_share = point.quality_share
    return message


def _set_evaluation(row: cost_pb2.CostReportRow, totals: EvaluationTotals) -> None:
    row.evaluation.CopyFrom(
        cost_pb2.EvaluationCost(
            evaluations=totals.evaluations,
            judged=totals.judged,
            unparseable=totals.unparseable,
            failed=totals.failed,
            shadow_cost_usd=totals.shadow_cost_usd,
            judge_cost_usd=totals.judge_cost_usd,
            cost_usd=totals.cost_usd,
        )
    )
    if totals.quality is not None:
        row.quality.CopyFrom(
            cost_pb2.QualityEstimate(
                frontier_quality_share=totals.quality.frontier_quality_share,
                sample_size=totals.quality.sample_size,
            )
        )


def add_evaluations(
    report: cost_pb2.GetCostReportResponse,
    rows: dict[str, EvaluationTotals],
    total: EvaluationTotals | None,
) -> None:
    """Put each group's evaluation cost and quality on its report row (a group with only
    evaluations in the window gets a row with no requests, after the others)."""
    by_key = {row.key: row for row in report.rows}
    for key, totals in rows.items():
        row = by_key.get(key)
        if row is None:
            row = report.rows.add(key=key)
        _set_evaluation(row, totals)
    if total is not None:
        _set_evaluation(report.total, total)
