"""Picking the escalation threshold from a window's decisions and outcomes. Pure.

- `for_frontier_share(scores, share)`: the threshold at which at most `share` of the decisions
  escalate, as close to it as their scores allow (ties cannot be split);
- `for_quality(outcomes, target)`: the cheapest threshold (the highest: fewest escalations) at
  which routing the rated outcomes keeps `target` of all-frontier quality. At threshold `t` a
  request with score >= t is answered by the frontier (`frontier_ok` counts), else locally
  (`local_ok` counts); quality is `sum(w * ok) / sum(w * frontier_ok)`, `w = 1 / sample_share`;
- `point(t, scores, outcomes)`: what any threshold gives on the window.

A chosen threshold lies between two neighbouring scores (the lowest escalated and the highest
kept local), at their midpoint rounded to as few decimals as keep it between them, so a config
line with that number routes the window exactly as computed.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from switchyard.router.evaluation.outcomes import RatedOutcome

__all__ = [
    "CalibrationPoint",
    "for_frontier_share",
    "for_quality",
    "point",
    "quality_at",
    "share_at",
]


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    escalation_threshold: float
    #: Share of the decisions that escalate at the threshold (None: no decisions).
    frontier_share: float | None
    #: Quality as a share of all-frontier quality (None: no rated outcomes).
    quality_share: float | None


def _between(low: float, high: float) -> float:
    """A tidy number in (low, high]: the midpoint with as few decimals as stay inside."""
    middle = (low + high) / 2
    for digits in range(1, 16):
        candidate = round(middle, digits)
        if low < candidate <= high:
            return candidate
    return high


def _cut_above(ordered_desc: Sequence[float], escalated: int) -> float:
    """The threshold that escalates exactly the first `escalated` of the descending scores
    (which must differ from the next one)."""
    if escalated >= len(ordered_desc):
        return 0.0
    top = ordered_desc[escalated - 1] if escalated > 0 else 1.0
    if escalated == 0 and ordered_desc[0] >= 1.0:
        return 1.0  # a score of exactly 1 escalates at every threshold
    return _between(ordered_desc[escalated], top)


def share_at(threshold: float, ordered_asc: Sequence[float]) -> float | None:
    """Share of the (ascending) scores at or above `threshold`."""
    if not ordered_asc:
        return None
    return (len(ordered_asc) - bisect.bisect_left(ordered_asc, threshold)) / len(ordered_asc)


def quality_at(threshold: float, outcomes: Sequence[RatedOutcome]) -> float | None:
    """Quality of routing `outcomes` at `threshold`, as a share of all-frontier quality."""
    routed = frontier = 0.0
    for o in outcomes:
        escalated = o.escalation_score is not None and o.escalation_score >= threshold
        routed += o.weight * (o.frontier_ok if escalated else o.local_ok)
        frontier += o.weight * o.frontier_ok
    return routed / frontier if frontier > 0 else None


def point(
    threshold: float, scores: Sequence[float], outcomes: Sequence[RatedOutcome]
) -> CalibrationPoint:
    ordered = sorted(scores)
    return CalibrationPoint(
        threshold,
        share_at(threshold, ordered),
        quality_at(threshold, outcomes) if outcomes else None,
    )


def for_frontier_share(
    scores: Sequence[float], share: float, outcomes: Sequence[RatedOutcome] = ()
) -> CalibrationPoint:
    """The threshold escalating at most `share` of `scores` (as many as ties allow)."""
    if not scores:
        raise ValueError("no decisions with an escalation score in the window")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the frontier share must be in [0, 1], got {share}")
    ordered = sorted(scores, reverse=True)
    escalated = int(share * len(ordered) + 1e-9)
    # a tie across the cut cannot be split: escalate fewer, not more
    while 0 < escalated < len(ordered) and ordered[escalated - 1] == ordered[escalated]:
        escalated -= 1
    return point(_cut_above(ordered, escalated), scores, outcomes)


def for_quality(
    outcomes: Sequence[RatedOutcome], target: float, scores: Sequence[float] = ()
) -> tuple[CalibrationPoint, bool]:
    """The cheapest threshold keeping `target` of frontier quality on `outcomes`, and whether
    any threshold met it (if none did: 0, every request escalated)."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"the quality target must be in (0, 1], got {target}")
    rated = [o for o in outcomes if o.escalation_score is not None]
    if not rated:
        raise ValueError("no rated outcomes with an escalation score in the window")
    distinct = sorted({o.escalation_score for o in rated if o.escalation_score is not None})
    descending = distinct[::-1]
    traffic = scores or [o.escalation_score for o in rated if o.escalation_score is not None]
    for escalated in range(len(descending) + 1):
        threshold = _cut_above(descending, escalated)
        quality = quality_at(threshold, rated)
        if quality is not None and quality >= target - 1e-12:
            return point(threshold, traffic, rated), True
    return point(0.0, traffic, rated), False
