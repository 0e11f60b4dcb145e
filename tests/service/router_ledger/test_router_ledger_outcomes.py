"""The outcome tables on both ledger backends: SQLite on a file and a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from router_ledger_data import T0, make_record

from switchyard.router.ledger import (
    CostLedger,
    EvaluationRecord,
    FeedbackRecord,
    OutcomeStore,
    Verdict,
)


def evaluation(request_id: str, **changes: object) -> EvaluationRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "time": T0 + timedelta(hours=1, seconds=5),
        "tenant": "acme",
        "sample_share": 0.25,
        "served_kind": "LOCAL",
        "served_target": "local-small",
        "served_model": "smollm2-135m",
        "shadow_target": "frontier",
        "shadow_model": "gpt-4.1",
        "shadow_status": "OK",
        "shadow_latency_ms": 812.5,
        "shadow_cost_usd": 0.0012,
        "shadow_input_tokens": 100,
        "shadow_output_tokens": 40,
        "judge_target": "judge",
        "judge_model": "gpt-4.1",
        "judge_status": "OK",
        "first_order": "FRONTIER",
        "second_order": "FRONTIER",
        "verdict": "FRONTIER_BETTER",
        "judge_cost_usd": 0.0003,
    }
    values.update(changes)
    return EvaluationRecord(**values)  # type: ignore[arg-type]


def feedback(request_id: str, verdict: str = "GOOD", **changes: object) -> FeedbackRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "time": T0 + timedelta(hours=2),
        "tenant": "acme",
        "served_kind": "LOCAL",
        "served_target": "local-small",
        "served_model": "smollm2-135m",
        "verdict": verdict,
        "reason": "",
    }
    values.update(changes)
    return FeedbackRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(ledger: CostLedger) -> OutcomeStore:
    assert isinstance(ledger, OutcomeStore)
    return ledger


WINDOW = (T0, T0 + timedelta(days=1))


async def test_outcomes_join_requests_with_their_evaluation_and_feedback(
    ledger: CostLedger, store: OutcomeStore
) -> None:
    for i, task in enumerate(("MATH", "CHAT", "MATH", "CHAT")):
        record = make_record(f"r{i}", time=T0 + timedelta(hours=1, minutes=i), task_type=task)
        await ledger.record(dataclasses.replace(record, classifier_model_version="clf-7",
                                                prompt_chars=120 + i))  # fmt: skip
    await store.record_evaluation(evaluation("r0", prompt="what is 2+2?"))
    await store.record_evaluation(evaluation("r1", verdict="UNPARSEABLE", first_order="TIE",
                                             second_order="UNPARSEABLE"))  # fmt: skip
    await store.record_feedback(feedback("r2", "NOT_GOOD", reason="wrong unit"))
    # r1's evaluation has no verdict and no feedback: not an outcome; r3 has nothing
    rows = await store.outcomes(*WINDOW)
    assert [row.request.request_id for row in rows] == ["r0", "r2"]
    first, second = rows
    assert first.request.classifier_model_version == "clf-7" and first.request.prompt_chars == 120
    assert first.request.task_type == "MATH" and first.request.escalation_score is not None
    assert first.evaluation == evaluation("r0", prompt="what is 2+2?")  # round trip, money too
    assert first.feedback is None
    assert second.evaluation is None
    assert second.feedback == feedback("r2", "NOT_GOOD", reason="wrong unit")
    # the unparseable one counts once feedback arrives
    await store.record_feedback(feedback("r1"))
    rows = await store.outcomes(*WINDOW)
    assert [row.request.request_id for row in rows] == ["r0", "r1", "r2"]
    assert rows[1].evaluation is not None and rows[1].evaluation.verdict is Verdict.UNPARSEABLE


async def test_outcomes_filter_by_tenant_task_type_window_and_page_by_key(
    ledger: CostLedger, store: OutcomeStore
) -> None:
    same_time = T0 + timedelta(hours=3)
    for i in range(6):
        tenant = "acme" if i % 2 == 0 else "globex"
        await ledger.record(make_record(f"p{i}", time=same_time, tenant=tenant,
                                        task_type="MATH" if i < 4 else ""))  # fmt: skip
        await store.record_feedback(feedback(f"p{i}", tenant=tenant))
    outside = make_record("late", time=T0 + timedelta(days=2))
    await ledger.record(outside)
    await store.record_feedback(feedback("late"))
    assert len(await store.outcomes(*WINDOW)) == 6
    assert [r.request.request_id for r in await store.outcomes(*WINDOW, tenant="globex")] == [
        "p1",
        "p3",
        "p5",
    ]
    only_unclassified = await store.outcomes(*WINDOW, task_types=[""])
    assert [r.request.request_id for r in only_unclassified] == ["p4", "p5"]
    # pages: all rows share one time, so the request id breaks the tie
    seen: list[str] = []
    after = None
    while True:
        page = await store.outcomes(*WINDOW, after=after, limit=4)
        seen += [r.request.request_id for r in page]
        if len(page) < 4:
            break
        after = (page[-1].request.time, page[-1].request.request_id)
    assert seen == [f"p{i}" for i in range(6)]


async def test_feedback_last_verdict_wins(ledger: CostLedger, store: OutcomeStore) -> None:
    await ledger.record(make_record("f1", time=T0 + timedelta(hours=1)))
    await store.record_feedback(feedback("f1", "GOOD"))
    await store.record_feedback(feedback("f1", "NOT_GOOD", reason="on reflection",
                                         time=T0 + timedelta(hours=5)))  # fmt: skip
    [row] = await store.outcomes(*WINDOW)
    assert row.feedback is not None
    assert (row.feedback.verdict.value, row.feedback.reason) == ("NOT_GOOD", "on reflection")
    assert row.feedback.time == T0 + timedelta(hours=5)


async def test_an_evaluation_written_twice_is_kept_once_and_bad_rows_are_refused(
    ledger: CostLedger, store: OutcomeStore
) -> None:
    await store.record_evaluation(evaluation("e1"))
    await store.record_evaluation(evaluation("e1", verdict="TIE"))  # a retried write: no change
    [summary] = await store.evaluation_summaries(*WINDOW)
    assert summary.verdict is Verdict.FRONTIER_BETTER
    with pytest.raises(ValueError, match="sample_share"):
        evaluation("bad", sample_share=0.0)
    with pytest.raises(ValueError, match="reason"):
        feedback("bad", reason="x" * 501)


async def test_evaluation_spend_and_summaries(ledger: CostLedger, store: OutcomeStore) -> None:
    await ledger.record(make_record("s1", time=T0 + timedelta(hours=1), task_type="MATH"))
    await store.record_evaluation(evaluation("s1"))
    await store.record_evaluation(evaluation("s2", time=T0 - timedelta(hours=1)))  # yesterday
    await store.record_feedback(feedback("s1", "NOT_GOOD"))
    assert await store.evaluation_spend_since(T0) == pytest.approx(0.0015, abs=1e-12)
    assert await store.evaluation_spend_since(T0 - timedelta(days=1)) == pytest.approx(0.003)
    [summary] = await store.evaluation_summaries(*WINDOW, tenant="acme")
    assert (summary.task_type, summary.target, summary.model) == ("MATH", "local-small",
                                                                  "smollm2-135m")  # fmt: skip
    assert (summary.shadow_cost_nusd, summary.judge_cost_nusd) == (1_200_000, 300_000)
    assert summary.feedback is not None and summary.feedback.value == "NOT_GOOD"
    # an evaluation whose request row is not written yet still counts, without group keys
    [early] = await store.evaluation_summaries(T0 - timedelta(days=1), T0)
    assert (early.task_type, early.model, early.tenant) == ("", "", "acme")
    assert await store.evaluation_summaries(*WINDOW, tenant="globex") == []


async def test_find_request_and_decision_scores(ledger: CostLedger, store: OutcomeStore) -> None:
    record = make_record("d1", time=T0 + timedelta(hours=1), task_type="CHAT")
    await ledger.record(dataclasses.replace(record, escalation_score=0.42))
    await ledger.record(
        dataclasses.replace(make_record("d2", time=T0 + timedelta(hours=2)), escalation_score=None)
    )
    found = await store.find_request("d1")
    assert found is not None and (found.tenant, found.target_kind, found.status) == (
        "acme",
        "LOCAL",
        "OK",
    )
    assert await store.find_request("nope") is None
    assert await store.decision_scores(*WINDOW) == [0.42]  # unscored decisions are left out
    assert await store.decision_scores(*WINDOW, task_type="MATH") == []
    assert await store.decision_scores(*WINDOW, tenant="globex") == []
