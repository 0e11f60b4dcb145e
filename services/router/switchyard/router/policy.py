"""The routing policy: pure, no I/O.

Given the classifier's output (or its absence), the caller's routing options, the tenant's
budget state and the configuration, `decide` picks a logical target, says why, and returns the
ordered chain of targets to try (the choice first, then its configured fallbacks, minus any the
request may not use). `admissible` re-checks one target right before an attempt, with the
budget state of that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from switchyard.router.config import Pricing, RouterConfig, TargetKind
from switchyard.runtime.errors import FailedPrecondition, InvalidArgument, quote

__all__ = [
    "BoundTarget",
    "Classified",
    "Decision",
    "DecisionReason",
    "Overrides",
    "PolicyInputs",
    "admissible",
    "bind",
    "decide",
    "estimate_cost",
    "estimate_tokens",
    "price",
]


class DecisionReason(StrEnum):
    """Mirrors `switchyard.router.v1.DecisionReason` without the prefix."""

    BELOW_THRESHOLD = "BELOW_THRESHOLD"
    ESCALATED = "ESCALATED"
    TASK_RULE = "TASK_RULE"
    FORCED = "FORCED"
    FRONTIER_DISALLOWED = "FRONTIER_DISALLOWED"
    BUDGET_SOFT_LIMIT = "BUDGET_SOFT_LIMIT"
    COST_CEILING = "COST_CEILING"
    CLASSIFIER_UNAVAILABLE = "CLASSIFIER_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class BoundTarget:
    """A logical target resolved through the model registry."""

    name: str
    kind: TargetKind
    backend: str
    model: str
    pricing: Pricing


@dataclass(frozen=True, slots=True)
class Classified:
    """What the policy uses of a classification."""

    task_type: str  # TaskType name without prefix; "" when unknown
    complexity: float
    escalation_probability: float


@dataclass(frozen=True, slots=True)
class Overrides:
    """Per-request routing options."""

    escalation_threshold: float | None = None
    force_target: str = ""
    disallow_frontier: bool = False
    max_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    classification: Classified | None  # None: classifier down or past its deadline
    overrides: Overrides = field(default_factory=Overrides)
    soft_budget_exceeded: bool = False
    input_tokens: int = 0
    output_tokens: int = 0  # expected output tokens (max_tokens or the configured estimate)


@dataclass(frozen=True, slots=True)
class Decision:
    target: BoundTarget
    reason: DecisionReason
    detail: str
    escalation_score: float
    escalation_threshold: float
    estimated_cost_usd: float
    #: Targets to try in order; `chain[0] is target`.
    chain: tuple[BoundTarget, ...]


def bind(config: RouterConfig, name: str) -> BoundTarget:
    """Resolve a logical target name; InvalidArgument when the registry has no such target."""
    target = config.targets.get(name)
    if target is None:
        raise InvalidArgument(
            f"unknown target {quote(name)}; configured targets: {sorted(config.targets)}"
        )
    return BoundTarget(
        name=name,
        kind=config.backends[target.backend].kind,
        backend=target.backend,
        model=target.model,
        pricing=target.pricing,
    )


def price(pricing: Pricing, input_tokens: int, output_tokens: int) -> float:
    """USD for the given token counts at `pricing`."""
    return (
        input_tokens * pricing.input_usd_per_million_tokens
        + output_tokens * pricing.output_usd_per_million_tokens
    ) / 1_000_000


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate of a text's tokens (about four characters per token)."""
    return max(1, (len(text) + 3) // 4)


def estimate_cost(target: BoundTarget, inputs: PolicyInputs) -> float:
    return price(target.pricing, inputs.input_tokens, inputs.output_tokens)


def admissible(target: BoundTarget, inputs: PolicyInputs) -> str | None:
    """Why `target` may not be tried for this request now, or None when it may."""
    o = inputs.overrides
    if target.kind is TargetKind.FRONTIER:
        if o.disallow_frontier:
            return "frontier targets are disallowed for this request"
        if inputs.soft_budget_exceeded:
            return "the tenant is over its soft budget: no frontier escalation"
    if o.max_cost_usd is not None:
        cost = estimate_cost(target, inputs)
        if cost > o.max_cost_usd:
            return f"estimated cost ${cost:.6f} exceeds max_cost_usd ${o.max_cost_usd:.6f}"
    return None


def _threshold(config: RouterConfig, inputs: PolicyInputs, rule_threshold: float | None) -> float:
    o = inputs.overrides.escalation_threshold
    if o is not None:
        if not 0.0 <= o <= 1.0:
            raise InvalidArgument(f"routing.escalation_threshold must be in [0, 1], got {o}")
        return o
    if rule_threshold is not None:
        return rule_threshold
    return config.routing.escalation_threshold


def _chain(
    config: RouterConfig, first: BoundTarget, inputs: PolicyInputs
) -> tuple[BoundTarget, ...]:
    chain = [first]
    for name in config.routing.fallbacks.get(first.name, []):
        candidate = bind(config, name)
        if candidate.name in {t.name for t in chain}:
            continue
        if admissible(candidate, inputs) is None:
            chain.append(candidate)
    return tuple(chain)


def _decision(
    config: RouterConfig,
    inputs: PolicyInputs,
    target: BoundTarget,
    reason: DecisionReason,
    detail: str,
    score: float,
    threshold: float,
) -> Decision:
    return Decision(
        target=target,
        reason=reason,
        detail=detail,
        escalation_score=score,
        escalation_threshold=threshold,
        estimated_cost_usd=estimate_cost(target, inputs),
        chain=_chain(config, target, inputs),
    )


def _local_instead(
    config: RouterConfig,
    inputs: PolicyInputs,
    wanted: BoundTarget,
    local: BoundTarget,
    why_wanted: str,
    score: float,
    threshold: float,
) -> Decision:
    """`wanted` (a frontier target) may not be used: explain why and go to `local`."""
    o = inputs.overrides
    if o.disallow_frontier:
        reason = DecisionReason.FRONTIER_DISALLOWED
        why = "the caller disallowed frontier targets"
    elif inputs.soft_budget_exceeded:
        reason = DecisionReason.BUDGET_SOFT_LIMIT
        why = "the tenant is over its soft budget"
    else:
        reason = DecisionReason.COST_CEILING
        why = (
            f"{wanted.name}'s estimate ${estimate_cost(wanted, inputs):.6f} exceeds "
            f"max_cost_usd ${o.max_cost_usd:.6f}"
        )
    refusal = admissible(local, inputs)
    if refusal is not None:
        raise FailedPrecondition(
            f"{why_wanted} but {why}, and the local target {local.name!r} is not allowed "
            f"either: {refusal}"
        )
    return _decision(
        config, inputs, local, reason, f"{why_wanted} but {why}: {local.name}", score, threshold
    )


def decide(config: RouterConfig, inputs: PolicyInputs) -> Decision:
    """Pick the target for one request. Raises InvalidArgument / FailedPrecondition."""
    r = config.routing
    o = inputs.overrides
    c = inputs.classification
    score = c.escalation_probability if c is not None else 0.0
    rule = r.task_rules.get(c.task_type) if c is not None else None
    threshold = _threshold(config, inputs, rule.escalation_threshold if rule else None)
    local = bind(config, (rule.local_target if rule else None) or r.local_target)
    frontier = bind(config, (rule.frontier_target if rule else None) or r.frontier_target)

    if o.force_target:
        forced = bind(config, o.force_target)
        if forced.kind is TargetKind.FRONTIER and o.disallow_frontier:
            raise InvalidArgument(
                f"force_target {forced.name!r} is a frontier target but disallow_frontier is set"
            )
        refusal = admissible(forced, inputs)
        if refusal is None:
            return _decision(
                config,
                inputs,
                forced,
                DecisionReason.FORCED,
                f"the caller forced target {forced.name}",
                score,
                threshold,
            )
        if forced.kind is TargetKind.FRONTIER and inputs.soft_budget_exceeded:
            return _local_instead(
                config,
                inputs,
                forced,
                local,
                f"the caller forced {forced.name}",
                score,
                threshold,
            )
        raise FailedPrecondition(f"forced target {forced.name!r} is not allowed: {refusal}")

    if c is None:
        default = bind(config, r.default_target)
        why = "the classifier was unavailable or past its deadline: default route"
        if admissible(default, inputs) is not None and default.kind is TargetKind.FRONTIER:
            fallback = _local_instead(config, inputs, default, local, why, score, threshold)
            # keep the reason honest: the classifier is why we are on a default route at all
            return _decision(
                config,
                inputs,
                fallback.target,
                DecisionReason.CLASSIFIER_UNAVAILABLE,
                fallback.detail,
                score,
                threshold,
            )
        refusal = admissible(default, inputs)
        if refusal is not None:
            raise FailedPrecondition(f"{why} {default.name!r}, which is not allowed: {refusal}")
        return _decision(
            config,
            inputs,
            default,
            DecisionReason.CLASSIFIER_UNAVAILABLE,
            f"{why} {default.name}",
            score,
            threshold,
        )

    if rule is not None and rule.target is not None:
        fixed = bind(config, rule.target)
        why = f"task rule for {c.task_type} routes to {fixed.name}"
        refusal = admissible(fixed, inputs)
        if refusal is None:
            return _decision(config, inputs, fixed, DecisionReason.TASK_RULE, why, score, threshold)
        if fixed.kind is TargetKind.FRONTIER:
            return _local_instead(config, inputs, fixed, local, why, score, threshold)
        raise FailedPrecondition(f"{why}, which is not allowed: {refusal}")

    if score >= threshold:
        why = f"escalation score {score:.3f} >= threshold {threshold:.3f}"
        if admissible(frontier, inputs) is None:
            return _decision(
                config,
                inputs,
                frontier,
                DecisionReason.ESCALATED,
                f"{why}: {frontier.name}",
                score,
                threshold,
            )
        return _local_instead(config, inputs, frontier, local, why, score, threshold)

    why = f"escalation score {score:.3f} < threshold {threshold:.3f}"
    refusal = admissible(local, inputs)
    if refusal is not None:
        raise FailedPrecondition(f"{why} but local target {local.name!r} is not allowed: {refusal}")
    return _decision(
        config,
        inputs,
        local,
        DecisionReason.BELOW_THRESHOLD,
        f"{why}: {local.name}",
        score,
        threshold,
    )
