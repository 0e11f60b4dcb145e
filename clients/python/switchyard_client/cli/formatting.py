"""Pure text rendering for the CLI: decisions, hops, cost tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.cost.v1 import cost_pb2
from switchyard.api.router.v1 import router_pb2

__all__ = [
    "decision_line",
    "decision_record",
    "evaluation_table",
    "hops_table",
    "quality_phrase",
    "report_table",
    "route_only_table",
    "table",
    "usd",
]


def usd(value: float) -> str:
    """Money for people: the sign before the `$`, and always a digit that is not zero.

    $1.5000 and $0.0123 (four decimals from a cent up); smaller amounts keep at least two
    significant digits ($0.000123, $0.00000010, -$0.0000000032) down to a nano-dollar, the
    ledger's unit; below that, scientific ($1.0e-13). Zero is $0, never -$0.
    """
    if value == 0 or math.isnan(value):
        return "$0" if value == 0 else "$NaN"
    sign = "-" if value < 0 else ""
    size = abs(value)
    if math.isinf(size):
        return f"{sign}$inf"
    if size >= 0.01:
        return f"{sign}${size:.4f}"
    if size < 1e-10:
        return f"{sign}${size:.1e}"
    decimals = max(6, math.floor(-math.log10(size)) + 2)
    return f"{sign}${size:.{decimals}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _enum(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def decision_record(d: router_pb2.RoutingDecision) -> dict[str, Any]:
    c = d.classification
    has = d.HasField("classification")
    return {
        "task_type": _enum(classifier_pb2.TaskType, c.task_type, "TASK_TYPE_") if has else "",
        "complexity": round(c.complexity_score, 4) if has else None,
        "escalation_score": round(d.escalation_score, 4),
        "target": d.target,
        "model": d.model,
        "kind": _enum(router_pb2.TargetKind, d.target_kind, "TARGET_KIND_"),
        "reason": _enum(router_pb2.DecisionReason, d.reason, "DECISION_REASON_"),
    }


def decision_line(d: router_pb2.RoutingDecision) -> str:
    r = decision_record(d)
    task = r["task_type"] or "unknown task type"
    return (
        f"{r['target']} ({r['kind'].lower()}, model {r['model'] or 'default'}) - {r['reason']}: "
        f"{d.reason_detail} [{task}, escalation score {d.escalation_score:.2f}, "
        f"threshold {d.escalation_threshold:.2f}]"
    )


def hops_table(cost: router_pb2.CostBreakdown) -> str:
    rows = [
        [
            _enum(router_pb2.HopKind, h.kind, "HOP_KIND_").lower(),
            h.service,
            h.target or "-",
            h.model or "-",
            h.status,
            f"{h.latency_ms:.1f} ms",
            f"{h.input_tokens}/{h.output_tokens}",
            usd(h.cost_usd),
        ]
        for h in cost.hops
    ]
    rows.append(
        ["total", "", "", "", "", f"{cost.total_latency_ms:.1f} ms", "", usd(cost.total_cost_usd)]
    )
    return table(
        ["hop", "service", "target", "model", "status", "latency", "tokens in/out", "cost"], rows
    )


def _grouped_table(
    report: cost_pb2.GetCostReportResponse,
    columns: Sequence[str],
    cells: Callable[[cost_pb2.CostReportRow], list[str]],
    keep: Callable[[cost_pb2.CostReportRow], bool],
) -> str:
    """One line per kept row of the report (keyed by its group), then the TOTAL line."""
    rows = [[r.key or "(none)", *cells(r)] for r in report.rows if keep(r)]
    rows.append(["TOTAL", *cells(report.total)])
    grouping = _enum(cost_pb2.CostGrouping, report.group_by, "COST_GROUPING_").lower()
    return table([grouping, *columns], rows)


def report_table(report: cost_pb2.GetCostReportResponse) -> str:
    """The answered requests per group, the saving, then route-only calls apart (if any)."""

    def cells(r: cost_pb2.CostReportRow) -> list[str]:
        return [
            str(r.requests),
            str(r.failed_requests),
            f"{r.input_tokens}/{r.output_tokens}",
            f"{r.latency_p50_ms:.0f}/{r.latency_p95_ms:.0f} ms",
            usd(r.cost_usd),
            usd(r.baseline_cost_usd),
            usd(r.saving_usd),
        ]

    columns = ["requests", "failed", "tokens in/out", "p50/p95", "cost"]
    columns += [f"all-frontier ({report.baseline_model})", "saving"]
    text = _grouped_table(report, columns, cells, lambda r: r.requests > 0)
    base = report.total.baseline_cost_usd
    if base > 0:
        share = 100 * report.total.saving_usd / base
        text += (
            f"\n\nSaving against sending everything to {report.baseline_model}: "
            f"{usd(report.total.saving_usd)} ({share:.1f}%), {quality_phrase(report.total)}"
        )
    elif report.total.HasField("quality"):
        text += f"\n\nRouted answers {quality_phrase(report.total)}"
    if report.total.route_only.requests:
        text += "\n\n" + route_only_table(report)
    if report.total.evaluation.evaluations:
        text += "\n\n" + evaluation_table(report)
    return text


def quality_phrase(row: cost_pb2.CostReportRow) -> str:
    """ "at 97% of frontier quality (n = 812 rated outcomes)", or why there is no estimate."""
    if not row.HasField("quality"):
        return "quality not estimated (no rated outcomes in this window)"
    q = row.quality
    return (
        f"at {100 * q.frontier_quality_share:.0f}% of frontier quality "
        f"(n = {q.sample_size} rated outcomes)"
    )


def evaluation_table(report: cost_pb2.GetCostReportResponse) -> str:
    """Shadow evaluation per group: its own cost (not in the costs above) and the quality."""

    def cells(r: cost_pb2.CostReportRow) -> list[str]:
        e = r.evaluation
        quality = (
            f"{100 * r.quality.frontier_quality_share:.0f}% (n={r.quality.sample_size})"
            if r.HasField("quality")
            else "-"
        )
        return [
            str(e.evaluations),
            str(e.judged),
            str(e.unparseable),
            str(e.failed),
            usd(e.shadow_cost_usd),
            usd(e.judge_cost_usd),
            usd(e.cost_usd),
            quality,
        ]

    columns = ["evaluations", "judged", "unparseable", "failed", "shadow", "judge", "cost"]
    columns.append("quality vs frontier")
    keep = lambda r: r.evaluation.evaluations > 0  # noqa: E731
    return "Shadow evaluation (its own cost, not in the costs above):\n" + _grouped_table(
        report, columns, cells, keep
    )


def route_only_table(report: cost_pb2.GetCostReportResponse) -> str:
    """The report's route-only (decision) calls: classified and routed, never answered, so
    kept out of the requests and latency above."""

    def cells(r: cost_pb2.CostReportRow) -> list[str]:
        calls = r.route_only
        return [
            str(calls.requests),
            str(calls.failed_requests),
            f"{calls.latency_p50_ms:.0f}/{calls.latency_p95_ms:.0f} ms",
            usd(calls.cost_usd),
        ]

    columns = ["route-only calls", "failed", "p50/p95", "cost"]
    keep = lambda r: r.route_only.requests > 0  # noqa: E731
    return "Route-only calls (decisions only, not counted above):\n" + _grouped_table(
        report, columns, cells, keep
    )
