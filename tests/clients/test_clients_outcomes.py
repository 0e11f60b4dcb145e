"""Outcomes end to end on the live stack: real vLLM, classifier, frontier proxy and router
processes, the frontier stand-in behind the proxy answering as the frontier model and, for
`gpt-judge`, as a pairwise judge (OpenAI's wire format). The `shadowed` tenant has every
answered request shadow-evaluated; a second router process on a real PostgreSQL ledger, with a
daily evaluation budget smaller than one evaluation, checks the other backend and the budget.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from clients_stack import API_KEY, JUDGE_MODEL, SHADOWED_API_KEY, SwitchyardStack
from support.postgres import PostgresServer, postgres_server  # noqa: F401  (session fixture)
from support.router_processes import RouterProcess

from switchyard.router.ledger import OutcomeStore, Verdict, open_ledger
from switchyard_client import (
    CostGrouping,
    InvalidRequest,
    RoutingOptions,
    SwitchyardClient,
    outcome_record,
)

pytestmark = pytest.mark.slow

T = TypeVar("T")
SWITCHYARD = Path(sys.executable).parent / "switchyard"
LOCAL = RoutingOptions(force_target="local-general")  # the shadow goes to the frontier stand-in
QUESTION = "What is the capital of France? Answer in one word."
# The PostgreSQL router's clock (a day far from any period boundary).
PINNED_MIDDAY = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def eventually(check: Callable[[], T | None], timeout_s: float = 120.0) -> T:
    """`check()`'s first truthy result (evaluations run after the answer, off its path)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s} s")


def cli(stack: SwitchyardStack, api_key: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env.update(SWITCHYARD_ADDRESS=stack.router_address, SWITCHYARD_API_KEY=api_key)
    return subprocess.run(
        [str(SWITCHYARD), *argv], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def shadowed(switchyard_stack: SwitchyardStack) -> Iterator[SwitchyardClient]:
    with SwitchyardClient(
        switchyard_stack.router_address, api_key=SHADOWED_API_KEY, timeout=300
    ) as client:
        yield client


def outcomes(client: SwitchyardClient) -> list[dict[str, Any]]:
    end = datetime.now(UTC) + timedelta(minutes=1)
    return [outcome_record(o) for o in client.export_outcomes(end=end)]


def judge_calls(stack: SwitchyardStack) -> list[dict[str, Any]]:
    recorded = stack.standin("GET", "requests")
    assert isinstance(recorded, list)
    return [r for r in recorded if (r["body"] or {}).get("model") == JUDGE_MODEL]


def test_a_sampled_request_is_shadowed_judged_and_exported_without_changing_its_answer(
    switchyard_stack: SwitchyardStack, shadowed: SwitchyardClient
) -> None:
    before = len(judge_calls(switchyard_stack))
    params = {"max_tokens": 12, "temperature": 0.0, "seed": 7}
    mine = shadowed.complete(QUESTION, routing=LOCAL, **params)
    with SwitchyardClient(switchyard_stack.router_address, api_key=API_KEY, timeout=300) as plain:
        theirs = plain.complete(QUESTION, routing=LOCAL, **params)  # a tenant not sampled
    # the caller gets what it would have got without shadowing
    assert mine.text == theirs.text and mine.decision.target == theirs.decision.target
    assert [h.kind for h in mine.cost.hops] == [h.kind for h in theirs.cost.hops]
    [line] = eventually(lambda: [o for o in outcomes(shadowed) if o["id"] == mine.request_id])
    assert line["served"] == "LOCAL" and line["tenant"] == "shadowed"
    assert line["judge"]["verdict"] == "FRONTIER_BETTER"  # the stand-in judge prefers it
    assert line["judge"]["orders"] == ["FRONTIER", "FRONTIER"]
    assert (line["local_ok"], line["frontier_ok"], line["partial"]) == (False, True, False)
    assert line["frontier_model"] == "gpt-4o-mini" and line["local_model"]
    assert line["prompt"] == QUESTION and line["classifier_model_version"]
    assert line["prompt_chars"] == len(QUESTION) and line["sample_share"] == 1.0
    # two judge calls in OpenAI's wire format, one per order, each showing both answers
    calls = judge_calls(switchyard_stack)[before:]
    assert len(calls) == 2
    prompts = [c["body"]["messages"][-1]["content"] for c in calls]
    assert all(QUESTION in p and mine.text.strip()[:20] in p for p in prompts)
    for body in (c["body"] for c in calls):
        assert body.get("max_completion_tokens", body.get("max_tokens")) == 16, body
        assert body.get("temperature") == 0, body


def test_feedback_is_refused_for_another_tenants_request(
    switchyard_stack: SwitchyardStack, shadowed: SwitchyardClient
) -> None:
    with SwitchyardClient(switchyard_stack.router_address, api_key=API_KEY, timeout=300) as plain:
        theirs = plain.complete("Name a primary colour.", routing=LOCAL, max_tokens=8)
    with pytest.raises(InvalidRequest) as refused:
        shadowed.feedback(theirs.request_id, good=False)
    assert refused.value.code.name == "NOT_FOUND"
    result = cli(switchyard_stack, API_KEY, "feedback", theirs.request_id, "good", "--reason", "ok")
    assert result.returncode == 0, result.stderr
    assert f"recorded: good for {theirs.request_id} (local answer" in result.stdout
    exported = cli(switchyard_stack, API_KEY, "outcomes", "export", "--days", "1")
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    [line] = [x for x in lines if x["id"] == theirs.request_id]
    assert (line["local_ok"], line["frontier_ok"], line["partial"]) == (True, None, True)
    assert line["source"] == "feedback" and "prompt" not in line  # that tenant did not opt in
    assert {x["tenant"] for x in lines} == {"clients"}


def test_an_unparseable_judge_reply_is_recorded_as_such(
    switchyard_stack: SwitchyardStack, shadowed: SwitchyardClient
) -> None:
    def unparseable() -> int:
        end = datetime.now(UTC) + timedelta(minutes=1)
        report = shadowed.cost_report(CostGrouping.TENANT, end=end)
        return report.total.evaluation.unparseable

    seen = unparseable()
    switchyard_stack.standin("POST", "judge", {"model": JUDGE_MODEL, "prefer": "unparseable"})
    try:
        reply = shadowed.complete("Say yes.", routing=LOCAL, max_tokens=4)
        eventually(lambda: unparseable() > seen)
    finally:
        switchyard_stack.standin("POST", "judge", {"model": JUDGE_MODEL, "prefer": "frontier"})
    assert reply.request_id not in {o["id"] for o in outcomes(shadowed)}  # no verdict guessed


def test_calibrate_and_costs_use_the_outcomes(
    switchyard_stack: SwitchyardStack, shadowed: SwitchyardClient
) -> None:
    if not any(o["judge"] for o in outcomes(shadowed)):
        shadowed.complete(QUESTION, routing=LOCAL, max_tokens=8)
        eventually(lambda: outcomes(shadowed))
    calibrated = cli(switchyard_stack, SHADOWED_API_KEY, "calibrate", "--quality", "0.9")
    assert calibrated.returncode == 0, calibrated.stderr
    assert "Apply in router.yaml:\nrouting:\n  escalation_threshold: " in calibrated.stdout
    costs = cli(switchyard_stack, SHADOWED_API_KEY, "costs", "--group-by", "tenant")
    assert costs.returncode == 0, costs.stderr
    assert "of frontier quality (n = " in costs.stdout
    assert "Shadow evaluation (its own cost, not in the costs above)" in costs.stdout


def in_ledger(url: str, read: Callable[[OutcomeStore], Awaitable[T]]) -> T:
    """`read` on the ledger at `url`, opened for it and closed after."""

    async def run() -> T:
        ledger = await open_ledger(url)
        try:
            assert isinstance(ledger, OutcomeStore)
            return await read(ledger)
        finally:
            await ledger.close()

    return asyncio.run(run())


@pytest.mark.postgres
def test_outcomes_land_in_postgresql_and_the_daily_budget_stops_shadowing(
    switchyard_stack: SwitchyardStack,
    postgres_server: PostgresServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = postgres_server.create_database()
    config = switchyard_stack.router_config()
    config["ledger"] = {"url": url}
    config["evaluation"]["daily_budget_usd"] = 1e-9  # one evaluation spends it
    env = {"SWITCHYARD_ROUTER_LEDGER_JOURNAL_DIR": str(tmp_path / "journal")}
    # the router's clock pinned to mid-day: the daily evaluation budget cannot roll over at
    # 00:00 UTC between the first evaluation and the later requests, whenever this runs
    router = RouterProcess(tmp_path, config, env, pinned_clock=PINNED_MIDDAY).start()
    start, end = PINNED_MIDDAY - timedelta(minutes=1), PINNED_MIDDAY + timedelta(hours=1)

    def evaluations() -> list[Any]:
        return in_ledger(url, lambda ledger: ledger.evaluation_summaries(start, end))

    try:
        with SwitchyardClient(router.address, api_key=SHADOWED_API_KEY, timeout=300) as client:
            first = client.complete(QUESTION, routing=LOCAL, max_tokens=8)
            eventually(evaluations)
            later = [client.complete(QUESTION, routing=LOCAL, max_tokens=8) for _ in range(3)]
            client.feedback(later[0].request_id, good=True)
        time.sleep(2.0)  # a (wrongly) started evaluation of the later ones would land meanwhile
        rows = in_ledger(url, lambda ledger: ledger.outcomes(start, end))
        spent = in_ledger(url, lambda ledger: ledger.evaluation_spend_since(start))
    finally:
        router.stop()
    evaluated = [r.evaluation for r in rows if r.evaluation is not None]
    # shadowing stopped once the day's budget was spent, on the pinned day
    [evaluation] = evaluated
    assert evaluation.time.date() == PINNED_MIDDAY.date()
    assert {r.request.time.date() for r in rows} == {PINNED_MIDDAY.date()}
    assert evaluation.request_id == first.request_id
    assert evaluation.verdict is Verdict.FRONTIER_BETTER
    assert evaluation.prompt == QUESTION and evaluation.cost_usd > 0
    assert spent == pytest.approx(evaluation.cost_usd, abs=1e-9)
    rated = [r.request.request_id for r in rows if r.feedback is not None]
    assert rated == [later[0].request_id]
