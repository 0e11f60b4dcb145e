"""Pure conversions between the router's domain objects and its protobuf messages."""

from __future__ import annotations

from dataclasses import dataclass

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2
from switchyard.router.config import TargetKind
from switchyard.router.policy import Classified, Decision, Overrides
from switchyard.runtime.errors import InvalidArgument

__all__ = [
    "EXCERPT_MARK",
    "HopResult",
    "classified",
    "classifier_excerpt",
    "decision_message",
    "hop_message",
    "overrides",
    "prompt_of",
    "task_type_name",
]

_TASK_PREFIX = "TASK_TYPE_"


@dataclass(frozen=True, slots=True)
class HopResult:
    """One call the router made: the classifier, or one backend attempt."""

    kind: str  # "CLASSIFY" | "GENERATE"
    service: str
    target: str
    model: str
    status: str  # gRPC status code name
    latency_ms: float
    cost_usd: float
    input_tokens: int = 0
    output_tokens: int = 0
    #: True when the cost was priced by the router (the backend reported none).
    cost_estimated: bool = False


def task_type_name(value: int) -> str:
    """`TASK_TYPE_MATH` -> `MATH`; unspecified -> ""."""
    if value == classifier_pb2.TASK_TYPE_UNSPECIFIED:
        return ""
    try:
        return classifier_pb2.TaskType.Name(value).removeprefix(_TASK_PREFIX)
    except ValueError:
        return ""


def classified(c: classifier_pb2.Classification) -> Classified:
    return Classified(
        task_type=task_type_name(c.task_type),
        complexity=min(1.0, max(0.0, c.complexity_score)),
        escalation_probability=min(1.0, max(0.0, c.escalation_probability)),
    )


def overrides(options: router_pb2.RoutingOptions) -> Overrides:
    threshold = options.escalation_threshold if options.HasField("escalation_threshold") else None
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InvalidArgument(f"routing.escalation_threshold must be in [0, 1], got {threshold}")
    ceiling = options.max_cost_usd if options.HasField("max_cost_usd") else None
    if ceiling is not None and not ceiling >= 0.0:
        raise InvalidArgument(f"routing.max_cost_usd must be >= 0, got {ceiling}")
    return Overrides(
        escalation_threshold=threshold,
        force_target=options.force_target.strip(),
        disallow_frontier=options.disallow_frontier,
        max_cost_usd=ceiling,
    )


def prompt_of(messages: list[inference_pb2.ChatMessage]) -> str:
    """What the classifier reads: the last user turn (the last turn when there is no user turn)."""
    if not messages:
        raise InvalidArgument("messages must hold at least one message")
    if not any(m.content.strip() for m in messages):
        raise InvalidArgument("messages must not all be empty")
    for message in reversed(messages):
        if message.role == inference_pb2.ROLE_USER and message.content.strip():
            return message.content
    for message in reversed(messages):
        if message.content.strip():
            return message.content
    raise InvalidArgument("messages must not all be empty")  # pragma: no cover


#: Joins the start and the end of a prompt too long to send the classifier whole.
EXCERPT_MARK = "\n[...]\n"


def classifier_excerpt(prompt: str, max_bytes: int) -> tuple[str, bool]:
    """What the classifier is sent: `prompt` itself when it fits `max_bytes` (UTF-8), else its
    first three quarters and last quarter of that budget joined by `EXCERPT_MARK` (cut on
    character boundaries, never longer than `max_bytes`). The bool says whether it was cut."""
    data = prompt.encode("utf-8")
    if len(data) <= max_bytes:
        return prompt, False
    room = max_bytes - len(EXCERPT_MARK.encode("utf-8"))
    head = room * 3 // 4
    tail = room - head
    start = data[:head].decode("utf-8", errors="ignore")
    end = data[len(data) - tail :].decode("utf-8", errors="ignore")
    return start + EXCERPT_MARK + end, True


_KIND = {
    TargetKind.LOCAL: router_pb2.TARGET_KIND_LOCAL,
    TargetKind.FRONTIER: router_pb2.TARGET_KIND_FRONTIER,
}


def decision_message(
    decision: Decision,
    classification: classifier_pb2.Classification | None,
    *,
    target_override: tuple[str, TargetKind, str, str] | None = None,
    prompt_truncated: bool = False,
) -> router_pb2.RoutingDecision:
    """The decision as sent; `target_override` (name, kind, backend, model) after a fallback;
    `prompt_truncated` when the classifier was sent an excerpt."""
    name, kind, backend, model = target_override or (
        decision.target.name,
        decision.target.kind,
        decision.target.backend,
        decision.target.model,
    )
    message = router_pb2.RoutingDecision(
        target=name,
        target_kind=_KIND[kind],
        backend=backend,
        model=model,
        reason=router_pb2.DecisionReason.Value(f"DECISION_REASON_{decision.reason.value}"),
        reason_detail=decision.detail,
        escalation_score=decision.escalation_score,
        escalation_threshold=decision.escalation_threshold,
        estimated_cost_usd=decision.estimated_cost_usd,
        prompt_truncated_for_classification=prompt_truncated,
    )
    if classification is not None:
        message.classification.CopyFrom(classification)
    return message


def hop_message(hop: HopResult) -> router_pb2.Hop:
    return router_pb2.Hop(
        kind=router_pb2.HopKind.Value(f"HOP_KIND_{hop.kind}"),
        service=hop.service,
        target=hop.target,
        model=hop.model,
        status=hop.status,
        latency_ms=hop.latency_ms,
        cost_usd=hop.cost_usd,
        input_tokens=hop.input_tokens,
        output_tokens=hop.output_tokens,
    )
