"""Between the ledger's report types and `switchyard.cost.v1` messages. Pure, no I/O."""

from __future__ import annotations

from switchyard.api.cost.v1 import cost_pb2
from switchyard.router.ledger.records import CostReport, CostReportRow, Grouping

__all__ = ["grouping_from_proto", "grouping_to_proto", "report_to_proto", "row_to_proto"]

_GROUPINGS: dict[int, Grouping] = {
    cost_pb2.COST_GROUPING_MODEL: Grouping.MODEL,
    cost_pb2.COST_GROUPING_TASK_TYPE: Grouping.TASK_TYPE,
    cost_pb2.COST_GROUPING_TENANT: Grouping.TENANT,
    cost_pb2.COST_GROUPING_TARGET: Grouping.TARGET,
}
_PROTO_GROUPINGS = {grouping: value for value, grouping in _GROUPINGS.items()}


def grouping_from_proto(value: int) -> Grouping | None:
    """The ledger grouping of a `CostGrouping` value; None for UNSPECIFIED or unknown values."""
    return _GROUPINGS.get(value)


def grouping_to_proto(grouping: Grouping) -> int:
    return _PROTO_GROUPINGS[grouping]


def row_to_proto(row: CostReportRow) -> cost_pb2.CostReportRow:
    message = cost_pb2.CostReportRow(
        key=row.key,
        requests=row.requests,
        failed_requests=row.failed_requests,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        latency_p50_ms=row.latency_p50_ms,
        latency_p95_ms=row.latency_p95_ms,
        baseline_cost_usd=row.baseline_cost_usd,
        saving_usd=row.saving_usd,
    )
    routed = row.route_only
    if routed.requests:  # unset when there were none (reads as zeros)
        message.route_only.CopyFrom(
            cost_pb2.RouteOnlyCalls(
                requests=routed.requests,
                failed_requests=routed.failed_requests,
                cost_usd=routed.cost_usd,
                latency_p50_ms=routed.latency_p50_ms,
                latency_p95_ms=routed.latency_p95_ms,
            )
        )
    return message


def report_to_proto(report: CostReport, baseline_model: str) -> cost_pb2.GetCostReportResponse:
    response = cost_pb2.GetCostReportResponse(
        group_by=grouping_to_proto(report.group_by),  # type: ignore[arg-type]
        rows=[row_to_proto(row) for row in report.rows],
        total=row_to_proto(report.total),
        baseline_model=baseline_model,
    )
    response.start_time.FromDatetime(report.start)
    response.end_time.FromDatetime(report.end)
    return response
