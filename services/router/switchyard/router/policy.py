"""The routing policy: pure, no I/O.

Given the classifier's output (or its absence), the caller's routing options, the tenant's
budget state, the prompt's size and the configuration, `decide` picks a logical target, says
why, and returns the ordered chain of targets to try (the choice first, then its configured
fallbacks, minus any the request may not use). A target whose context window cannot hold the
prompt plus the expected output is not admissible: the decision moves along the chain to the
first one that can (reason CONTEXT_WINDOW), and a request no target of the chain can hold is
refused (InvalidArgument naming the largest window). `admissible` re-checks one target right
before an attempt, with the budget state of that moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from switchyard.router.config import Pricing, RouterConfig, TargetKind, TaskRule
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
    "estimate_window_tokens",
    "price",
]

#: Tokens a chat template adds around each message (role markers, separators), counted in the
#: context-window estimate on top of the text itself.
TOKENS_PER_MESSAGE = 8


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
    CONTEXT_WINDOW = "CONTEXT_WINDOW"
    CLASSIFIER_FAILED = "CLASSIFIER_FAILED"


#: Classifier statuses that mean "down or late" (CLASSIFIER_UNAVAILABLE); any other failure is
#: CLASSIFIER_FAILED.
_CLASSIFIER_UNREACHABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


@dataclass(frozen=True, slots=True)
class BoundTarget:
    """A logical target resolved through the model registry."""

    name: str
    kind: TargetKind
    backend: str
    model: str
    pricing: Pricing
    #: Tokens of prompt plus output the model holds; None when unknown (then it is not checked).
    context_window: int | None = None


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
    classification: Classified | None  # None: the classifier failed (see classifier_status)
    overrides: Overrides = field(default_factory=Overrides)
    soft_budget_exceeded: bool = False
    input_tokens: int = 0  # estimated prompt tokens, for cost estimates
    output_tokens: int = 0  # expected output tokens (max_tokens or the configured estimate)
    #: Prompt tokens assumed for context-window checks (a cautious estimate, see
    #: `estimate_window_tokens`); 0: not checked.
    window_tokens: int = 0
    #: Context windows learned from the backends, by target name (config overrides win).
    context_windows: Mapping[str, int] = field(default_factory=dict)
    #: The classify call's gRPC status name when `classification` is None.
    classifier_status: str = "UNAVAILABLE"


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


def bind(
    config: RouterConfig, name: str, context_windows: Mapping[str, int] | None = None
) -> BoundTarget:
    """Resolve a logical target name; InvalidArgument when the registry has no such target.

    The target's context window is its configured `context_window`, else the one learned from
    its backend (`context_windows`, by target name), else unknown.
    """
    target = config.targets.get(name)
    if target is None:
        raise InvalidArgument(
            f"unknown target {quote(name)}; configured targets: {sorted(config.targets)}"
        )
    window = target.context_window
    if window is None and context_windows:
        window = context_windows.get(name)
    return BoundTarget(
        name=name,
        kind=config.backends[target.backend].kind,
        backend=target.backend,
        model=target.model,
        pricing=target.pricing,
        context_window=window,
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


def _byte_classes() -> bytes:
    table = bytearray(b"!" * 256)  # ASCII punctuation and symbols
    for c in range(128, 256):
        table[c] = ord("u")  # a byte of a non-ASCII character
    for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[c] = ord("a")
    for c in b"0123456789":
        table[c] = ord("0")
    for c in b"\t\n\r\x0b\x0c":
        table[c] = ord("n")
    table[ord(" ")] = ord(" ")
    return bytes(table)


#: Maps each byte of UTF-8 text to its class: a letter, 0 digit, ! symbol, space, n other
#: white space, u non-ASCII.
_BYTE_CLASSES = _byte_classes()
_LETTERS_ONLY = bytes.maketrans(b"0!nu", b"    ")


def estimate_window_tokens(texts: list[str], factor: float = 1.0) -> int:
    """Prompt tokens to assume against a context window, without the backend's tokenizer.

    Cautious by design (docs/routing-policy.md has the measurements and the command): each run
    of ASCII letters counts one token per 4 letters (rounded up), each digit, ASCII symbol,
    newline or tab one, non-ASCII text one per 1.5 UTF-8 bytes, other spaces one per 4 (a
    space before a word is part of the word's token); the sum is multiplied by `factor`
    (routing.window_estimate_factor), plus `TOKENS_PER_MESSAGE` per message for the chat
    template. Byte-level, so a 300 KB prompt costs milliseconds.
    """
    total = 0
    for text in texts:
        classes = text.encode("utf-8").translate(_BYTE_CLASSES)
        total += classes.count(b"0") + classes.count(b"!") + classes.count(b"n")
        total += -(-2 * classes.count(b"u") // 3)
        total += sum((len(run) + 3) // 4 for run in classes.translate(_LETTERS_ONLY).split())
        total += -(-(classes.count(b" ") - classes.count(b" a")) // 4)
    return math.ceil(total * factor) + TOKENS_PER_MESSAGE * len(texts)


def estimate_cost(target: BoundTarget, inputs: PolicyInputs) -> float:
    return price(target.pricing, inputs.input_tokens, inputs.output_tokens)


def _needed_tokens(inputs: PolicyInputs) -> int:
    return inputs.window_tokens + inputs.output_tokens


def _window_refusal(target: BoundTarget, inputs: PolicyInputs) -> str | None:
    """Why `target`'s context window cannot hold this request, or None when it can (or when
    its window or the prompt's size is unknown)."""
    window = target.context_window
    if window is None or inputs.window_tokens <= 0:
        return None
    if _needed_tokens(inputs) <= window:
        return None
    return (
        f"{target.name}'s context window ({window} tokens) cannot hold the prompt (about "
        f"{inputs.window_tokens} tokens) plus {inputs.output_tokens} output tokens"
    )


def admissible(target: BoundTarget, inputs: PolicyInputs) -> str | None:
    """Why `target` may not be tried for this request now, or None when it may."""
    return _policy_refusal(target, inputs) or _window_refusal(target, inputs)


def _policy_refusal(target: BoundTarget, inputs: PolicyInputs) -> str | None:
    """Why the request's options or budget rule `target` out (size aside), or None."""
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


def _threshold(config: RouterConfig, inputs: PolicyInputs, rule: TaskRule | None) -> float:
    o = inputs.overrides.escalation_threshold
    if o is not None:
        if not 0.0 <= o <= 1.0:
            raise InvalidArgument(f"routing.escalation_threshold must be in [0, 1], got {o}")
        return o
    default = config.routing.escalation_threshold
    threshold = rule.threshold(default) if rule is not None else None
    return default if threshold is None else threshold


def _bind(config: RouterConfig, inputs: PolicyInputs, name: str) -> BoundTarget:
    return bind(config, name, inputs.context_windows)


def _chain(
    config: RouterConfig, first: BoundTarget, inputs: PolicyInputs
) -> tuple[BoundTarget, ...]:
    """`first`, then its configured fallbacks the request may use (size included)."""
    chain = [first]
    for name in config.routing.fallbacks.get(first.name, []):
        candidate = _bind(config, inputs, name)
        if candidate.name in {t.name for t in chain}:
            continue
        if admissible(candidate, inputs) is None:
            chain.append(candidate)
    return tuple(chain)


def _fits_nowhere(config: RouterConfig, inputs: PolicyInputs, first: BoundTarget) -> str:
    """The refusal of a request that no target of `first`'s chain can hold."""
    candidates = [first]
    for name in config.routing.fallbacks.get(first.name, []):
        if name not in {t.name for t in candidates}:
            candidates.append(_bind(config, inputs, name))
    known = [t for t in candidates if t.context_window is not None]
    largest = max(known, key=lambda t: t.context_window or 0)
    message = (
        f"the prompt (about {inputs.window_tokens} tokens) plus {inputs.output_tokens} output "
        f"tokens fits the context window of no target this request may use; the largest among "
        f"{first.name} and its fallbacks is {largest.context_window} tokens ({largest.name})"
    )
    excluded = [
        f"{t.name} {'would hold it' if t.context_window else '(window unknown) would be tried'} "
        f"but {refusal}"
        for t in candidates
        if _window_refusal(t, inputs) is None and (refusal := _policy_refusal(t, inputs))
    ]
    if excluded:
        message += " (" + "; ".join(excluded) + ")"
    return message + ". Shorten the prompt or lower max_tokens."


def _decision(
    config: RouterConfig,
    inputs: PolicyInputs,
    target: BoundTarget,
    reason: DecisionReason,
    detail: str,
    score: float,
    threshold: float,
) -> Decision:
    """The decision for `target`, moved along its chain when its context window is too small."""
    chain = _chain(config, target, inputs)
    misfit = _window_refusal(target, inputs)
    if misfit is not None:
        chain = chain[1:]
        if not chain:
            raise InvalidArgument(_fits_nowhere(config, inputs, target))
        moved = chain[0]
        window = "unknown" if moved.context_window is None else str(moved.context_window)
        detail = f"{detail}, but {misfit}: moved to {moved.name} (context window {window})"
        target, reason = moved, DecisionReason.CONTEXT_WINDOW
    return Decision(
        target=target,
        reason=reason,
        detail=detail,
        escalation_score=score,
        escalation_threshold=threshold,
        estimated_cost_usd=estimate_cost(target, inputs),
        chain=chain,
    )


def _local_instead(
    inputs: PolicyInputs, wanted: BoundTarget, local: BoundTarget, why_wanted: str
) -> tuple[BoundTarget, DecisionReason, str]:
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
    refusal = _policy_refusal(local, inputs)
    if refusal is not None:
        raise FailedPrecondition(
            f"{why_wanted} but {why}, and the local target {local.name!r} is not allowed "
            f"either: {refusal}"
        )
    return local, reason, f"{why_wanted} but {why}: {local.name}"


def _default_route(
    config: RouterConfig, inputs: PolicyInputs, local: BoundTarget
) -> tuple[BoundTarget, DecisionReason, str]:
    """No classification: the configured default target, and why."""
    default = _bind(config, inputs, config.routing.default_target)
    status = inputs.classifier_status
    if status in _CLASSIFIER_UNREACHABLE:
        reason = DecisionReason.CLASSIFIER_UNAVAILABLE
        why = f"the classifier was unavailable or past its deadline ({status}): default route"
    else:
        reason = DecisionReason.CLASSIFIER_FAILED
        why = f"the classifier failed ({status}): default route"
    refusal = _policy_refusal(default, inputs)
    if refusal is None:
        return default, reason, f"{why} {default.name}"
    if default.kind is TargetKind.FRONTIER:
        # keep the reason honest: the classifier is why we are on a default route at all
        target, _, detail = _local_instead(inputs, default, local, why)
        return target, reason, detail
    raise FailedPrecondition(f"{why} {default.name!r}, which is not allowed: {refusal}")


def _choose(
    config: RouterConfig, inputs: PolicyInputs, score: float, threshold: float
) -> tuple[BoundTarget, DecisionReason, str]:
    """The policy's choice before the context-window check (see the module docstring)."""
    r = config.routing
    o = inputs.overrides
    c = inputs.classification
    rule = r.task_rules.get(c.task_type) if c is not None else None
    local = _bind(config, inputs, (rule.local_target if rule else None) or r.local_target)
    frontier = _bind(config, inputs, (rule.frontier_target if rule else None) or r.frontier_target)

    if o.force_target:
        forced = _bind(config, inputs, o.force_target)
        if forced.kind is TargetKind.FRONTIER and o.disallow_frontier:
            raise InvalidArgument(
                f"force_target {forced.name!r} is a frontier target but disallow_frontier is set"
            )
        refusal = _policy_refusal(forced, inputs)
        if refusal is None:
            return forced, DecisionReason.FORCED, f"the caller forced target {forced.name}"
        if forced.kind is TargetKind.FRONTIER and inputs.soft_budget_exceeded:
            return _local_instead(inputs, forced, local, f"the caller forced {forced.name}")
        raise FailedPrecondition(f"forced target {forced.name!r} is not allowed: {refusal}")

    if c is None:
        return _default_route(config, inputs, local)

    if rule is not None and rule.target is not None:
        fixed = _bind(config, inputs, rule.target)
        why = f"task rule for {c.task_type} routes to {fixed.name}"
        refusal = _policy_refusal(fixed, inputs)
        if refusal is None:
            return fixed, DecisionReason.TASK_RULE, why
        if fixed.kind is TargetKind.FRONTIER:
            return _local_instead(inputs, fixed, local, why)
        raise FailedPrecondition(f"{why}, which is not allowed: {refusal}")

    rule_note = f" ({c.task_type} rule)" if rule is not None else ""
    if score >= threshold:
        why = f"escalation score {score:.3f} >= threshold {threshold:.3f}{rule_note}"
        if _policy_refusal(frontier, inputs) is None:
            return frontier, DecisionReason.ESCALATED, f"{why}: {frontier.name}"
        return _local_instead(inputs, frontier, local, why)

    why = f"escalation score {score:.3f} < threshold {threshold:.3f}{rule_note}"
    refusal = _policy_refusal(local, inputs)
    if refusal is not None:
        raise FailedPrecondition(f"{why} but local target {local.name!r} is not allowed: {refusal}")
    return local, DecisionReason.BELOW_THRESHOLD, f"{why}: {local.name}"


def decide(config: RouterConfig, inputs: PolicyInputs) -> Decision:
    """Pick the target for one request. Raises InvalidArgument / FailedPrecondition."""
    c = inputs.classification
    score = c.escalation_probability if c is not None else 0.0
    rule = config.routing.task_rules.get(c.task_type) if c is not None else None
    threshold = _threshold(config, inputs, rule)
    target, reason, detail = _choose(config, inputs, score, threshold)
    return _decision(config, inputs, target, reason, detail, score, threshold)
