"""Shadow evaluation, feedback, the outcome export, calibration and the cost report's quality line,
with the router in-process over real channels against scripted gRPC doubles (a classifier, a
local and a frontier backend, and a judge that reads the router's judge prompt), a real SQLite
ledger and a pinned clock."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from router_doubles import FakeBackend, PinnedClock, ledger_records, serve, start_doubles
from support.frontier_standin import JudgeRule

from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.api.router.v1 import outcomes_pb2, outcomes_pb2_grpc, router_pb2, router_pb2_grpc
from switchyard.router import outcome_service
from switchyard.router.config import hash_api_key
from switchyard.router.ledger import OutcomeStore, Verdict
from switchyard.router.service import RouterResources, build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime import attributes as attr
from switchyard.runtime.server import RunningServer, start_server

ACME, GLOBEX, ADMIN = "acme-key-0123", "globex-key-0123", "admin-key-0123"
SHADOW_COST, JUDGE_COST = 0.01, 0.001
GOOD, NOT_GOOD = outcomes_pb2.FEEDBACK_VERDICT_GOOD, outcomes_pb2.FEEDBACK_VERDICT_NOT_GOOD


def key(value: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {value}")]


def config_data(classifier: str, local: str, frontier: str, judge: str, ledger: Path) -> dict:
    return {
        "classifier": {"address": classifier, "timeout_ms": 300},
        "backends": {
            "local-inference": {"address": local, "kind": "LOCAL", "timeout_s": 5},
            "frontier-proxy": {"address": frontier, "kind": "FRONTIER", "timeout_s": 5},
            "judge-proxy": {"address": judge, "kind": "FRONTIER", "timeout_s": 5},
        },
        "targets": {
            "local-general": {"backend": "local-inference", "model": "small"},
            "frontier-general": {"backend": "frontier-proxy", "model": "big"},
            "judge": {"backend": "judge-proxy", "model": "judge-1"},
        },
        "routing": {
            "escalation_threshold": 0.5,
            "local_target": "local-general",
            "frontier_target": "frontier-general",
            "default_target": "local-general",
        },
        "tenants": {
            "acme": {"api_key_sha256": [hash_api_key(ACME)]},
            "globex": {"api_key_sha256": [hash_api_key(GLOBEX)]},
        },
        "admin_api_key_sha256": [hash_api_key(ADMIN)],
        "evaluation": {
            "judge_target": "judge",
            "tenants": {"acme": {"share": 1.0, "store_prompts": True}},
            "daily_budget_usd": 10.0,
        },
        "ledger": {"url": f"sqlite:{ledger}"},
    }


@dataclass
class Suite:
    local: FakeBackend
    frontier: FakeBackend
    judge: FakeBackend
    rule: JudgeRule
    router: RunningServer[RouterResources]
    stub: router_pb2_grpc.RouterServiceStub
    outcomes: outcomes_pb2_grpc.OutcomeServiceStub
    costs: cost_pb2_grpc.CostServiceStub
    config_path: Path
    data: dict[str, Any]
    clock: PinnedClock

    async def reconfigure(self, **evaluation: Any) -> None:
        self.data["evaluation"].update(evaluation)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(self.data))
        tmp.replace(self.config_path)
        source = self.router.resources.source
        for _ in range(200):
            if source.current.evaluation.model_dump() != self._evaluation_before:
                break
            await asyncio.sleep(0.02)
        self._evaluation_before = source.current.evaluation.model_dump()

    _evaluation_before: dict[str, Any] | None = None

    async def settle(self) -> None:
        """Every offered evaluation finished, every record in the ledger."""
        await self.router.resources.evaluator.drain()
        await self.router.resources.writer.flush()

    @property
    def store(self) -> OutcomeStore:
        ledger = self.router.resources.ledger
        assert isinstance(ledger, OutcomeStore)
        return ledger

    async def evaluations(self) -> list[Any]:
        await self.settle()
        now = self.clock.now
        return await self.store.evaluation_summaries(now - timedelta(days=2), now + timedelta(1))

    async def export(self, api_key: str = ADMIN, **fields: Any) -> list[outcomes_pb2.Outcome]:
        await self.settle()
        request = outcomes_pb2.ExportOutcomesRequest(**fields)
        end = self.clock.now + timedelta(hours=1)
        request.end_time.FromDatetime(end)
        out = []
        async for page in self.outcomes.ExportOutcomes(request, metadata=key(api_key), timeout=10):
            out += list(page.outcomes)
        return out


@pytest.fixture
async def suite(tmp_path: Path) -> AsyncIterator[Suite]:
    doubles = await start_doubles()
    rule = JudgeRule(prefer="frontier", marker="frontier answered")
    judge = FakeBackend("judge", cost_usd=JUDGE_COST, answer=lambda r: rule.reply(
        r.messages[-1].content))  # fmt: skip
    judge_server, judge_address = await serve(
        inference_pb2_grpc.add_InferenceServiceServicer_to_server, judge
    )
    doubles.frontier.cost_usd = SHADOW_COST
    path = tmp_path / "router.yaml"
    data = config_data(*doubles.addresses, judge_address, tmp_path / "ledger.db")
    path.write_text(yaml.safe_dump(data))
    settings = RouterSettings(
        config=path,
        reload_poll_s=0.02,
        budget_cache_s=0.0,
        ledger_journal_dir=tmp_path / "journal",
        http_enabled=False,
    )
    clock = PinnedClock()
    try:
        async with start_server(build_definition(settings, clock=clock), port=0) as running:
            async with grpc.aio.insecure_channel(running.address) as channel:
                suite = Suite(
                    doubles.local,
                    doubles.frontier,
                    judge,
                    rule,
                    running,
                    router_pb2_grpc.RouterServiceStub(channel),
                    outcomes_pb2_grpc.OutcomeServiceStub(channel),
                    cost_pb2_grpc.CostServiceStub(channel),
                    path,
                    data,
                    clock,
                )
                suite._evaluation_before = running.resources.source.current.evaluation.model_dump()
                yield suite
    finally:
        await judge_server.stop(0)
        await doubles.stop()


def ask(prompt: str, **routing: Any) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=prompt)],
        parameters=inference_pb2.GenerationParameters(max_tokens=32, temperature=0.2),
        routing=router_pb2.RoutingOptions(**routing),
    )


async def complete(suite: Suite, prompt: str, api_key: str = ACME, **routing: Any) -> Any:
    return await suite.stub.Complete(ask(prompt, **routing), metadata=key(api_key), timeout=10)


# ---- shadow evaluation --------------------------------------------------------------------------


async def test_sampled_requests_get_a_shadow_answer_and_two_judge_calls(suite: Suite) -> None:
    reply = await complete(suite, "CHAT 0.1 what is the capital of France?")
    assert reply.text == "local answered" and reply.decision.target == "local-general"
    [evaluation] = await suite.evaluations()
    # the shadow call: the frontier target with the request's messages and parameters as sent
    [shadow] = suite.frontier.requests
    assert shadow.model == "big" and list(shadow.messages) == list(ask("x").messages[:0]) + [
        inference_pb2.ChatMessage(
            role=inference_pb2.ROLE_USER, content="CHAT 0.1 what is the capital of France?"
        )
    ]
    assert shadow.parameters.max_tokens == 32 and shadow.parameters.temperature == pytest.approx(
        0.2
    )
    # the judge: asked twice, the local answer as A first, then the frontier answer as A
    first, second = sorted(suite.judge.requests, key=lambda r: "<answer_a>\nlocal" not in
                           r.messages[-1].content)  # fmt: skip
    assert "<answer_a>\nlocal answered\n</answer_a>" in first.messages[-1].content
    assert "<answer_a>\nfrontier answered\n</answer_a>" in second.messages[-1].content
    assert first.parameters.max_tokens == 16 and first.parameters.temperature == 0.0
    assert evaluation.verdict is Verdict.FRONTIER_BETTER and evaluation.served_kind == "LOCAL"
    assert evaluation.shadow_cost_nusd == round(SHADOW_COST * 1e9)
    assert evaluation.judge_cost_nusd == round(2 * JUDGE_COST * 1e9)
    # the tenant's own record is what it was served; the evaluation is not in it
    [record] = await ledger_records(suite.router, now=suite.clock.now)
    assert record.total_cost_usd == pytest.approx(reply.cost.total_cost_usd)
    assert record.classifier_model_version == "fake-1"
    assert record.prompt_chars == len("CHAT 0.1 what is the capital of France?")


async def test_a_frontier_answer_is_shadowed_by_the_local_target(suite: Suite) -> None:
    suite.rule.prefer = "local"
    reply = await complete(suite, "CHAT 0.9 prove it")
    assert reply.decision.target == "frontier-general"
    [evaluation] = await suite.evaluations()
    assert [r.model for r in suite.local.requests] == ["small"]
    assert evaluation.served_kind == "FRONTIER" and evaluation.verdict is Verdict.LOCAL_BETTER


async def test_shadowing_never_changes_what_the_caller_gets(suite: Suite) -> None:
    # the judge holds its calls open: were the evaluation on the request path, this would hang
    suite.judge.gate = asyncio.Event()
    shadowed = await complete(suite, "CHAT 0.1 hello")
    plain = await complete(suite, "CHAT 0.1 hello", api_key=GLOBEX)  # globex: not sampled
    # the shadow answers and the judge is asked meanwhile, off the request path: wait for it
    for _ in range(3000):
        if suite.judge.requests:
            break
        await asyncio.sleep(0.01)
    assert suite.judge.requests
    assert shadowed.text == plain.text
    assert shadowed.decision.target == plain.decision.target
    assert shadowed.decision.reason == plain.decision.reason
    assert [(h.kind, h.target) for h in shadowed.cost.hops] == [
        (h.kind, h.target) for h in plain.cost.hops
    ]
    assert shadowed.cost.total_cost_usd == pytest.approx(plain.cost.total_cost_usd)
    suite.judge.gate.set()
    assert len(await suite.evaluations()) == 1


async def test_a_stream_is_evaluated_on_the_text_it_relayed(suite: Suite) -> None:
    request = router_pb2.CompleteStreamRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="CHAT 0.2 hi")]
    )
    events = [e async for e in suite.stub.CompleteStream(request, metadata=key(ACME), timeout=10)]
    assert events[-1].HasField("summary")
    [evaluation] = await suite.evaluations()
    assert evaluation.verdict is Verdict.FRONTIER_BETTER
    prompts = [r.messages[-1].content for r in suite.judge.requests]
    assert any("<answer_a>\nlocal answered in pieces \n</answer_a>" in p for p in prompts)


async def test_disallowed_frontier_and_route_only_calls_are_never_shadowed(suite: Suite) -> None:
    await complete(suite, "CHAT 0.1 secret", disallow_frontier=True)
    await suite.stub.Route(
        router_pb2.RouteRequest(messages=ask("CHAT 0.1 x").messages), metadata=key(ACME)
    )
    assert await suite.evaluations() == [] and suite.frontier.requests == []


async def test_an_unparseable_judge_reply_is_recorded_as_such(suite: Suite) -> None:
    suite.rule.prefer = "unparseable"
    await complete(suite, "CHAT 0.1 tell me")
    [evaluation] = await suite.evaluations()
    assert evaluation.verdict is Verdict.UNPARSEABLE
    rows = await suite.store.outcomes(suite.clock.now - timedelta(1), suite.clock.now)
    assert rows == []  # no verdict, no feedback: not an outcome (and not guessed)
    report = await suite.costs.GetCostReport(
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_TENANT), metadata=key(ADMIN)
    )
    assert report.total.evaluation.unparseable == 1 and report.total.evaluation.judged == 0


async def test_a_position_biased_judge_is_a_tie(suite: Suite) -> None:
    suite.rule.prefer = "first"  # always answer A
    await complete(suite, "CHAT 0.1 which?")
    [evaluation] = await suite.evaluations()
    assert evaluation.verdict is Verdict.TIE


async def test_a_failed_shadow_call_is_recorded_and_nothing_is_judged(suite: Suite) -> None:
    suite.frontier.fail = [grpc.StatusCode.INVALID_ARGUMENT]
    await complete(suite, "CHAT 0.1 long one")
    [evaluation] = await suite.evaluations()
    assert evaluation.verdict is Verdict.SHADOW_FAILED and suite.judge.requests == []
    assert evaluation.shadow_cost_nusd == evaluation.judge_cost_nusd == 0


async def test_the_daily_budget_stops_shadowing_until_the_next_utc_day(suite: Suite) -> None:
    suite.clock.now = datetime(2026, 12, 31, 23, 50, tzinfo=UTC)  # a year's last minutes
    per_evaluation = SHADOW_COST + 2 * JUDGE_COST
    await suite.reconfigure(daily_budget_usd=1.5 * per_evaluation)
    for i in range(4):
        await complete(suite, f"CHAT 0.1 question {i}")
        await suite.settle()  # one at a time: the second starts under the budget, then it is spent
    assert len(await suite.evaluations()) == 2
    assert len(suite.frontier.requests) == 2
    suite.clock.now = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)  # a new UTC day (and year)
    await complete(suite, "CHAT 0.1 new year")
    assert len(await suite.evaluations()) == 3
    assert await suite.store.evaluation_spend_since(
        datetime(2027, 1, 1, tzinfo=UTC)
    ) == pytest.approx(per_evaluation)


async def test_a_full_queue_drops_evaluations_instead_of_waiting(
    suite: Suite, metric_reader: Any
) -> None:
    await suite.reconfigure(max_concurrency=1, queue_size=1)
    suite.judge.gate = asyncio.Event()
    replies = [await complete(suite, f"CHAT 0.1 burst {i}") for i in range(4)]
    assert all(r.text == "local answered" for r in replies)  # every caller was answered
    suite.judge.gate.set()
    assert len(await suite.evaluations()) == 2  # one ran, one waited, two were dropped
    dropped = [
        p
        for rm in metric_reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == attr.METRIC_EVALUATION_DROPPED
        for p in m.data.data_points
        if p.attributes.get(attr.EVALUATION_DROP_REASON) == "queue_full"
    ]
    assert sum(p.value for p in dropped) >= 2


async def test_an_evaluation_is_its_own_trace_linked_to_the_request(
    suite: Suite, spans: InMemorySpanExporter
) -> None:
    reply = await complete(suite, "CHAT 0.1 trace me")
    await suite.settle()
    finished = spans.get_finished_spans()
    request_span = next(
        s for s in finished if s.attributes.get(attr.REQUEST_ID) == reply.request_id
        and s.name != attr.SPAN_EVALUATION
    )  # fmt: skip
    [root] = [s for s in finished if s.name == attr.SPAN_EVALUATION]
    assert root.context.trace_id != request_span.context.trace_id
    assert [link.context.span_id for link in root.links] == [request_span.context.span_id]
    assert root.attributes[attr.EVALUATION_VERDICT] == "FRONTIER_BETTER"
    assert root.attributes[attr.COST_USD] == pytest.approx(SHADOW_COST + 2 * JUDGE_COST)
    children = [s for s in finished if s.parent and s.parent.span_id == root.context.span_id]
    names = sorted(s.name for s in children)
    assert names == [attr.SPAN_EVALUATION_JUDGE, attr.SPAN_EVALUATION_JUDGE,
                     attr.SPAN_EVALUATION_SHADOW]  # fmt: skip
    judges = [s for s in children if s.name == attr.SPAN_EVALUATION_JUDGE]
    assert sorted(s.attributes[attr.EVALUATION_JUDGE_ORDER] for s in judges) == [1, 2]
    assert {s.attributes[attr.EVALUATION_JUDGE_ANSWER] for s in judges} == {"FRONTIER"}
    assert request_span.attributes[attr.CLASSIFIER_MODEL_VERSION] == "fake-1"


# ---- feedback -----------------------------------------------------------------------------------


async def feedback(
    suite: Suite, request_id: str, verdict: int = GOOD, api_key: str = ACME, reason: str = ""
) -> outcomes_pb2.SubmitFeedbackResponse:
    return await suite.outcomes.SubmitFeedback(
        outcomes_pb2.SubmitFeedbackRequest(request_id=request_id, verdict=verdict, reason=reason),
        metadata=key(api_key),
        timeout=10,
    )


async def test_a_tenant_rates_its_own_answer_the_moment_it_has_it(suite: Suite) -> None:
    reply = await complete(suite, "CHAT 0.1 rate me", api_key=GLOBEX)
    rated = await feedback(suite, reply.request_id, api_key=GLOBEX)  # maybe not written yet
    assert rated.rated_tier == router_pb2.TARGET_KIND_LOCAL and rated.rated_model == "small"
    [outcome] = await suite.export(api_key=GLOBEX)
    assert outcome.local_ok and not outcome.HasField("frontier_ok")  # partial: one tier rated
    assert outcome.feedback.verdict == GOOD and not outcome.HasField("judgement")


async def test_feedback_for_another_tenants_request_is_not_found_like_an_unknown_id(
    suite: Suite,
) -> None:
    reply = await complete(suite, "CHAT 0.1 mine", api_key=GLOBEX)
    await suite.settle()
    with pytest.raises(grpc.aio.AioRpcError) as theirs:
        await feedback(suite, reply.request_id, api_key=ACME)
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await feedback(suite, "f" * 32, api_key=ACME)
    assert theirs.value.code() == unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert theirs.value.details().replace(reply.request_id, "ID") == unknown.value.details(
    ).replace("f" * 32, "ID")  # fmt: skip
    assert await suite.export() == []  # nothing was stored


async def test_feedback_is_checked_and_the_last_verdict_wins(suite: Suite) -> None:
    reply = await complete(suite, "CHAT 0.1 check", api_key=GLOBEX)
    cases = [
        (outcomes_pb2.SubmitFeedbackRequest(request_id=reply.request_id), "verdict"),
        (outcomes_pb2.SubmitFeedbackRequest(verdict=GOOD), "request_id"),
        (
            outcomes_pb2.SubmitFeedbackRequest(
                request_id=reply.request_id, verdict=GOOD, reason="x" * 501
            ),
            "500 characters",
        ),  # fmt: skip
    ]
    for request, problem in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await suite.outcomes.SubmitFeedback(request, metadata=key(GLOBEX), timeout=10)
        assert (
            err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and problem in err.value.details()
        )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.outcomes.SubmitFeedback(
            outcomes_pb2.SubmitFeedbackRequest(request_id=reply.request_id, verdict=GOOD)
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await feedback(suite, reply.request_id, GOOD, api_key=GLOBEX, reason="x" * 500)
    await feedback(suite, reply.request_id, NOT_GOOD, api_key=GLOBEX, reason="wrong after all")
    [outcome] = await suite.export(api_key=GLOBEX)
    assert outcome.local_ok is False and outcome.feedback.reason == "wrong after all"


async def test_an_unanswered_request_has_nothing_to_rate(suite: Suite) -> None:
    routed = await suite.stub.Route(
        router_pb2.RouteRequest(messages=ask("CHAT 0.1 x").messages), metadata=key(GLOBEX)
    )
    suite.local.fail = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(grpc.aio.AioRpcError):
        await complete(suite, "CHAT 0.1 fails", api_key=GLOBEX)
    await suite.settle()
    [failed] = [r for r in await ledger_records(suite.router, now=suite.clock.now)
                if r.status != "OK"]  # fmt: skip
    route_id = next(
        r.request_id
        for r in await ledger_records(suite.router, now=suite.clock.now)
        if r.operation == "route"
    )
    assert routed.decision.target
    for request_id in (route_id, failed.request_id):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await feedback(suite, request_id, api_key=GLOBEX)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


# ---- export, calibration, cost report -----------------------------------------------------------


async def test_export_is_scoped_to_the_callers_tenant(
    suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outcome_service, "EXPORT_PAGE", 2)  # several pages, keyed by time and id
    for i in range(3):
        await complete(suite, f"MATH 0.1 sum {i}")  # acme: shadow-evaluated
    other = await complete(suite, "CHAT 0.1 theirs", api_key=GLOBEX)
    await feedback(suite, other.request_id, NOT_GOOD, api_key=GLOBEX)
    mine = await suite.export(api_key=ACME)
    assert len(mine) == 3 and {o.tenant for o in mine} == {"acme"}
    assert all(o.judgement.verdict == outcomes_pb2.JUDGE_VERDICT_FRONTIER_BETTER for o in mine)
    assert all(not o.local_ok and o.frontier_ok for o in mine)
    assert [o.prompt for o in mine] == [f"MATH 0.1 sum {i}" for i in range(3)]  # acme opted in
    assert (mine[0].local_model, mine[0].frontier_model) == ("small", "big")
    assert len(await suite.export(api_key=ADMIN)) == 4
    assert len(await suite.export(api_key=ADMIN, tenant="globex")) == 1
    theirs = await suite.export(api_key=GLOBEX)
    assert not theirs[0].HasField("prompt")  # globex did not opt in
    only_chat = await suite.export(api_key=ADMIN, task_types=[1])  # TASK_TYPE_CHAT
    assert [o.tenant for o in only_chat] == ["globex"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.export(api_key=ACME, tenant="globex")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def run_cli(argv: list[str]) -> tuple[int, str]:
    from switchyard_client.cli import build_parser

    args = build_parser().parse_args(argv)
    out = io.StringIO()
    code = await asyncio.to_thread(args.func, args, out)
    return code, out.getvalue()


async def test_the_cli_exports_the_outcome_file_and_calibrates(
    suite: Suite, tmp_path: Path
) -> None:
    scores = [0.1, 0.2, 0.3, 0.35, 0.4, 0.45]  # the judge prefers the frontier from 0.35 up
    suite.rule.by_request = {f"CHAT {s} q": "frontier" if s >= 0.35 else "tie" for s in scores}
    for s in scores:
        await complete(suite, f"CHAT {s} q")
    await suite.settle()
    end = (suite.clock.now + timedelta(minutes=1)).isoformat()
    address = ["--address", suite.router.address, "--api-key", ACME, "--end", end]
    path = tmp_path / "outcomes.jsonl"
    code, _ = await run_cli(["outcomes", "export", *address, "--output", str(path)])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert code == 0 and len(lines) == 6
    assert {line["served"] for line in lines} == {"LOCAL"}
    assert [line["local_ok"] for line in lines] == [True, True, True, False, False, False]
    assert all(line["frontier_ok"] and not line["partial"] for line in lines)
    assert lines[0]["judge"]["orders"] == ["TIE", "TIE"] and lines[0]["sample_share"] == 1.0
    assert lines[0]["prompt"] == "CHAT 0.1 q" and lines[0]["classifier_model_version"] == "fake-1"
    code, text = await run_cli(["calibrate", "--quality", "1.0", *address])
    assert code == 0
    # between 0.3 (kept local) and 0.35 (the lowest escalated)
    assert "threshold 0.32: 50.0% to the frontier, quality 100.0%" in text
    assert "now       0.5: 0.0% to the frontier, quality 50.0%" in text
    assert "routing:\n  escalation_threshold: 0.32" in text
    code, text = await run_cli(["calibrate", "--frontier-share", "0.5", *address])
    assert "threshold 0.32" in text
    # another tenant with no outcomes: nothing to calibrate on
    from switchyard_client.cli import CliError

    address[3] = GLOBEX
    with pytest.raises(CliError, match="FAILED_PRECONDITION: cannot calibrate: no rated outcomes"):
        await run_cli(["calibrate", "--quality", "0.9", *address])


async def test_the_cost_report_shows_evaluation_cost_and_quality_apart(suite: Suite) -> None:
    suite.rule.by_request = {"CHAT 0.1 a": "tie", "CHAT 0.1 b": "tie", "CHAT 0.1 c": "frontier"}
    replies = [await complete(suite, f"CHAT 0.1 {c}") for c in "abc"]
    await suite.settle()
    report = await suite.costs.GetCostReport(
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_TENANT), metadata=key(ACME)
    )
    served = sum(r.cost.total_cost_usd for r in replies)
    assert report.total.cost_usd == pytest.approx(served)  # evaluation not in the requests' cost
    evaluation = report.total.evaluation
    assert (evaluation.evaluations, evaluation.judged) == (3, 3)
    assert evaluation.cost_usd == pytest.approx(3 * (SHADOW_COST + 2 * JUDGE_COST))
    assert report.total.quality.sample_size == 3
    assert report.total.quality.frontier_quality_share == pytest.approx(2 / 3)
    [row] = report.rows
    assert row.key == "acme" and row.quality.sample_size == 3
    end = (suite.clock.now + timedelta(minutes=1)).isoformat()
    code, text = await run_cli(["costs", "--address", suite.router.address, "--api-key", ACME,
                                "--group-by", "tenant", "--end", end])  # fmt: skip
    assert code == 0 and "at 67% of frontier quality (n = 3 rated outcomes)" in text
    assert "Shadow evaluation (its own cost, not in the costs above)" in text


async def arrivals(backend: FakeBackend, count: int) -> None:
    """Until `backend` has received `count` generation calls."""
    async with asyncio.timeout(10):
        while len(backend.requests) < count:  # noqa: ASYNC110 - the double counts, no event
            await asyncio.sleep(0.01)


async def test_deferred_evaluations_wait_for_a_quiet_moment(suite: Suite) -> None:
    await suite.reconfigure(defer_while_in_flight=1)
    suite.frontier.gate = asyncio.Event()
    slow = asyncio.create_task(
        complete(suite, "CHAT 0.1 still being served", force_target="frontier-general")
    )
    await arrivals(suite.frontier, 1)  # served by the frontier, held open
    quick = await complete(suite, "CHAT 0.1 answered at once")  # served locally
    assert quick.decision.target == "local-general"
    # its evaluation (the shadow call goes to the frontier) waits while `slow` is served
    await asyncio.sleep(0.3)
    assert len(suite.frontier.requests) == 1
    suite.frontier.gate.set()  # `slow` ends: the router is quiet, both are evaluated
    await slow
    assert len(await suite.evaluations()) == 2
    assert len(suite.frontier.requests) == 2 and len(suite.local.requests) == 2
