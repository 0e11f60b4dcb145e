"""The router in-process over real channels, against scripted classifier/backend gRPC doubles."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from router_doubles import (
    CLASSIFY_COST,
    FakeBackend,
    FakeClassifier,
    PinnedClock,
    ledger_records,
    serve,
    start_doubles,
)

from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.router.config import hash_api_key
from switchyard.router.service import RouterResources, build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime import attributes as attr
from switchyard.runtime.server import RunningServer, start_server

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
LOCAL_WINDOW = 2048
FRONTIER_WINDOW = 128_000


def config_data(classifier: str, local: str, frontier: str, ledger: Path) -> dict[str, Any]:
    return {
        "classifier": {"address": classifier, "timeout_ms": 300},
        "backends": {
            "local-inference": {"address": local, "kind": "LOCAL", "timeout_s": 5},
            "frontier-proxy": {"address": frontier, "kind": "FRONTIER", "timeout_s": 5},
        },
        "targets": {
            "local-general": {
                "backend": "local-inference",
                "model": "small",
                "pricing": {"input_usd_per_million_tokens": 1, "output_usd_per_million_tokens": 2},
            },
            "frontier-general": {
                "backend": "frontier-proxy",
                "model": "big",
                "pricing": {
                    "input_usd_per_million_tokens": 100,
                    "output_usd_per_million_tokens": 400,
                },
            },
            "frontier-strong": {"backend": "frontier-proxy", "model": "huge"},
        },
        "routing": {
            "escalation_threshold": 0.5,
            "local_target": "local-general",
            "frontier_target": "frontier-general",
            "default_target": "local-general",
            "fallbacks": {
                "local-general": ["frontier-general"],
                "frontier-general": ["local-general"],
                "frontier-strong": ["frontier-general", "local-general"],
            },
            "task_rules": {"MATH": {"target": "frontier-strong"}},
        },
        "tenants": {},
        "ledger": {"url": f"sqlite:{ledger}"},
    }


@dataclass
class Suite:
    classifier: FakeClassifier
    local: FakeBackend
    frontier: FakeBackend
    router: RunningServer[RouterResources]
    stub: router_pb2_grpc.RouterServiceStub
    costs: cost_pb2_grpc.CostServiceStub
    config_path: Path
    data: dict[str, Any]
    clock: PinnedClock

    def write_config(self, data: dict[str, Any]) -> None:
        self.data = data
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data))
        tmp.replace(self.config_path)

    async def records(self):  # noqa: ANN201
        return await ledger_records(self.router, now=self.clock.now)


@pytest.fixture
async def suite(tmp_path: Path) -> AsyncIterator[Suite]:
    doubles = await start_doubles()
    classifier, local, frontier = doubles.classifier, doubles.local, doubles.frontier
    c_addr, l_addr, f_addr = doubles.addresses
    # the windows ListModels reports: a small local engine, a large frontier catalog
    local.windows = {"small": LOCAL_WINDOW}
    frontier.windows = {"big": FRONTIER_WINDOW, "huge": FRONTIER_WINDOW}
    path = tmp_path / "router.yaml"
    data = config_data(c_addr, l_addr, f_addr, tmp_path / "ledger.db")
    path.write_text(yaml.safe_dump(data))
    settings = RouterSettings(
        config=path,
        reload_poll_s=0.05,
        budget_cache_s=0.0,
        context_window_retry_s=0.05,
        ledger_journal_dir=tmp_path / "journal",
        http_host="127.0.0.1",
        http_port=0,
    )
    clock = PinnedClock()
    try:
        async with start_server(build_definition(settings, clock=clock), port=0) as running:
            async with grpc.aio.insecure_channel(running.address) as channel:
                yield Suite(
                    classifier,
                    local,
                    frontier,
                    running,
                    router_pb2_grpc.RouterServiceStub(channel),
                    cost_pb2_grpc.CostServiceStub(channel),
                    path,
                    data,
                    clock,
                )
    finally:
        await doubles.stop()


def ask(prompt: str, **routing: Any) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=prompt)],
        routing=router_pb2.RoutingOptions(**routing),
    )


def stream_req(prompt: str, **routing: Any) -> router_pb2.CompleteStreamRequest:
    return router_pb2.CompleteStreamRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=prompt)],
        routing=router_pb2.RoutingOptions(**routing),
    )


def hops(response: Any) -> list[tuple[str, str, str]]:
    return [(router_pb2.HopKind.Name(h.kind), h.target, h.status) for h in response.cost.hops]


# ---- decisions ---------------------------------------------------------------------------------


async def test_low_score_goes_local_with_classifier_hop_costed(suite: Suite) -> None:
    reply = await suite.stub.Complete(ask("CHAT 0.1 hello"), timeout=10)
    assert reply.text == "local answered"
    d = reply.decision
    assert (d.target, d.model, d.backend) == ("local-general", "small", "local-inference")
    assert d.reason == router_pb2.DECISION_REASON_BELOW_THRESHOLD
    assert d.target_kind == router_pb2.TARGET_KIND_LOCAL
    assert d.escalation_score == pytest.approx(0.1)
    assert hops(reply) == [
        ("HOP_KIND_CLASSIFY", "", "OK"),
        ("HOP_KIND_GENERATE", "local-general", "OK"),
    ]
    assert reply.cost.hops[0].cost_usd == pytest.approx(CLASSIFY_COST)
    assert reply.cost.total_cost_usd == pytest.approx(CLASSIFY_COST + 0.0001)
    assert reply.usage.input_tokens == 10 and reply.usage.output_tokens == 5
    assert suite.local.models == ["small"]


async def test_high_score_escalates_and_task_rule_applies(suite: Suite) -> None:
    reply = await suite.stub.Complete(ask("CHAT 0.8 prove it"), timeout=10)
    assert (reply.decision.target, reply.decision.reason) == (
        "frontier-general",
        router_pb2.DECISION_REASON_ESCALATED,
    )
    math = await suite.stub.Complete(ask("MATH 0.0 integrate"), timeout=10)
    assert (math.decision.target, math.decision.model) == ("frontier-strong", "huge")
    assert math.decision.reason == router_pb2.DECISION_REASON_TASK_RULE
    assert math.decision.classification.task_type == 6  # TASK_TYPE_MATH


async def test_request_overrides(suite: Suite) -> None:
    forced = await suite.stub.Complete(
        ask("CHAT 0.0 x", force_target="frontier-strong"), timeout=10
    )
    assert forced.decision.reason == router_pb2.DECISION_REASON_FORCED
    no_frontier = await suite.stub.Complete(ask("CHAT 0.9 x", disallow_frontier=True), timeout=10)
    assert no_frontier.decision.reason == router_pb2.DECISION_REASON_FRONTIER_DISALLOWED
    assert no_frontier.decision.target == "local-general"
    low = await suite.stub.Complete(ask("CHAT 0.2 x", escalation_threshold=0.1), timeout=10)
    assert low.decision.reason == router_pb2.DECISION_REASON_ESCALATED
    ceiling = await suite.stub.Complete(ask("CHAT 0.9 x", max_cost_usd=0.001), timeout=10)
    assert ceiling.decision.reason == router_pb2.DECISION_REASON_COST_CEILING


async def test_a_forced_target_is_called_while_the_classifier_still_works(suite: Suite) -> None:
    # The classifier answers only once the backend has been called: had the router waited for
    # it first, it would time out (300 ms) and the request would carry no task type.
    for streamed in (False, True):
        gate = asyncio.Event()
        suite.classifier.gate = gate
        suite.frontier.on_call = gate.set
        if streamed:
            events = [
                e
                async for e in suite.stub.CompleteStream(
                    stream_req("MATH 0.7 x", force_target="frontier-strong"), timeout=10
                )
            ]
            decision, cost = events[-1].summary.decision, events[-1].summary.cost
        else:
            reply = await suite.stub.Complete(
                ask("MATH 0.7 x", force_target="frontier-strong"), timeout=10
            )
            decision, cost = reply.decision, reply.cost
        assert decision.reason == router_pb2.DECISION_REASON_FORCED
        assert decision.target == "frontier-strong"
        assert decision.classification.task_type == 6  # TASK_TYPE_MATH
        assert decision.escalation_score == pytest.approx(0.7)
        assert [(router_pb2.HopKind.Name(h.kind), h.status) for h in cost.hops] == [
            ("HOP_KIND_CLASSIFY", "OK"),
            ("HOP_KIND_GENERATE", "OK"),
        ]
    records = await suite.records()
    assert [(r.task_type, r.complexity, r.reason) for r in records] == [
        ("MATH", 0.5, "FORCED"),
        ("MATH", 0.5, "FORCED"),
    ]


async def test_forced_targets_skip_leaves_the_classifier_out(
    suite: Suite, spans: InMemorySpanExporter
) -> None:
    # `classifier.forced_targets: skip`: a forced request is served and recorded without a
    # classification; one the policy decides is still classified; so is a forced frontier
    # target under a soft budget, whose task type names the local target it moves to.
    gen = suite.router.resources.source.generation
    changed = with_tenants(suite.data, {"daily_soft_usd": 0.005})
    changed["classifier"]["forced_targets"] = "skip"
    suite.write_config(changed)
    await wait_generation(suite, gen + 1)
    key = [("authorization", "Bearer acme-key")]
    suite.classifier.mode = "down"  # a call would show as a default route, not a forced one
    calls = suite.classifier.calls
    reply = await suite.stub.Complete(
        ask("MATH 0.7 x", force_target="local-general"), metadata=key, timeout=10
    )
    events = [
        e
        async for e in suite.stub.CompleteStream(
            stream_req("MATH 0.7 x", force_target="local-general"), metadata=key, timeout=10
        )
    ]
    route = await suite.stub.Route(
        router_pb2.RouteRequest(
            messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="CODE x")],
            routing=router_pb2.RoutingOptions(force_target="frontier-general"),
        ),
        metadata=key,
        timeout=10,
    )
    assert suite.classifier.calls == calls
    summary = events[-1].summary
    for decision, cost in ((reply.decision, reply.cost), (summary.decision, summary.cost)):
        assert decision.reason == router_pb2.DECISION_REASON_FORCED
        assert decision.target == "local-general"
        assert not decision.HasField("classification")
        assert [router_pb2.HopKind.Name(h.kind) for h in cost.hops] == ["HOP_KIND_GENERATE"]
    assert route.decision.reason == router_pb2.DECISION_REASON_FORCED
    assert route.decision.target == "frontier-general" and not route.cost.hops
    roots = [s for s in spans.get_finished_spans() if s.attributes.get(attr.ROUTER_REASON)]
    assert [s.attributes[attr.ROUTER_DEFAULT_ROUTE] for s in roots[-3:]] == [False] * 3
    assert [s.attributes[attr.TASK_TYPE] for s in roots[-3:]] == [""] * 3

    # a decided request still asks the classifier (down: the default route, as without skip)
    decided = await suite.stub.Complete(ask("CHAT 0.9 x"), metadata=key, timeout=10)
    assert decided.decision.reason == router_pb2.DECISION_REASON_CLASSIFIER_UNAVAILABLE
    assert suite.classifier.calls == calls + 1

    # over the soft budget a forced frontier target is classified: MATH's rule would send it
    # to frontier-strong, its local target is local-general
    suite.classifier.mode = "ok"
    await suite.stub.Complete(ask("CHAT 0.1 x", force_target="frontier-general"), metadata=key,
                              timeout=10)  # fmt: skip
    soft = await suite.stub.Complete(
        ask("MATH 0.7 x", force_target="frontier-general"), metadata=key, timeout=10
    )
    assert soft.decision.reason == router_pb2.DECISION_REASON_BUDGET_SOFT_LIMIT
    assert soft.decision.classification.task_type == 6  # TASK_TYPE_MATH
    assert suite.classifier.calls == calls + 2

    records = await suite.records()
    assert [(r.task_type, r.complexity, r.escalation_score, r.reason) for r in records[:3]] == [
        ("", None, None, "FORCED")
    ] * 3
    assert [r.prompt_chars for r in records[:3]] == [len("MATH 0.7 x")] * 2 + [len("CODE x")]
    assert records[-1].task_type == "MATH"


async def test_bad_requests_get_clear_codes(suite: Suite) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(router_pb2.CompleteRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 x", force_target="nope"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown target 'nope'" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 x", escalation_threshold=2.0), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_route_is_decision_only(suite: Suite) -> None:
    reply = await suite.stub.Route(
        router_pb2.RouteRequest(
            messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="CHAT 0.7 q")]
        ),
        timeout=10,
    )
    assert reply.decision.target == "frontier-general"
    assert reply.decision.estimated_cost_usd > 0
    assert [router_pb2.HopKind.Name(h.kind) for h in reply.cost.hops] == ["HOP_KIND_CLASSIFY"]
    assert suite.frontier.models == [] and suite.local.models == []


# ---- classifier down / slow --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["down", "slow"])
async def test_classifier_unavailable_uses_default_route(
    suite: Suite, mode: str, spans: InMemorySpanExporter
) -> None:
    suite.classifier.mode = mode
    reply = await suite.stub.Complete(ask("CHAT 0.9 hi"), timeout=10)
    assert reply.decision.reason == router_pb2.DECISION_REASON_CLASSIFIER_UNAVAILABLE
    assert reply.decision.target == "local-general"
    assert not reply.decision.HasField("classification")
    assert "default route" in reply.decision.reason_detail
    classify_hop = reply.cost.hops[0]
    expected = "UNAVAILABLE" if mode == "down" else "DEADLINE_EXCEEDED"
    assert classify_hop.status == expected
    assert reply.cost.total_latency_ms < 2000  # the 300 ms classifier deadline held
    root = [s for s in spans.get_finished_spans() if s.attributes.get(attr.ROUTER_REASON)]
    assert root and root[-1].attributes[attr.ROUTER_DEFAULT_ROUTE] is True


async def test_classifier_errors_take_the_default_route_named_for_what_happened(
    suite: Suite,
) -> None:
    suite.classifier.mode = "broken"
    reply = await suite.stub.Complete(ask("CHAT 0.9 hi"), timeout=10)
    d = reply.decision
    assert d.reason == router_pb2.DECISION_REASON_CLASSIFIER_FAILED
    assert d.target == "local-general"
    assert "classifier failed (INTERNAL): default route" in d.reason_detail
    assert reply.cost.hops[0].status == "INTERNAL"


# ---- context windows and long prompts ----------------------------------------------------------


def document(kib: int, lead: str = "CHAT 0.1") -> str:
    """`lead` (what the fake classifier reads) and about `kib` KiB of English-like text."""
    return lead + " " + "the committee reviewed the quarterly figures. " * (kib * 1024 // 47)


async def test_a_prompt_too_long_for_the_local_window_goes_where_it_fits(suite: Suite) -> None:
    reply = await suite.stub.Complete(ask(document(90)), timeout=10)
    d = reply.decision
    assert (d.target, d.reason) == ("frontier-general", router_pb2.DECISION_REASON_CONTEXT_WINDOW)
    assert f"local-general's context window ({LOCAL_WINDOW} tokens)" in d.reason_detail
    assert hops(reply)[1:] == [("HOP_KIND_GENERATE", "frontier-general", "OK")]
    assert suite.local.models == []  # never sent to a model that cannot hold it
    route = await suite.stub.Route(
        router_pb2.RouteRequest(messages=ask(document(90)).messages), timeout=10
    )
    assert route.decision.reason == router_pb2.DECISION_REASON_CONTEXT_WINDOW
    records = await suite.records()
    assert {(r.target, r.reason) for r in records} == {("frontier-general", "CONTEXT_WINDOW")}
    assert [a.target for r in records for a in r.attempts] == ["frontier-general"]
    # a short prompt still goes local
    short = await suite.stub.Complete(ask("CHAT 0.1 hi"), timeout=10)
    assert short.decision.reason == router_pb2.DECISION_REASON_BELOW_THRESHOLD


async def test_a_prompt_no_window_can_hold_is_refused_naming_the_largest(suite: Suite) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask(document(600)), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert f"is {FRONTIER_WINDOW} tokens (frontier-general)" in details
    assert suite.local.models == [] and suite.frontier.models == []


async def test_an_oversize_prompt_is_classified_from_an_excerpt(suite: Suite) -> None:
    prompt = document(300, lead="CHAT 0.9")  # over the classifier's 256 KiB limit
    reply = await suite.stub.Complete(ask(prompt), timeout=10)
    d = reply.decision
    assert d.reason == router_pb2.DECISION_REASON_ESCALATED  # classified, not a default route
    assert d.HasField("classification") and d.escalation_score == pytest.approx(0.9)
    assert d.prompt_truncated_for_classification
    assert reply.cost.hops[0].status == "OK"
    sent = suite.classifier.prompts[-1]
    assert len(sent.encode("utf-8")) <= 16 * 1024
    assert sent.startswith("CHAT 0.9 the committee") and sent.endswith(prompt[-200:])
    short = await suite.stub.Complete(ask("CHAT 0.1 hi"), timeout=10)
    assert not short.decision.prompt_truncated_for_classification
    assert suite.classifier.prompts[-1] == "CHAT 0.1 hi"


async def test_windows_are_learned_after_a_reload_once_the_backend_answers(suite: Suite) -> None:
    starting = FakeBackend("local2", windows={"small": 1000}, list_fail=4)
    server, address = await serve(
        inference_pb2_grpc.add_InferenceServiceServicer_to_server, starting
    )
    try:
        gen = suite.router.resources.source.generation
        moved = copy.deepcopy(suite.data)
        moved["backends"]["local-inference"]["address"] = address
        suite.write_config(moved)
        await wait_generation(suite, gen + 1)
        windows = suite.router.resources.windows
        for _ in range(200):
            learned = windows.for_targets(suite.router.resources.source.current)
            if learned.get("local-general") == 1000:
                break
            await asyncio.sleep(0.05)
        assert learned.get("local-general") == 1000, learned
        assert starting.list_calls > 4  # refused while starting, asked again until it answered
        # about 3 KiB: fits the old 2048-token window, not the new 1000-token one
        reply = await suite.stub.Complete(ask(document(3)), timeout=10)
        assert reply.decision.reason == router_pb2.DECISION_REASON_CONTEXT_WINDOW
        assert "(1000 tokens)" in reply.decision.reason_detail
        assert starting.models == []
    finally:
        await server.stop(0)


# ---- fallbacks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED],
)
async def test_fallback_before_first_token(suite: Suite, code: grpc.StatusCode) -> None:
    suite.local.fail = [code, code, code]
    reply = await suite.stub.Complete(ask("CHAT 0.1 hi"), timeout=10)
    assert reply.text == "frontier answered"
    assert reply.decision.target == "frontier-general"  # the decision served
    assert reply.decision.reason == router_pb2.DECISION_REASON_BELOW_THRESHOLD
    statuses = hops(reply)
    assert statuses[1] == ("HOP_KIND_GENERATE", "local-general", code.name)
    assert statuses[2] == ("HOP_KIND_GENERATE", "frontier-general", "OK")


async def test_non_retryable_backend_error_does_not_fall_back(suite: Suite) -> None:
    suite.local.fail = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 hi"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert suite.frontier.models == []


async def test_all_targets_failing_is_unavailable_and_recorded(suite: Suite) -> None:
    suite.local.fail = [UNAVAILABLE] * 3
    suite.frontier.fail = [UNAVAILABLE] * 3
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 hi"), timeout=10)
    assert err.value.code() == UNAVAILABLE
    assert "every target failed" in (err.value.details() or "")
    (record,) = await suite.records()
    assert record.status == "UNAVAILABLE"
    assert [a.target for a in record.attempts] == ["local-general", "frontier-general"]
    assert record.classifier_cost_usd == pytest.approx(CLASSIFY_COST)


async def test_disallow_frontier_blocks_frontier_fallback(suite: Suite) -> None:
    suite.local.fail = [UNAVAILABLE] * 3
    with pytest.raises(grpc.aio.AioRpcError):
        await suite.stub.Complete(ask("CHAT 0.1 hi", disallow_frontier=True), timeout=10)
    assert suite.frontier.models == []


# ---- streams -----------------------------------------------------------------------------------


async def test_stream_decision_deltas_summary_with_cost(suite: Suite) -> None:
    events = [e async for e in suite.stub.CompleteStream(stream_req("CHAT 0.1 hi"), timeout=10)]
    assert events[0].WhichOneof("event") == "decision"
    text = "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert text.strip() == "local answered in pieces"
    summary = events[-1].summary
    assert summary.usage.cost_usd == pytest.approx(0.0001)
    assert summary.cost.total_cost_usd == pytest.approx(CLASSIFY_COST + 0.0001)
    assert summary.finish_reason == inference_pb2.FINISH_REASON_STOP


async def test_stream_without_backend_cost_is_priced_not_free(suite: Suite) -> None:
    suite.local.report_cost = False
    events = [e async for e in suite.stub.CompleteStream(stream_req("CHAT 0.1 hi"), timeout=10)]
    summary = events[-1].summary
    # 10 in, 5 out at $1/$2 per million from the registry
    assert summary.usage.cost_usd == pytest.approx((10 * 1 + 5 * 2) / 1e6)
    assert summary.cost.total_cost_usd > CLASSIFY_COST


async def test_stream_falls_back_before_first_token(suite: Suite) -> None:
    suite.local.fail = [UNAVAILABLE] * 3
    events = [e async for e in suite.stub.CompleteStream(stream_req("CHAT 0.1 hi"), timeout=10)]
    assert events[0].decision.target == "local-general"
    assert events[-1].summary.decision.target == "frontier-general"
    assert [h.status for h in events[-1].summary.cost.hops] == ["OK", "UNAVAILABLE", "OK"]


async def test_stream_error_after_first_token_ends_stream_and_costs(suite: Suite) -> None:
    suite.local.break_after_deltas = 2
    got: list[Any] = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for event in suite.stub.CompleteStream(stream_req("CHAT 0.1 hi"), timeout=10):
            got.append(event)
    assert err.value.code() == UNAVAILABLE
    assert "mid-stream" in (err.value.details() or "")
    assert sum(1 for e in got if e.WhichOneof("event") == "delta") == 2
    assert suite.frontier.models == []  # no fallback after the first token
    (record,) = await suite.records()
    assert record.status == "UNAVAILABLE"
    assert record.attempts[0].cost_usd > 0  # partial output priced, never $0


# ---- ledger, budgets, auth, reload -------------------------------------------------------------


async def test_one_ledger_record_per_request_with_baseline(suite: Suite) -> None:
    await suite.stub.Complete(ask("CHAT 0.1 a"), timeout=10)
    await suite.stub.Complete(ask("CHAT 0.9 b"), timeout=10)
    records = sorted(await suite.records(), key=lambda r: r.target)
    assert [r.target for r in records] == ["frontier-general", "local-general"]
    local = records[1]
    assert local.tenant == "dev" and local.task_type == "CHAT" and local.status == "OK"
    assert local.reason == "BELOW_THRESHOLD" and local.target_kind == "LOCAL"
    assert local.total_cost_usd == pytest.approx(CLASSIFY_COST + 0.0001)
    # baseline: frontier-general prices on the same 10 in / 5 out tokens
    assert local.baseline_cost_usd == pytest.approx((10 * 100 + 5 * 400) / 1e6)
    report = await suite.costs.GetCostReport(
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_TARGET), timeout=10
    )
    assert report.total.requests == 2
    assert report.total.cost_usd == pytest.approx(sum(r.total_cost_usd for r in records))


def with_tenants(data: dict[str, Any], budget: dict[str, float] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["tenants"] = {
        "acme": {"api_key_sha256": [hash_api_key("acme-key")], "budget": budget or {}},
        "globex": {"api_key_sha256": [hash_api_key("globex-key")]},
    }
    return data


async def wait_generation(suite: Suite, generation: int) -> None:
    for _ in range(100):
        if suite.router.resources.source.generation >= generation:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("configuration was not reloaded")


async def test_auth_after_reload(suite: Suite) -> None:
    gen = suite.router.resources.source.generation
    suite.write_config(with_tenants(suite.data))
    await wait_generation(suite, gen + 1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 a"), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(
            ask("CHAT 0.1 a"), metadata=[("authorization", "Bearer wrong-key")], timeout=10
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "wrong-key" not in (err.value.details() or "")
    ok = await suite.stub.Complete(
        ask("CHAT 0.1 a"), metadata=[("authorization", "Bearer acme-key")], timeout=10
    )
    assert ok.text == "local answered"
    (record,) = await suite.records()
    assert record.tenant == "acme"


async def test_bad_config_keeps_old_one(suite: Suite) -> None:
    gen = suite.router.resources.source.generation
    original = copy.deepcopy(suite.data)
    suite.config_path.write_text("routing: [broken\n")
    await asyncio.sleep(0.3)
    assert suite.router.resources.source.generation == gen
    reply = await suite.stub.Complete(ask("CHAT 0.1 a"), timeout=10)
    assert reply.text == "local answered"
    bad = copy.deepcopy(suite.data)
    bad["routing"]["local_target"] = "ghost"
    suite.write_config(bad)
    await asyncio.sleep(0.3)
    assert suite.router.resources.source.generation == gen
    good = copy.deepcopy(original)
    good["routing"]["escalation_threshold"] = 0.05
    suite.write_config(good)
    await wait_generation(suite, gen + 1)
    reply = await suite.stub.Complete(ask("CHAT 0.1 a"), timeout=10)
    assert reply.decision.reason == router_pb2.DECISION_REASON_ESCALATED


async def test_reload_does_not_drop_inflight_requests(suite: Suite) -> None:
    suite.local.delay_s = 0.5
    inflight = asyncio.ensure_future(suite.stub.Complete(ask("CHAT 0.1 a"), timeout=10))
    await asyncio.sleep(0.1)
    gen = suite.router.resources.source.generation
    changed = copy.deepcopy(suite.data)
    changed["routing"]["escalation_threshold"] = 0.05
    suite.write_config(changed)
    await wait_generation(suite, gen + 1)
    reply = await inflight
    assert reply.decision.reason == router_pb2.DECISION_REASON_BELOW_THRESHOLD  # old snapshot


async def test_soft_budget_refuses_escalation_and_hard_refuses(suite: Suite) -> None:
    gen = suite.router.resources.source.generation
    key = [("authorization", "Bearer acme-key")]
    suite.write_config(with_tenants(suite.data, {"daily_soft_usd": 0.005, "daily_hard_usd": 0.02}))
    await wait_generation(suite, gen + 1)
    first = await suite.stub.Complete(ask("CHAT 0.9 a"), metadata=key, timeout=10)
    assert first.decision.reason == router_pb2.DECISION_REASON_ESCALATED  # $0.01 spent
    soft = await suite.stub.Complete(ask("CHAT 0.9 a"), metadata=key, timeout=10)
    assert soft.decision.reason == router_pb2.DECISION_REASON_BUDGET_SOFT_LIMIT, (
        str(first.cost).replace("\n", " "),
        str(soft.cost).replace("\n", " "),
    )
    assert soft.decision.target == "local-general"
    # the soft limit also keeps a failing local request from falling back to the frontier
    suite.local.fail = [UNAVAILABLE] * 3
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 a"), metadata=key, timeout=10)
    assert suite.frontier.models == ["big"]
    assert err.value.code() == UNAVAILABLE
    # other tenants are unaffected
    other = await suite.stub.Complete(
        ask("CHAT 0.9 a"), metadata=[("authorization", "Bearer globex-key")], timeout=10
    )
    assert other.decision.reason == router_pb2.DECISION_REASON_ESCALATED
    # lower the hard limit under what acme has spent: refused outright
    gen = suite.router.resources.source.generation
    suite.write_config(with_tenants(suite.data, {"daily_soft_usd": 0.005, "daily_hard_usd": 0.006}))
    await wait_generation(suite, gen + 1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 a"), metadata=key, timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "daily hard limit" in (err.value.details() or "")


async def test_budget_periods_at_a_year_end_and_the_first_of_a_month(suite: Suite) -> None:
    """UTC days and months with the router's clock pinned: spend on 31 December stays in
    December; on 1 January, when the day and the month start at the same instant, each
    request counts once in each (a doubled count would refuse the second request)."""
    gen = suite.router.resources.source.generation
    key = [("authorization", "Bearer acme-key")]
    limits = {"daily_hard_usd": 0.015, "monthly_hard_usd": 0.025}
    suite.write_config(with_tenants(suite.data, limits))
    await wait_generation(suite, gen + 1)

    async def escalate() -> grpc.StatusCode:
        try:
            await suite.stub.Complete(ask("CHAT 0.9 a"), metadata=key, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK  # $0.01 on the frontier

    suite.clock.now = datetime(2026, 12, 31, 23, 59, 50, tzinfo=UTC)
    december = [await escalate() for _ in range(3)]
    assert december == [grpc.StatusCode.OK, grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED]
    suite.clock.now = datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC)
    january = [await escalate() for _ in range(3)]
    assert january == [grpc.StatusCode.OK, grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED]
    ok = [r for r in await suite.records() if r.status == "OK"]
    assert sorted(r.time.year for r in ok) == [2026, 2026, 2027, 2027]


async def test_hard_budget_checked_before_fallback(suite: Suite) -> None:
    """Spend that lands while a request waits on a failing backend stops its fallback."""
    gen = suite.router.resources.source.generation
    key = [("authorization", "Bearer acme-key")]
    suite.write_config(with_tenants(suite.data, {"daily_hard_usd": 0.005}))
    await wait_generation(suite, gen + 1)
    suite.local.delay_s = 0.4
    suite.local.fail = [UNAVAILABLE] * 3
    slow = asyncio.ensure_future(suite.stub.Complete(ask("CHAT 0.1 a"), metadata=key, timeout=10))
    await asyncio.sleep(0.1)
    # meanwhile the same tenant spends $0.01 on the frontier: over the hard limit
    await suite.stub.Complete(ask("CHAT 0.9 b"), metadata=key, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await slow
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert suite.frontier.models == ["big"]  # only the second request reached the frontier
    records = {r.status: r for r in await suite.records()}
    refused = records["RESOURCE_EXHAUSTED"]
    assert [(a.target, a.status) for a in refused.attempts] == [("local-general", "UNAVAILABLE")]
    # and the next request is refused before it costs anything
    before = suite.classifier.calls
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("CHAT 0.1 c"), metadata=key, timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert suite.classifier.calls == before


# ---- traces and metrics ------------------------------------------------------------------------


async def test_spans_carry_tenant_task_type_and_cost(
    suite: Suite, spans: InMemorySpanExporter
) -> None:
    suite.local.fail = [UNAVAILABLE] * 3
    reply = await suite.stub.Complete(ask("CODE_GENERATION 0.1 write"), timeout=10)
    await asyncio.sleep(0.05)
    finished = spans.get_finished_spans()
    root = next(s for s in finished if s.attributes.get(attr.REQUEST_ID))
    trace_spans = [s for s in finished if s.context.trace_id == root.context.trace_id]
    classify = [s for s in trace_spans if s.name == attr.SPAN_ROUTER_CLASSIFY]
    generate = [s for s in trace_spans if s.name == attr.SPAN_ROUTER_GENERATE]
    assert len(classify) == 1 and len(generate) == 2
    for span in classify + generate:
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert attr.COST_USD in span.attributes
        assert span.attributes[attr.TENANT] == "dev"
    for span in generate:
        assert span.attributes[attr.TASK_TYPE] == "CODE_GENERATION"
    assert [s.attributes[attr.ROUTER_STATUS] for s in generate] == ["UNAVAILABLE", "OK"]
    assert root.attributes[attr.COST_USD] == pytest.approx(reply.cost.total_cost_usd)
    assert root.attributes[attr.TASK_TYPE] == "CODE_GENERATION"


async def test_hop_spans_are_the_client_spans_their_calls_continue(
    suite: Suite, spans: InMemorySpanExporter
) -> None:
    # No gRPC client interceptor: the classify and generate spans are the CLIENT spans, and
    # the called services receive them as the parent in their trace context, with the baggage.
    await suite.stub.Complete(ask("CHAT 0.1 hi"), timeout=10)
    await asyncio.sleep(0.05)
    finished = spans.get_finished_spans()
    root = next(s for s in finished if s.attributes.get(attr.REQUEST_ID))
    trace_spans = [s for s in finished if s.context.trace_id == root.context.trace_id]
    classify = next(s for s in trace_spans if s.name == attr.SPAN_ROUTER_CLASSIFY)
    generate = next(s for s in trace_spans if s.name == attr.SPAN_ROUTER_GENERATE)
    assert classify.kind == generate.kind == SpanKind.CLIENT
    assert [s.name for s in trace_spans if s.kind == SpanKind.CLIENT] == [
        attr.SPAN_ROUTER_CLASSIFY,
        attr.SPAN_ROUTER_GENERATE,
    ]  # one span per call, not two
    for span, service, method in (
        (classify, "switchyard.classifier.v1.ClassifierService", "Classify"),
        (generate, "switchyard.inference.v1.InferenceService", "Generate"),
    ):
        assert span.attributes[attr.RPC_SYSTEM] == "grpc"
        assert span.attributes[attr.RPC_SERVICE] == service
        assert span.attributes[attr.RPC_METHOD] == method
        assert span.attributes[attr.RPC_GRPC_STATUS_CODE] == 0
    trace_id = format(root.context.trace_id, "032x")
    for metadata, span in (
        (suite.classifier.metadata[-1], classify),
        (suite.local.metadata[-1], generate),
    ):
        version, sent_trace, parent, _ = metadata["traceparent"].split("-")
        assert (sent_trace, parent) == (trace_id, format(span.context.span_id, "016x"))
        assert f"{attr.BAGGAGE_TENANT}=dev" in metadata["baggage"]
    assert f"{attr.BAGGAGE_TASK_TYPE}=CHAT" in suite.local.metadata[-1]["baggage"]


async def test_metrics_by_model_task_type_tenant(suite: Suite, metric_reader) -> None:
    await suite.stub.Complete(ask("SUMMARIZATION 0.1 sum"), timeout=10)
    data = metric_reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    for name in (
        attr.METRIC_ROUTER_REQUESTS,
        attr.METRIC_ROUTER_COST,
        attr.METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
        attr.METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
    ):
        matching = [
            p
            for p in points.get(name, [])
            if p.attributes.get(attr.TASK_TYPE) == "SUMMARIZATION"
            and p.attributes.get(attr.TENANT) == "dev"
            and p.attributes.get(attr.GEN_AI_REQUEST_MODEL) == "small"
        ]
        assert matching, name


# ---- the CLI against the router ----------------------------------------------------------------


async def run_cli(argv: list[str]) -> tuple[int, str]:
    import io

    from switchyard_client.cli import build_parser

    args = build_parser().parse_args(argv)
    out = io.StringIO()
    code = await asyncio.to_thread(args.func, args, out)
    return code, out.getvalue()


async def test_cli_route_jsonl(suite: Suite, tmp_path: Path) -> None:
    import json

    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"id": i, "prompt": p})
            for i, p in [(1, "CHAT 0.1 hi"), (2, "MATH 0.2 sum"), (3, "CHAT 0.95 hard")]
        )
    )
    code, text = await run_cli(["route", "--address", suite.router.address, "--input", str(src)])
    assert code == 0
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3]
    targets = [line["target"] for line in lines]
    assert targets == ["local-general", "frontier-strong", "frontier-general"]
    assert lines[1]["task_type"] == "MATH" and lines[1]["model"] == "huge"
    assert lines[2]["escalation_score"] == pytest.approx(0.95)
    assert {"complexity", "escalation_score", "task_type"} <= set(lines[0])


async def test_cli_ask_and_costs(suite: Suite) -> None:
    code, text = await run_cli(["ask", "--address", suite.router.address, "CHAT 0.9 question"])
    assert code == 0
    assert "frontier answered" in text
    assert "frontier-general" in text and "ESCALATED" in text
    assert "classify" in text and "generate" in text and "total" in text
    await suite.router.resources.writer.flush()
    end = (suite.clock.now + timedelta(seconds=1)).isoformat()
    code, text = await run_cli(
        ["costs", "--address", suite.router.address, "--group-by", "target", "--end", end]
    )
    assert code == 0
    assert "TOTAL" in text and "frontier-general" in text and "saving" in text.lower()
    assert "Route-only" not in text  # none made


async def test_costs_by_model_name_what_targets_serve_and_keep_route_only_apart(
    suite: Suite,
) -> None:
    """A stand-in frontier answers with the local model's name: the report still files its
    traffic under the frontier target's model, as it files route-only calls to that target;
    route-only calls are counted apart and leave the answered calls' latency alone."""
    suite.frontier.answers_as = "small"  # the local model's name
    suite.frontier.delay_s = 0.05
    await suite.stub.Complete(ask("CHAT 0.9 escalate"), timeout=10)
    await suite.stub.Complete(ask("CHAT 0.1 stay local"), timeout=10)
    for _ in range(3):
        await suite.stub.Route(
            router_pb2.RouteRequest(messages=ask("CHAT 0.9 where to").messages), timeout=10
        )
    await suite.router.resources.writer.flush()  # the ledger is written behind the journal
    report = await suite.costs.GetCostReport(
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_MODEL), timeout=10
    )
    rows = {row.key: row for row in report.rows}
    assert set(rows) == {"big", "small"}
    assert (rows["big"].requests, rows["big"].route_only.requests) == (1, 3)
    assert (rows["small"].requests, rows["small"].route_only.requests) == (1, 0)
    assert (report.total.requests, report.total.route_only.requests) == (2, 3)
    assert report.total.route_only.cost_usd == pytest.approx(3 * CLASSIFY_COST)
    # the answered calls' median is theirs alone (the frontier one waited 50 ms)
    assert report.total.latency_p50_ms > report.total.route_only.latency_p95_ms
    frontier = next(r for r in await suite.records() if r.target == "frontier-general"
                    and r.operation == "complete")  # fmt: skip
    assert frontier.model == "big" and frontier.attempts[0].model == "small"
    end = (suite.clock.now + timedelta(seconds=1)).isoformat()
    code, text = await run_cli(
        ["costs", "--address", suite.router.address, "--group-by", "model", "--end", end]
    )
    assert code == 0
    routed = text.split("Route-only calls")[1]
    assert "big" in routed and "TOTAL" in routed
    assert [line.split()[1] for line in routed.splitlines() if line.startswith("TOTAL")] == ["3"]
