"""What the ledger keeps about outcomes: shadow evaluations, the callers' feedback, and what it
reads back for the export, the cost report's evaluation and quality lines, and calibration.
Pure data and validation, no I/O (docs/services/outcomes.md).

Money is integer nano-dollars in the database, as for requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from switchyard.router.ledger.records import (  # the same checks as a request's record
    STATUS_NAMES,
    TARGET_KINDS,
    _check_latency,
    _check_money,
    _check_text,
    _check_tokens,
    require_utc,
)

__all__ = [
    "MAX_REASON_CHARS",
    "EvaluationRecord",
    "EvaluationSummary",
    "FeedbackRecord",
    "FeedbackVerdict",
    "JudgeOrder",
    "OutcomeRow",
    "RequestFacts",
    "Verdict",
]

#: The longest feedback reason accepted (characters).
MAX_REASON_CHARS = 500


class Verdict(StrEnum):
    """A shadow evaluation's result: the judge's two orders combined, or why there is none."""

    LOCAL_BETTER = "LOCAL_BETTER"
    FRONTIER_BETTER = "FRONTIER_BETTER"
    TIE = "TIE"
    UNPARSEABLE = "UNPARSEABLE"
    SHADOW_FAILED = "SHADOW_FAILED"
    JUDGE_FAILED = "JUDGE_FAILED"

    @property
    def judged(self) -> bool:
        """True for a verdict that compares the answers (not a failure or an unreadable reply)."""
        return self in _JUDGED


_JUDGED = frozenset({Verdict.LOCAL_BETTER, Verdict.FRONTIER_BETTER, Verdict.TIE})


class JudgeOrder(StrEnum):
    """What the judge answered in one order, as the tier it preferred ("" : not asked)."""

    LOCAL = "LOCAL"
    FRONTIER = "FRONTIER"
    TIE = "TIE"
    UNPARSEABLE = "UNPARSEABLE"
    NOT_ASKED = ""


class FeedbackVerdict(StrEnum):
    GOOD = "GOOD"
    NOT_GOOD = "NOT_GOOD"


def _kind(value: str, field: str) -> None:
    if value not in TARGET_KINDS:
        raise ValueError(f"{field} must be 'LOCAL' or 'FRONTIER', got {value!r}")


def _request_id(value: str) -> None:
    _check_text(value, "request_id")
    if len(value) > 200:
        raise ValueError("request_id must be at most 200 characters")


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """One shadow evaluation: the other tier's answer to a request, and the judge's verdict."""

    request_id: str
    time: datetime  # when the evaluation finished (its cost counts on that UTC day)
    tenant: str
    sample_share: float  # (0, 1]: the share the request was sampled at
    served_kind: str  # LOCAL | FRONTIER: the tier that answered the caller
    served_target: str
    served_model: str
    shadow_target: str
    shadow_model: str
    shadow_status: str  # gRPC status code name of the shadow call
    shadow_latency_ms: float
    shadow_cost_usd: float
    shadow_input_tokens: int
    shadow_output_tokens: int
    judge_target: str
    judge_model: str
    judge_status: str  # the worse of the two judge calls; "" when the judge was not asked
    first_order: JudgeOrder
    second_order: JudgeOrder
    verdict: Verdict
    judge_cost_usd: float
    #: The text the classifier read, only where the operator opted in to storing prompts.
    prompt: str | None = None
    #: An unparseable judge reply's start (only where prompts are stored: it may quote them).
    judge_reply: str | None = None

    def __post_init__(self) -> None:
        _request_id(self.request_id)
        object.__setattr__(self, "time", require_utc(self.time, "time"))
        _check_text(self.tenant, "tenant")
        share = self.sample_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise ValueError(f"sample_share must be in (0, 1], got {share!r}")
        _kind(self.served_kind, "served_kind")
        for name in ("served_target", "served_model", "shadow_target", "shadow_model"):
            _check_text(getattr(self, name), name)
        _check_text(self.judge_target, "judge_target")
        _check_text(self.judge_model, "judge_model", allow_empty=True)
        if self.shadow_status not in STATUS_NAMES:
            raise ValueError(f"shadow_status must be a gRPC status, got {self.shadow_status!r}")
        if self.judge_status and self.judge_status not in STATUS_NAMES:
            raise ValueError(f"judge_status must be a gRPC status name, got {self.judge_status!r}")
        _check_latency(self.shadow_latency_ms, "shadow_latency_ms")
        _check_money(self.shadow_cost_usd, "shadow_cost_usd")
        _check_money(self.judge_cost_usd, "judge_cost_usd")
        _check_tokens(self.shadow_input_tokens, "shadow_input_tokens")
        _check_tokens(self.shadow_output_tokens, "shadow_output_tokens")
        object.__setattr__(self, "first_order", JudgeOrder(self.first_order))
        object.__setattr__(self, "second_order", JudgeOrder(self.second_order))
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        for name in ("prompt", "judge_reply"):
            value = getattr(self, name)
            if value is not None:
                _check_text(value, name, allow_empty=True)

    @property
    def cost_usd(self) -> float:
        return self.shadow_cost_usd + self.judge_cost_usd


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A caller's rating of the answer to one of its requests: a partial outcome for the tier
    that served it."""

    request_id: str
    time: datetime  # when it was (last) given
    tenant: str
    served_kind: str
    served_target: str
    served_model: str
    verdict: FeedbackVerdict
    reason: str = ""

    def __post_init__(self) -> None:
        _request_id(self.request_id)
        object.__setattr__(self, "time", require_utc(self.time, "time"))
        _check_text(self.tenant, "tenant")
        _kind(self.served_kind, "served_kind")
        _check_text(self.served_target, "served_target")
        _check_text(self.served_model, "served_model")
        object.__setattr__(self, "verdict", FeedbackVerdict(self.verdict))
        _check_text(self.reason, "reason", allow_empty=True)
        if len(self.reason) > MAX_REASON_CHARS:
            raise ValueError(f"reason must be at most {MAX_REASON_CHARS} characters")


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What an outcome needs of its request's record (no attempts, no money)."""

    request_id: str
    time: datetime
    tenant: str
    task_type: str
    complexity: float | None
    escalation_score: float | None
    classifier_model_version: str
    prompt_chars: int
    input_tokens: int
    target_kind: str
    target: str
    model: str
    status: str
    operation: str


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """A request with its evaluation and its feedback (either may be missing)."""

    request: RequestFacts
    evaluation: EvaluationRecord | None
    feedback: FeedbackRecord | None


@dataclass(frozen=True, slots=True)
class EvaluationSummary:
    """One evaluation as the cost report aggregates it, with its request's group keys ("" when
    the request's row is not in the ledger yet)."""

    model: str
    task_type: str
    tenant: str
    target: str
    verdict: Verdict
    served_kind: str
    sample_share: float
    shadow_cost_nusd: int
    judge_cost_nusd: int
    feedback: FeedbackVerdict | None
