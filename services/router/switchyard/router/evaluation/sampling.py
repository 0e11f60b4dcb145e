"""Which answered requests are shadow-evaluated, and what evaluates them. Pure.

A request's share is the most specific one configured: its tenant's share for its task type,
its tenant's share, the task type's share, then `evaluation.share`. Whether a request is
sampled is a function of its request id (its SHA-256 read as a number in [0, 1) below the
share), so the same request is sampled the same way on every replica and in tests.
"""

from __future__ import annotations

import hashlib

from switchyard.router.config import RouterConfig, TargetKind

__all__ = ["is_sampled", "other_tier", "sample_share", "stores_prompts"]

_SCALE = float(2**64)


def sample_share(config: RouterConfig, tenant: str, task_type: str) -> float:
    """The share of `tenant`'s requests of `task_type` ("" when unclassified) to evaluate."""
    evaluation = config.evaluation
    rule = evaluation.tenants.get(tenant)
    if rule is not None:
        if task_type in rule.task_types:
            return rule.task_types[task_type]
        if rule.share is not None:
            return rule.share
    if task_type in evaluation.task_types:
        return evaluation.task_types[task_type]
    return evaluation.share


def is_sampled(request_id: str, share: float) -> bool:
    """Whether the request with `request_id` falls in a sample of `share` (0: never, 1: always)."""
    if share <= 0.0:
        return False
    if share >= 1.0:
        return True
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE < share


def other_tier(config: RouterConfig, task_type: str, served: TargetKind) -> str:
    """The target that answers a request of `task_type` served by the `served` tier in the
    shadow: the frontier target the policy pairs with its task type when it was served
    locally, the local target when it was served by a frontier model."""
    rule = config.routing.task_rules.get(task_type)
    if served is TargetKind.LOCAL:
        chosen = rule.frontier_target if rule is not None else None
        return chosen or config.routing.frontier_target
    chosen = rule.local_target if rule is not None else None
    return chosen or config.routing.local_target


def stores_prompts(config: RouterConfig, tenant: str) -> bool:
    """Whether the text the classifier read is kept for `tenant`'s evaluated requests."""
    rule = config.evaluation.tenants.get(tenant)
    if rule is not None and rule.store_prompts is not None:
        return rule.store_prompts
    return config.evaluation.store_prompts
