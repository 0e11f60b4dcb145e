from __future__ import annotations

import copy

import pytest
from router_fixtures import BASE, config, raw

from switchyard.router.config import (
    ConfigError,
    TargetKind,
    hash_api_key,
    load_config,
    parse_config,
)


def test_valid_config_binds_targets_to_backend_kinds() -> None:
    cfg = config()
    assert cfg.target_kind("local-code") is TargetKind.LOCAL
    assert cfg.target_kind("frontier-strong") is TargetKind.FRONTIER
    assert cfg.baseline_target == "frontier-general"


def test_every_problem_is_listed_in_one_message() -> None:
    data = copy.deepcopy(BASE)
    data["targets"]["local-general"]["backend"] = "nowhere"
    data["routing"]["escalation_threshold"] = 1.5
    data["routing"]["task_rules"]["POETRY"] = {"target": "local-general"}
    with pytest.raises(ConfigError) as err:
        parse_config(data, "x.yaml")
    message = str(err.value)
    assert "x.yaml" in message
    assert "escalation_threshold" in message
    assert "POETRY" in message


def test_reference_errors_are_listed_together() -> None:
    data = copy.deepcopy(BASE)
    data["targets"]["local-general"]["backend"] = "nowhere"
    data["routing"]["frontier_target"] = "local-code"
    data["routing"]["fallbacks"]["local-general"] = ["ghost"]
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    message = str(err.value)
    assert "unknown backend 'nowhere'" in message
    assert "routing.frontier_target: target 'local-code' is LOCAL" in message
    assert "unknown target 'ghost'" in message


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match="surprise: Extra inputs"):
        parse_config(raw(surprise=1))


def test_plain_api_keys_are_rejected_and_not_echoed() -> None:
    data = raw()
    data["tenants"]["acme"]["api_key_sha256"] = ["sk-very-secret"]
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert "SHA-256" in str(err.value)
    assert "sk-very-secret" not in str(err.value)


def test_a_key_shared_by_two_tenants_is_rejected() -> None:
    data = raw()
    data["tenants"]["globex"]["api_key_sha256"] = [hash_api_key("acme-key")]
    with pytest.raises(ConfigError, match="also listed for tenant 'acme'"):
        parse_config(data)


def test_soft_budget_above_hard_is_rejected() -> None:
    data = raw()
    data["tenants"]["acme"]["budget"] = {"monthly_soft_usd": 5, "monthly_hard_usd": 3}
    with pytest.raises(ConfigError, match="monthly_soft_usd"):
        parse_config(data)


def test_fixed_rule_cannot_also_escalate() -> None:
    data = raw()
    data["routing"]["task_rules"]["MATH"] = {
        "target": "frontier-strong",
        "escalation_threshold": 0.2,
    }
    with pytest.raises(ConfigError, match="routes there always"):
        parse_config(data)


def test_load_config_reports_missing_file_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(scalar)


def test_example_config_in_repo_is_valid() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "config" / "router.yaml"
    cfg = load_config(path)
    assert cfg.routing.default_target in cfg.targets


def test_task_rule_values_are_validated_strictly_and_all_problems_listed() -> None:
    data = raw()
    data["routing"]["task_rules"] = {
        "CLASSIFICATION": {"threshold_delta": 0.2, "escalation_threshold": 0.6},
        "EXTRACTION": {"threshold_delta": "0.2"},
        "MATH": {"target": "frontier-strong", "threshold_delta": -0.1},
        "SCIENCE": {"threshold_delta": 1.5},
        "CHAT": {},
        "SUMMARIZATION": {"threshold_delta": True},
        "CREATIVE_WRITING": {"thresold_delta": 0.1},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, "r.yaml")
    message = str(err.value)
    for expected in (
        "task_rules.CLASSIFICATION: Value error, set escalation_threshold (absolute) or "
        "threshold_delta",
        "task_rules.EXTRACTION.threshold_delta: Input should be a valid number",
        "task_rules.MATH: Value error, a rule with `target` routes there always (no "
        "escalation); it cannot also set threshold_delta",
        "task_rules.SCIENCE.threshold_delta: Input should be less than or equal to 1",
        "task_rules.CHAT: Value error, an empty rule changes nothing",
        "task_rules.SUMMARIZATION.threshold_delta: Input should be a valid number",
        "task_rules.CREATIVE_WRITING.thresold_delta: Extra inputs are not permitted",
    ):
        assert expected in message, (expected, message)
    assert "7 problem(s)" in message


def test_a_delta_that_leaves_zero_to_one_is_refused() -> None:
    data = raw()
    data["routing"]["escalation_threshold"] = 0.9
    data["routing"]["task_rules"] = {"CLASSIFICATION": {"threshold_delta": 0.2}}
    with pytest.raises(ConfigError, match=r"0.9 \+ threshold_delta 0.2 = 1.1, outside \[0, 1\]"):
        parse_config(data)


def test_whole_numbers_are_still_numbers() -> None:
    data = raw()
    data["routing"]["escalation_threshold"] = 1
    data["routing"]["task_rules"] = {"CHAT": {"threshold_delta": 0}}
    data["tenants"]["acme"]["budget"] = {"daily_soft_usd": 5, "daily_hard_usd": 10}
    cfg = parse_config(data)
    assert cfg.routing.escalation_threshold == 1.0
    assert cfg.routing.task_rules["CHAT"].threshold(0.5) == 0.5


def test_forced_targets_is_classify_by_default_and_only_classify_or_skip() -> None:
    assert config().classifier.forced_targets == "classify"
    data = copy.deepcopy(BASE)
    data["classifier"]["forced_targets"] = "skip"
    assert parse_config(data).classifier.forced_targets == "skip"
    data["classifier"]["forced_targets"] = "never"
    with pytest.raises(ConfigError, match=r"classifier\.forced_targets.*'classify' or 'skip'"):
        parse_config(data)
