"""Pure parts of outcomes: sampling, the judge's prompt and replies, combining the two orders,
outcome flags, the quality estimate, calibration, the evaluation section of router.yaml, and
the outcome file's lines and the CLI's text."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest
from router_fixtures import config, raw

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.cost.v1 import cost_pb2
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import outcomes_pb2, router_pb2
from switchyard.router.config import ConfigError, TargetKind, parse_config
from switchyard.router.evaluation.calibration import (
    for_frontier_share,
    for_quality,
    quality_at,
    share_at,
)
from switchyard.router.evaluation.judge import (
    CUT_MARK,
    JUDGE_QUESTION,
    combine,
    judge_messages,
    read_reply,
)
from switchyard.router.evaluation.outcomes import (
    RatedOutcome,
    evaluation_rows,
    outcome_flags,
    quality_estimate,
)
from switchyard.router.evaluation.sampling import (
    is_sampled,
    other_tier,
    sample_share,
    stores_prompts,
)
from switchyard.router.ledger import (
    EvaluationSummary,
    FeedbackVerdict,
    Grouping,
    JudgeOrder,
    Verdict,
)
from switchyard_client.cli.formatting import quality_phrase
from switchyard_client.cli.outcomes import config_lines
from switchyard_client.outcomes import outcome_record

L, F, T, U, N = (
    JudgeOrder.LOCAL,
    JudgeOrder.FRONTIER,
    JudgeOrder.TIE,
    JudgeOrder.UNPARSEABLE,
    JudgeOrder.NOT_ASKED,
)
EVALUATION = {
    "judge_target": "frontier-strong",
    "share": 0.01,
    "task_types": {"MATH": 0.5},
    "tenants": {
        "acme": {"share": 0.2, "task_types": {"CHAT": 0.9}, "store_prompts": True},
        "globex": {"share": 0.0},
    },
    "daily_budget_usd": 1.0,
}


# ---- sampling -----------------------------------------------------------------------------------


def test_the_most_specific_share_wins() -> None:
    cfg = config(evaluation=EVALUATION)
    assert sample_share(cfg, "acme", "CHAT") == 0.9  # tenant's task type
    assert sample_share(cfg, "acme", "MATH") == 0.2  # tenant's share over the task type's
    assert sample_share(cfg, "globex", "MATH") == 0.0  # a tenant opted out
    assert sample_share(cfg, "initech", "MATH") == 0.5  # the task type's
    assert sample_share(cfg, "initech", "") == 0.01  # the default (unclassified too)
    assert sample_share(config(), "acme", "CHAT") == 0.0  # off by default


def test_sampling_is_a_function_of_the_request_id_at_about_the_share() -> None:
    ids = [f"request-{i}" for i in range(20_000)]
    sampled = [i for i in ids if is_sampled(i, 0.1)]
    assert 0.09 < len(sampled) / len(ids) < 0.11
    assert sampled == [i for i in ids if is_sampled(i, 0.1)]  # the same every time
    assert set(sampled) <= {i for i in ids if is_sampled(i, 0.3)}  # nested as shares grow
    assert not any(is_sampled(i, 0.0) for i in ids[:100])
    assert all(is_sampled(i, 1.0) for i in ids[:100])


def test_the_other_tier_is_the_policys_pair_for_the_task_type() -> None:
    cfg = config()
    assert other_tier(cfg, "CHAT", TargetKind.LOCAL) == "frontier-general"
    assert other_tier(cfg, "CHAT", TargetKind.FRONTIER) == "local-general"
    assert other_tier(cfg, "CODE_GENERATION", TargetKind.LOCAL) == "frontier-strong"
    assert other_tier(cfg, "CODE_GENERATION", TargetKind.FRONTIER) == "local-code"
    assert other_tier(cfg, "MATH", TargetKind.FRONTIER) == "local-general"  # a forcing rule


def test_prompts_are_stored_only_where_opted_in() -> None:
    cfg = config(evaluation=EVALUATION)
    assert stores_prompts(cfg, "acme") and not stores_prompts(cfg, "globex")
    everyone = config(evaluation={**EVALUATION, "store_prompts": True})
    assert stores_prompts(everyone, "globex")


@pytest.mark.parametrize(
    ("evaluation", "problem"),
    [
        ({"share": 0.1, "daily_budget_usd": 1}, "needs judge_target"),
        ({"share": 0.1, "judge_target": "frontier-strong"}, "needs daily_budget_usd"),
        ({"share": "0.1"}, "evaluation.share"),
        ({"share": 1.5}, "evaluation.share"),
        ({"task_types": {"MATHS": 0.1}}, "unknown task type"),
        ({"tenants": {"acme": {"share": True}}}, "evaluation.tenants.acme.share"),
        ({"queue_size": 0}, "evaluation.queue_size"),
        ({"bogus": 1}, "evaluation.bogus"),
    ],
)
def test_the_evaluation_section_is_checked_strictly(evaluation: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_config(raw(evaluation=evaluation))


def test_the_judge_and_tenants_must_exist() -> None:
    with pytest.raises(ConfigError, match="evaluation.judge_target: unknown target 'gpt-judge'"):
        parse_config(raw(evaluation={**EVALUATION, "judge_target": "gpt-judge"}))
    with pytest.raises(ConfigError, match="evaluation.tenants: unknown tenant 'umbrella'"):
        parse_config(raw(evaluation={**EVALUATION, "tenants": {"umbrella": {"share": 1.0}}}))


# ---- the judge ----------------------------------------------------------------------------------


def user(text: str) -> inference_pb2.ChatMessage:
    return inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=text)


def test_the_judge_sees_the_request_and_both_answers_cut_to_size() -> None:
    conversation = [
        inference_pb2.ChatMessage(role=inference_pb2.ROLE_SYSTEM, content="Be brief."),
        user("x" * 300 + " what is 2+2?"),
    ]
    system, prompt = judge_messages(
        conversation, "A" * 500, "four", max_request_chars=100, max_answer_chars=200
    )
    assert system.role == inference_pb2.ROLE_SYSTEM and "impartial judge" in system.content
    body = prompt.content
    assert "what is 2+2?\n</request>" in body  # the end of the conversation is kept
    assert f"<request>\n{CUT_MARK}" in body
    assert f"<answer_a>\n{'A' * 200}\n{CUT_MARK}\n</answer_a>" in body  # its start is kept
    assert "<answer_b>\nfour\n</answer_b>" in body
    assert body.endswith(JUDGE_QUESTION)
    # one user message alone is shown as it is; several with their roles
    (_, alone) = judge_messages([user("hi")], "a", "b", max_request_chars=99, max_answer_chars=99)
    assert "<request>\nhi\n</request>" in alone.content
    assert (
        "[system]\nBe brief."
        in judge_messages(conversation, "a", "b", max_request_chars=10_000, max_answer_chars=99)[
            1
        ].content
    )


@pytest.mark.parametrize(
    ("reply", "local_first", "expected"),
    [
        ("VERDICT: A", True, L),
        ("VERDICT: A", False, F),
        ("verdict: b", True, F),
        ("Answer B is more complete.\nVERDICT: B", False, L),
        ("**VERDICT: TIE**", True, T),
        ("VERDICT: A\nVERDICT: A", True, L),  # the same verdict twice is one verdict
        ("VERDICT: A ... on reflection VERDICT: B", True, U),  # two verdicts: never guessed
        ("A is better.", True, U),
        ("VERDICT: ATTEMPT", True, U),
        ("", False, U),
    ],
)
def test_replies_are_read_or_marked_unparseable(
    reply: str, local_first: bool, expected: JudgeOrder
) -> None:
    assert read_reply(reply, local_first=local_first) is expected


@pytest.mark.parametrize(
    ("first", "second", "verdict"),
    [
        (L, L, Verdict.LOCAL_BETTER),
        (F, F, Verdict.FRONTIER_BETTER),
        (T, T, Verdict.TIE),
        (L, F, Verdict.TIE),  # each order prefers its first answer: position bias cancels
        (F, L, Verdict.TIE),
        (L, T, Verdict.TIE),
        (T, F, Verdict.TIE),
        (U, L, Verdict.UNPARSEABLE),
        (F, U, Verdict.UNPARSEABLE),
        (N, N, Verdict.UNPARSEABLE),
    ],
)
def test_the_two_orders_combine(first: JudgeOrder, second: JudgeOrder, verdict: Verdict) -> None:
    assert combine(first, second) is verdict


# ---- outcome flags and the quality estimate -----------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "feedback", "served", "flags"),
    [
        (Verdict.LOCAL_BETTER, None, "LOCAL", (True, False)),
        (Verdict.FRONTIER_BETTER, None, "LOCAL", (False, True)),
        (Verdict.TIE, None, "FRONTIER", (True, True)),
        (Verdict.UNPARSEABLE, None, "LOCAL", (None, None)),
        (None, FeedbackVerdict.GOOD, "LOCAL", (True, None)),  # partial: only the served tier
        (None, FeedbackVerdict.NOT_GOOD, "FRONTIER", (None, False)),
        (Verdict.TIE, FeedbackVerdict.NOT_GOOD, "LOCAL", (False, True)),  # feedback decides
        (Verdict.SHADOW_FAILED, FeedbackVerdict.GOOD, "FRONTIER", (None, True)),
    ],
)
def test_outcome_flags(verdict, feedback, served, flags) -> None:  # noqa: ANN001
    assert outcome_flags(verdict, feedback, served) == flags


def test_quality_is_weighted_by_the_inverse_of_the_sample_share() -> None:
    outcomes = [
        RatedOutcome(False, True, 0.5),  # local served, frontier better: weight 2
        RatedOutcome(True, True, 0.1),  # local as good: weight 10
        RatedOutcome(True, False, 1.0, served="FRONTIER"),  # served by the frontier: its flag
    ]
    quality = quality_estimate(outcomes)
    assert quality is not None and quality.sample_size == 3
    assert quality.frontier_quality_share == pytest.approx(10 / 12)
    assert quality_estimate([]) is None
    assert quality_estimate([RatedOutcome(True, False, 1.0)]) is None  # no denominator


def test_the_cost_reports_evaluation_rows_by_group() -> None:
    def summary(task: str, verdict: Verdict, shadow: int = 100, judge: int = 10):  # noqa: ANN202
        return EvaluationSummary("m", task, "acme", "t", verdict, "LOCAL", 0.5, shadow, judge, None)

    summaries = [
        summary("MATH", Verdict.FRONTIER_BETTER),
        summary("MATH", Verdict.TIE),
        summary("MATH", Verdict.UNPARSEABLE),
        summary("CHAT", Verdict.SHADOW_FAILED, judge=0),
    ]
    rows, total = evaluation_rows(summaries, Grouping.TASK_TYPE)
    math = rows["MATH"]
    assert (math.evaluations, math.judged, math.unparseable, math.failed) == (3, 2, 1, 0)
    assert math.shadow_cost_usd == pytest.approx(300e-9) and math.cost_usd == pytest.approx(330e-9)
    assert math.quality is not None and math.quality.frontier_quality_share == 0.5
    assert rows["CHAT"].quality is None and rows["CHAT"].failed == 1
    assert total is not None and total.evaluations == 4 and total.cost_usd == pytest.approx(430e-9)
    assert evaluation_rows([], Grouping.MODEL) == ({}, None)


# ---- calibration --------------------------------------------------------------------------------


SCORES = [i / 10 for i in range(1, 11)]  # 0.1 .. 1.0


def test_a_frontier_share_gives_the_threshold_at_that_quantile() -> None:
    chosen = for_frontier_share(SCORES, 0.3)
    assert chosen.escalation_threshold == 0.8  # between 0.7 and 0.8: 0.8, 0.9, 1.0 escalate
    assert chosen.frontier_share == pytest.approx(0.3)
    assert for_frontier_share(SCORES, 1.0).escalation_threshold == 0.0
    assert for_frontier_share([0.2, 0.4], 0.0).escalation_threshold == 0.7  # above the highest
    assert for_frontier_share([0.2, 0.9], 0.5).escalation_threshold == 0.6


def test_ties_across_the_cut_escalate_fewer_not_more() -> None:
    chosen = for_frontier_share([0.1, 0.5, 0.5, 0.5, 0.9], 0.4)
    assert chosen.frontier_share == pytest.approx(0.2)  # 0.9 only: the three 0.5s go together
    with pytest.raises(ValueError, match="no decisions"):
        for_frontier_share([], 0.2)


def test_the_chosen_threshold_routes_the_window_exactly_as_computed() -> None:
    scores = [0.123456, 0.123457, 0.5, 0.51]
    chosen = for_frontier_share(scores, 0.75)
    assert 0.123456 < chosen.escalation_threshold <= 0.123457
    assert share_at(chosen.escalation_threshold, sorted(scores)) == 0.75


def outcome(score: float, local_ok: bool, frontier_ok: bool = True) -> RatedOutcome:
    return RatedOutcome(local_ok, frontier_ok, 1.0, escalation_score=score)


def test_the_cheapest_threshold_that_keeps_the_quality() -> None:
    # the local model fails on the two highest scores and on one low one
    outcomes = [outcome(s, ok) for s, ok in ((0.1, True), (0.2, False), (0.3, True),
                (0.4, True), (0.6, True), (0.8, False), (0.9, False))]  # fmt: skip
    assert quality_at(1.0, outcomes) == pytest.approx(4 / 7)  # all local
    chosen, met = for_quality(outcomes, 0.85)
    assert met and chosen.escalation_threshold == 0.7  # escalate 0.8 and 0.9: 6 / 7
    assert chosen.quality_share == pytest.approx(6 / 7)
    chosen, met = for_quality(outcomes, 1.0)
    assert met and chosen.escalation_threshold == 0.2  # everything from 0.2 up
    chosen, met = for_quality(outcomes, 0.5, scores=[0.05, 0.93])
    assert chosen.escalation_threshold == pytest.approx(0.95) and chosen.frontier_share == 0.0


def test_quality_calibration_needs_rated_outcomes() -> None:
    with pytest.raises(ValueError, match="no rated outcomes"):
        for_quality([RatedOutcome(True, True, 1.0)], 0.9)  # no escalation score
    with pytest.raises(ValueError, match="quality target"):
        for_quality([outcome(0.5, True)], 0.0)


# ---- the outcome file and the CLI's text --------------------------------------------------------


def test_an_outcome_becomes_its_file_line() -> None:
    message = outcomes_pb2.Outcome(
        request_id="r1",
        tenant="acme",
        task_type=classifier_pb2.TASK_TYPE_MATH,
        complexity=0.5,
        escalation_score=0.25,
        classifier_model_version="clf-2",
        prompt_chars=42,
        input_tokens=30,
        served=router_pb2.TARGET_KIND_LOCAL,
        local_model="smol",
        local_ok=True,
        feedback=outcomes_pb2.Feedback(verdict=outcomes_pb2.FEEDBACK_VERDICT_GOOD, reason="ok"),
    )
    message.time.FromDatetime(datetime(2026, 6, 15, 12, tzinfo=UTC))
    line = outcome_record(message)
    assert line == {
        "id": "r1",
        "time": "2026-06-15T12:00:00+00:00",
        "tenant": "acme",
        "task_type": "MATH",
        "complexity": 0.5,
        "escalation_score": 0.25,
        "classifier_model_version": "clf-2",
        "prompt_chars": 42,
        "input_tokens": 30,
        "served": "LOCAL",
        "local_model": "smol",
        "frontier_model": None,
        "local_ok": True,
        "frontier_ok": None,
        "partial": True,
        "source": "feedback",
        "sample_share": None,
        "judge": None,
        "feedback": {"verdict": "GOOD", "reason": "ok"},
    }
    message.judgement.CopyFrom(
        outcomes_pb2.Judgement(
            verdict=outcomes_pb2.JUDGE_VERDICT_TIE,
            model="judge-1",
            first_order=outcomes_pb2.JUDGE_ORDER_LOCAL,
            second_order=outcomes_pb2.JUDGE_ORDER_FRONTIER,
        )
    )
    message.frontier_ok = True
    message.prompt = "2+2?"
    line = outcome_record(message)
    assert line["judge"] == {"verdict": "TIE", "model": "judge-1", "orders": ["LOCAL", "FRONTIER"]}
    assert line["source"] == "judge+feedback" and line["partial"] is False
    assert line["prompt"] == "2+2?"


def test_calibration_prints_the_config_lines_to_apply() -> None:
    assert config_lines(0.42, "") == "routing:\n  escalation_threshold: 0.42"
    assert "    MATH: {escalation_threshold: 0.35}" in config_lines(0.35, "math")


def test_the_quality_phrase_names_its_sample() -> None:
    row = cost_pb2.CostReportRow()
    assert "not estimated" in quality_phrase(row)
    row.quality.frontier_quality_share = 0.971
    row.quality.sample_size = 812
    assert quality_phrase(row) == "at 97% of frontier quality (n = 812 rated outcomes)"


def test_cli_parses_the_outcome_commands() -> None:
    from switchyard_client.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["feedback", "abc", "bad", "--reason", "wrong year"])
    assert (args.request_id, args.verdict, args.reason) == ("abc", "bad", "wrong year")
    args = parser.parse_args(["outcomes", "export", "--days", "7", "--task-type", "MATH"])
    assert args.days == 7 and args.task_type == ["MATH"]
    with pytest.raises(SystemExit):
        parser.parse_args(["calibrate", "--frontier-share", "0.2", "--quality", "0.9"])
    assert isinstance(parser.parse_args(["calibrate", "--quality", "0.9"]), argparse.Namespace)
