from __future__ import annotations

import pytest
from router_fixtures import config

from switchyard.router.config import TargetKind
from switchyard.router.policy import (
    Classified,
    DecisionReason,
    Overrides,
    PolicyInputs,
    admissible,
    bind,
    decide,
    estimate_tokens,
    price,
)
from switchyard.runtime.errors import FailedPrecondition, InvalidArgument

CFG = config()


def inputs(
    task: str = "CHAT",
    score: float = 0.2,
    *,
    classified: bool = True,
    soft: bool = False,
    tokens: tuple[int, int] = (100, 100),
    **overrides: object,
) -> PolicyInputs:
    return PolicyInputs(
        classification=Classified(task, 0.5, score) if classified else None,
        overrides=Overrides(**overrides),  # type: ignore[arg-type]
        soft_budget_exceeded=soft,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )


def names(decision) -> list[str]:
    return [t.name for t in decision.chain]


def test_below_threshold_goes_local_with_fallback_to_frontier() -> None:
    d = decide(CFG, inputs(score=0.49))
    assert d.target.name == "local-general"
    assert d.reason is DecisionReason.BELOW_THRESHOLD
    assert names(d) == ["local-general", "frontier-general"]
    assert d.escalation_score == 0.49
    assert d.escalation_threshold == 0.5


def test_at_threshold_escalates() -> None:
    d = decide(CFG, inputs(score=0.5))
    assert d.target.name == "frontier-general"
    assert d.target.kind is TargetKind.FRONTIER
    assert d.reason is DecisionReason.ESCALATED
    assert names(d) == ["frontier-general", "local-general"]
    assert d.estimated_cost_usd == pytest.approx((100 * 0.15 + 100 * 0.6) / 1e6)


def test_task_rule_fixed_target() -> None:
    d = decide(CFG, inputs("MATH", 0.0))
    assert d.target.name == "frontier-strong"
    assert d.reason is DecisionReason.TASK_RULE
    assert names(d) == ["frontier-strong", "frontier-general", "local-general"]
    d = decide(CFG, inputs("CLASSIFICATION", 0.99))
    assert (d.target.name, d.reason) == ("local-general", DecisionReason.TASK_RULE)


def test_task_rule_with_own_targets_and_threshold() -> None:
    low = decide(CFG, inputs("CODE_GENERATION", 0.29))
    assert (low.target.name, low.reason) == ("local-code", DecisionReason.BELOW_THRESHOLD)
    assert low.escalation_threshold == 0.3
    assert names(low) == ["local-code", "local-general", "frontier-general"]
    high = decide(CFG, inputs("CODE_GENERATION", 0.3))
    assert (high.target.name, high.reason) == ("frontier-strong", DecisionReason.ESCALATED)
    assert high.target.model == "gpt-4o"


def test_request_threshold_overrides_rule_and_default() -> None:
    d = decide(CFG, inputs("CODE_GENERATION", 0.35, escalation_threshold=0.9))
    assert d.target.name == "local-code"
    assert d.escalation_threshold == 0.9
    d = decide(CFG, inputs("CHAT", 0.1, escalation_threshold=0.0))
    assert d.reason is DecisionReason.ESCALATED


def test_request_threshold_out_of_range_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        decide(CFG, inputs(escalation_threshold=1.5))


def test_disallow_frontier_keeps_escalation_local_and_prunes_fallbacks() -> None:
    d = decide(CFG, inputs(score=0.9, disallow_frontier=True))
    assert d.target.name == "local-general"
    assert d.reason is DecisionReason.FRONTIER_DISALLOWED
    assert names(d) == ["local-general"]
    d = decide(CFG, inputs("MATH", disallow_frontier=True))
    assert d.reason is DecisionReason.FRONTIER_DISALLOWED
    assert all(t.kind is TargetKind.LOCAL for t in d.chain)


def test_soft_budget_refuses_escalation_and_frontier_fallbacks() -> None:
    d = decide(CFG, inputs(score=0.9, soft=True))
    assert (d.target.name, d.reason) == ("local-general", DecisionReason.BUDGET_SOFT_LIMIT)
    assert names(d) == ["local-general"]
    below = decide(CFG, inputs(score=0.1, soft=True))
    assert below.reason is DecisionReason.BELOW_THRESHOLD
    assert names(below) == ["local-general"]


def test_cost_ceiling_refuses_expensive_targets() -> None:
    big = (10_000, 1_000)
    frontier_cost = price(bind(CFG, "frontier-general").pricing, *big)
    d = decide(CFG, inputs(score=0.9, tokens=big, max_cost_usd=frontier_cost / 2))
    assert (d.target.name, d.reason) == ("local-general", DecisionReason.COST_CEILING)
    assert "exceeds max_cost_usd" in d.detail
    ok = decide(CFG, inputs(score=0.9, tokens=big, max_cost_usd=frontier_cost))
    assert ok.reason is DecisionReason.ESCALATED


def test_no_admissible_target_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition, match="not allowed"):
        decide(CFG, inputs(score=0.1, max_cost_usd=0.0))


def test_forced_target() -> None:
    d = decide(CFG, inputs(score=0.0, force_target="frontier-strong"))
    assert (d.target.name, d.reason) == ("frontier-strong", DecisionReason.FORCED)
    with pytest.raises(InvalidArgument, match="unknown target 'nope'"):
        decide(CFG, inputs(force_target="nope"))
    with pytest.raises(InvalidArgument, match="disallow_frontier"):
        decide(CFG, inputs(force_target="frontier-strong", disallow_frontier=True))
    soft = decide(CFG, inputs(force_target="frontier-strong", soft=True))
    assert (soft.target.name, soft.reason) == ("local-general", DecisionReason.BUDGET_SOFT_LIMIT)
    with pytest.raises(FailedPrecondition, match="max_cost_usd"):
        decide(CFG, inputs(force_target="frontier-strong", max_cost_usd=0.0))


def test_forced_target_skips_task_rules_but_not_fallbacks() -> None:
    d = decide(CFG, inputs("MATH", 0.0, force_target="local-code"))
    assert d.reason is DecisionReason.FORCED
    assert names(d) == ["local-code", "local-general", "frontier-general"]


def test_classifier_unavailable_uses_default_route() -> None:
    d = decide(CFG, inputs(classified=False))
    assert (d.target.name, d.reason) == ("local-general", DecisionReason.CLASSIFIER_UNAVAILABLE)
    assert "default route" in d.detail
    assert d.escalation_score == 0.0


def test_classifier_unavailable_with_frontier_default_respects_limits() -> None:
    data = config().model_dump()
    data["routing"]["default_target"] = "frontier-general"
    from switchyard.router.config import parse_config

    cfg = parse_config(data)
    d = decide(cfg, inputs(classified=False))
    assert d.target.name == "frontier-general"
    soft = decide(cfg, inputs(classified=False, soft=True))
    assert (soft.target.name, soft.reason) == (
        "local-general",
        DecisionReason.CLASSIFIER_UNAVAILABLE,
    )
    assert "soft budget" in soft.detail


def test_admissible_reasons() -> None:
    frontier = bind(CFG, "frontier-general")
    local = bind(CFG, "local-general")
    assert admissible(local, inputs(disallow_frontier=True, soft=True)) is None
    assert "disallowed" in (admissible(frontier, inputs(disallow_frontier=True)) or "")
    assert "soft budget" in (admissible(frontier, inputs(soft=True)) or "")
    assert admissible(frontier, inputs()) is None


def test_fallback_chain_has_no_duplicates() -> None:
    data = config().model_dump()
    data["routing"]["fallbacks"]["local-general"] = [
        "local-general",
        "frontier-general",
        "frontier-general",
    ]
    from switchyard.router.config import parse_config

    d = decide(parse_config(data), inputs(score=0.0))
    assert names(d) == ["local-general", "frontier-general"]


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert price(bind(CFG, "frontier-strong").pricing, 1_000_000, 0) == pytest.approx(2.5)


def test_classifier_error_other_than_down_or_late_is_named_as_such() -> None:
    for status, reason in (
        ("UNAVAILABLE", DecisionReason.CLASSIFIER_UNAVAILABLE),
        ("DEADLINE_EXCEEDED", DecisionReason.CLASSIFIER_UNAVAILABLE),
        ("INTERNAL", DecisionReason.CLASSIFIER_FAILED),
        ("INVALID_ARGUMENT", DecisionReason.CLASSIFIER_FAILED),
    ):
        d = decide(CFG, PolicyInputs(classification=None, classifier_status=status))
        assert (d.target.name, d.reason) == ("local-general", reason), status
        assert f"({status}): default route" in d.detail


def with_rules(**rules: dict[str, object]):
    from router_fixtures import raw

    from switchyard.router.config import parse_config

    data = raw()
    data["routing"]["task_rules"] = rules
    return parse_config(data)


def test_threshold_delta_moves_the_threshold_for_its_task_type_only() -> None:
    cfg = with_rules(CLASSIFICATION={"threshold_delta": 0.2}, MATH={"threshold_delta": -0.1})
    stays = decide(cfg, inputs("CLASSIFICATION", 0.69))
    assert (stays.target.name, stays.reason) == ("local-general", DecisionReason.BELOW_THRESHOLD)
    assert stays.escalation_threshold == pytest.approx(0.7)
    assert "(CLASSIFICATION rule)" in stays.detail
    # a hard request misread as CLASSIFICATION still escalates: the rule does not force
    hard = decide(cfg, inputs("CLASSIFICATION", 0.8))
    assert (hard.target.name, hard.reason) == ("frontier-general", DecisionReason.ESCALATED)
    math = decide(cfg, inputs("MATH", 0.4))
    assert (math.reason, math.escalation_threshold) == (
        DecisionReason.ESCALATED,
        pytest.approx(0.4),
    )
    chat = decide(cfg, inputs("CHAT", 0.69))
    assert (chat.reason, chat.escalation_threshold) == (DecisionReason.ESCALATED, 0.5)
    # the caller's own threshold still wins over the rule's
    asked = decide(cfg, inputs("CLASSIFICATION", 0.6, escalation_threshold=0.55))
    assert asked.reason is DecisionReason.ESCALATED


@pytest.mark.parametrize(
    "path",
    ["config/router.yaml", "deploy/compose/router.yaml", "deploy/k8s/base/config/router.yaml"],
)
def test_shipped_configs_adjust_thresholds_instead_of_forcing(path: str) -> None:
    from pathlib import Path

    from switchyard.router.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[3] / path)
    rules = cfg.routing.task_rules
    default = cfg.routing.escalation_threshold
    assert all(rule.target is None for rule in rules.values()), path
    # On the shipped classifier's scale: its calibrated score runs from about 0.06 ("hello") to
    # about 0.3 (docs/model-card-classifier.md); a default above that would escalate nothing.
    assert 0.05 < default < 0.3, path
    # A score at the default escalates a CHAT request ...
    assert decide(cfg, inputs("CHAT", default)).reason is DecisionReason.ESCALATED
    for task in ("CLASSIFICATION", "EXTRACTION"):
        cheap = default + (rules[task].threshold_delta or 0.0)
        assert default < cheap < 0.5, (path, task)
        # ... but not a cheap task type's,
        easy = decide(cfg, inputs(task, default))
        assert easy.reason is DecisionReason.BELOW_THRESHOLD, (path, task)
        # and a hard request misread as one still escalates: the rule does not force.
        hard = decide(cfg, inputs(task, cheap))
        assert hard.reason is DecisionReason.ESCALATED, (path, task)
        assert hard.target.kind is TargetKind.FRONTIER
    for task in ("MATH", "SCIENCE"):
        eager = default + (rules[task].threshold_delta or 0.0)
        assert 0.0 < eager < default, (path, task)
        # MATH and SCIENCE escalate, to the strong model, at a score that keeps CHAT local.
        stem = decide(cfg, inputs(task, eager))
        assert stem.reason is DecisionReason.ESCALATED, (path, task)
        assert stem.target.name == rules[task].frontier_target
        assert decide(cfg, inputs("CHAT", eager)).reason is DecisionReason.BELOW_THRESHOLD
