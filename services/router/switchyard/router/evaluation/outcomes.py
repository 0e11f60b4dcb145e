"""What an outcome says, and what the outcomes of a window say together. Pure.

- `outcome_flags(verdict, feedback, served)`: `local_ok` and `frontier_ok` (None: not rated),
  from the judge's verdict and the caller's feedback, as docs/services/outcomes.md defines them
  (`local_ok`: the local answer was at least as good as the frontier's, or the caller said it
  was good; feedback decides the tier it rates);
- `quality_estimate(outcomes)`: the routed answers' quality as a share of all-frontier quality,
  `sum(w * ok(served)) / sum(w * frontier_ok)` over outcomes with both tiers rated, each
  weighted `w = 1 / sample_share`;
- `evaluation_rows(summaries, grouping)`: the cost report's evaluation cost and quality per
  group and in total.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from switchyard.router.ledger.outcome_records import (
    EvaluationSummary,
    FeedbackVerdict,
    Verdict,
)
from switchyard.router.ledger.records import Grouping, from_nanodollars

__all__ = [
    "EvaluationTotals",
    "Quality",
    "RatedOutcome",
    "evaluation_rows",
    "outcome_flags",
    "quality_estimate",
]

_JUDGE_FLAGS: dict[Verdict, tuple[bool, bool]] = {
    Verdict.LOCAL_BETTER: (True, False),
    Verdict.FRONTIER_BETTER: (False, True),
    Verdict.TIE: (True, True),
}


def outcome_flags(
    verdict: Verdict | None, feedback: FeedbackVerdict | None, served: str
) -> tuple[bool | None, bool | None]:
    """(local_ok, frontier_ok) of a request served by the `served` tier (LOCAL / FRONTIER)."""
    local_ok, frontier_ok = _JUDGE_FLAGS.get(verdict, (None, None)) if verdict else (None, None)
    if feedback is not None:
        good = feedback is FeedbackVerdict.GOOD
        if served == "LOCAL":
            local_ok = good
        else:
            frontier_ok = good
    return local_ok, frontier_ok


@dataclass(frozen=True, slots=True)
class RatedOutcome:
    """An outcome with both tiers rated, as the estimate and calibration weigh it."""

    local_ok: bool
    frontier_ok: bool
    #: The share it was sampled at (its weight is the inverse).
    sample_share: float
    escalation_score: float | None = None
    served: str = "LOCAL"

    @property
    def weight(self) -> float:
        return 1.0 / self.sample_share


@dataclass(frozen=True, slots=True)
class Quality:
    """The quality of routed answers as a share of all-frontier quality, and its sample."""

    frontier_quality_share: float
    sample_size: int


def quality_estimate(outcomes: Iterable[RatedOutcome]) -> Quality | None:
    """The routed answers' quality against all-frontier; None without a rated outcome, or when
    no frontier answer was rated good (the ratio has no denominator)."""
    routed = frontier = 0.0
    n = 0
    for o in outcomes:
        n += 1
        served_ok = o.local_ok if o.served == "LOCAL" else o.frontier_ok
        routed += o.weight * served_ok
        frontier += o.weight * o.frontier_ok
    if n == 0 or frontier <= 0.0:
        return None
    return Quality(routed / frontier, n)


@dataclass(frozen=True, slots=True)
class EvaluationTotals:
    """One group's evaluations (cost.v1.EvaluationCost) and quality estimate."""

    key: str
    evaluations: int
    judged: int
    unparseable: int
    failed: int
    shadow_cost_usd: float
    judge_cost_usd: float
    cost_usd: float
    quality: Quality | None


_KEYS: dict[Grouping, Callable[[EvaluationSummary], str]] = {
    Grouping.MODEL: lambda s: s.model,
    Grouping.TASK_TYPE: lambda s: s.task_type,
    Grouping.TENANT: lambda s: s.tenant,
    Grouping.TARGET: lambda s: s.target,
}


def _rated(summary: EvaluationSummary) -> RatedOutcome | None:
    local_ok, frontier_ok = outcome_flags(summary.verdict, summary.feedback, summary.served_kind)
    if local_ok is None or frontier_ok is None:
        return None
    return RatedOutcome(local_ok, frontier_ok, summary.sample_share, served=summary.served_kind)


def _totals(key: str, group: Sequence[EvaluationSummary]) -> EvaluationTotals:
    shadow = sum(s.shadow_cost_nusd for s in group)
    judge = sum(s.judge_cost_nusd for s in group)
    failed = {Verdict.SHADOW_FAILED, Verdict.JUDGE_FAILED}
    rated = [r for r in map(_rated, group) if r is not None]
    return EvaluationTotals(
        key=key,
        evaluations=len(group),
        judged=sum(1 for s in group if s.verdict.judged),
        unparseable=sum(1 for s in group if s.verdict is Verdict.UNPARSEABLE),
        failed=sum(1 for s in group if s.verdict in failed),
        shadow_cost_usd=from_nanodollars(shadow),
        judge_cost_usd=from_nanodollars(judge),
        cost_usd=from_nanodollars(shadow + judge),
        quality=quality_estimate(rated),
    )


def evaluation_rows(
    summaries: Sequence[EvaluationSummary], grouping: Grouping
) -> tuple[dict[str, EvaluationTotals], EvaluationTotals | None]:
    """Per group key, and over all of `summaries` (None when there are none)."""
    key = _KEYS[grouping]
    groups: dict[str, list[EvaluationSummary]] = {}
    for summary in summaries:
        groups.setdefault(key(summary), []).append(summary)
    rows = {name: _totals(name, group) for name, group in sorted(groups.items())}
    return rows, (_totals("", summaries) if summaries else None)
