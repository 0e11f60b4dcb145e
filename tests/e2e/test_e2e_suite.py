"""The whole suite as separate processes: classifier (the built model), local-inference (vLLM on
the small model), frontier-proxy (in front of the frontier stand-in speaking OpenAI's wire
format), and the router; every service exports traces over OTLP/gRPC to a receiver in this test.

Tests run in file order and share the suite: the destructive ones (killing backends) are last.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from otlp_receiver import OtlpReceiver, ReceivedSpan

from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.router.config import hash_api_key, parse_config
from switchyard.router.conversion import classified
from switchyard.router.ledger import open_ledger
from switchyard.router.policy import Overrides, PolicyInputs, decide, estimate_tokens
from switchyard.runtime import attributes as attr
from switchyard.suite.supervisor import ProcessSpec, Supervisor

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER

PROMPTS = {
    "classification": "Classify the sentiment of this review as positive or negative: "
    "'The battery died after one day and support never answered.'",
    "summarization": "Summarize in one sentence: The city council met on Tuesday and voted "
    "to move the farmers market to the riverside park starting in May, citing parking.",
    "math": "Solve for x: 3x + 7 = 22. Show each step.",
    "code": "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "creative": "Write a short poem about a lighthouse keeper who loves the fog.",
    "chat": "What are some good tips for sleeping better at night?",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Suite:
    supervisor: Supervisor
    receiver: OtlpReceiver
    router_address: str
    config_path: Path
    config: dict[str, Any]
    ledger_url: str
    channel: grpc.aio.Channel
    standin: subprocess.Popen[bytes]

    @property
    def stub(self) -> router_pb2_grpc.RouterServiceStub:
        return router_pb2_grpc.RouterServiceStub(self.channel)

    @property
    def costs(self) -> cost_pb2_grpc.CostServiceStub:
        return cost_pb2_grpc.CostServiceStub(self.channel)

    async def reload(self, data: dict[str, Any]) -> None:
        """Write a new config and SIGHUP the router; wait until its log says it is in force."""
        before = self.supervisor.tail("router", 100000).count("configuration reloaded")
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data))
        tmp.replace(self.config_path)
        self.supervisor.signal("router", signal.SIGHUP)
        for _ in range(100):
            if self.supervisor.tail("router", 100000).count("configuration reloaded") > before:
                self.config = data
                return
            await asyncio.sleep(0.1)
        raise AssertionError("router did not reload:\n" + self.supervisor.tail("router"))


def router_config(classifier: str, local: str, frontier: str, ledger: Path) -> dict[str, Any]:
    return {
        "classifier": {"address": classifier, "timeout_ms": 3000},
        "backends": {
            "local-inference": {"address": local, "kind": "LOCAL", "timeout_s": 300},
            "frontier-proxy": {"address": frontier, "kind": "FRONTIER", "timeout_s": 60},
        },
        "targets": {
            "local-general": {
                "backend": "local-inference",
                "model": "SmolLM2-135M-Instruct",
                "pricing": {
                    "input_usd_per_million_tokens": 0.02,
                    "output_usd_per_million_tokens": 0.05,
                },
            },
            "frontier-general": {
                "backend": "frontier-proxy",
                "model": "gpt-4o-mini",
                "pricing": {
                    "input_usd_per_million_tokens": 0.15,
                    "output_usd_per_million_tokens": 0.6,
                },
            },
            "frontier-strong": {
                "backend": "frontier-proxy",
                "model": "gpt-4o",
                "pricing": {
                    "input_usd_per_million_tokens": 2.5,
                    "output_usd_per_million_tokens": 10.0,
                },
            },
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
            "task_rules": {
                "CLASSIFICATION": {"target": "local-general"},
                "MATH": {"target": "frontier-strong"},
                "CODE_GENERATION": {"frontier_target": "frontier-strong"},
            },
        },
        "tenants": {},
        "ledger": {"url": f"sqlite:{ledger}"},
    }


@pytest.fixture(scope="module")
async def suite(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Suite]:
    tmp = tmp_path_factory.mktemp("e2e-suite")
    receiver = OtlpReceiver()
    otlp = await receiver.start()
    standin = subprocess.Popen(  # noqa: ASYNC220 - started once, before any await on it
        [sys.executable, str(REPO / "tests/support/frontier_standin.py")],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert standin.stdout is not None
    info = json.loads(await asyncio.to_thread(standin.stdout.readline))
    catalog = {
        "default_model": "gpt-4o-mini",
        "models": [
            {
                "name": name,
                "provider": "openai",
                "base_url": info["openai_base_url"],
                "api_key_env": "E2E_STANDIN_OPENAI_KEY",
                "price_lookup": False,
                "prices": {"input_usd_per_mtok": inp, "output_usd_per_mtok": out},
                "context_window": 128000,
            }
            for name, inp, out in (("gpt-4o-mini", 0.15, 0.6), ("gpt-4o", 2.5, 10.0))
        ],
    }
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    ports = {n: free_port() for n in ("router", "classifier", "local", "frontier")}
    address = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
    config = router_config(
        address["classifier"], address["local"], address["frontier"], tmp / "ledger.db"
    )
    config_path = tmp / "router.yaml"
    config_path.write_text(yaml.safe_dump(config))
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    supervisor = Supervisor(tmp / "logs", grace_s=20)
    specs = [
        ProcessSpec(
            "classifier",
            [str(BIN / "switchyard-classifier")],
            {
                **otel,
                "SWITCHYARD_CLASSIFIER_HOST": "127.0.0.1",
                "SWITCHYARD_CLASSIFIER_PORT": str(ports["classifier"]),
            },
            grpc_address=address["classifier"],
            startup_timeout_s=300,
        ),
        ProcessSpec(
            "local-inference",
            [str(BIN / "switchyard-local-inference")],
            {
                **otel,
                "SWITCHYARD_LOCAL_INFERENCE_HOST": "127.0.0.1",
                "SWITCHYARD_LOCAL_INFERENCE_PORT": str(ports["local"]),
                "SWITCHYARD_LOCAL_INFERENCE_MAX_MODEL_LEN": "1024",
                "SWITCHYARD_LOCAL_INFERENCE_CPU_KV_CACHE_GIB": "1",
                "SWITCHYARD_LOCAL_INFERENCE_USD_PER_HOUR": "1.0",
            },
            grpc_address=address["local"],
            startup_timeout_s=600,
        ),
        ProcessSpec(
            "frontier-proxy",
            [str(BIN / "switchyard-frontier-proxy")],
            {
                **otel,
                "SWITCHYARD_FRONTIER_PROXY_HOST": "127.0.0.1",
                "SWITCHYARD_FRONTIER_PROXY_PORT": str(ports["frontier"]),
                "SWITCHYARD_FRONTIER_PROXY_CATALOG": str(tmp / "catalog.yaml"),
                "E2E_STANDIN_OPENAI_KEY": info["openai_key"],
            },
            grpc_address=address["frontier"],
            startup_timeout_s=120,
        ),
        ProcessSpec(
            "router",
            [str(BIN / "switchyard-router")],
            {
                **otel,
                "SWITCHYARD_ROUTER_HOST": "127.0.0.1",
                "SWITCHYARD_ROUTER_PORT": str(ports["router"]),
                "SWITCHYARD_ROUTER_HTTP_PORT": "0",  # the HTTP door on any free port
                "SWITCHYARD_ROUTER_CONFIG": str(config_path),
                "SWITCHYARD_ROUTER_BUDGET_CACHE_S": "0",
                "SWITCHYARD_ROUTER_LEDGER_JOURNAL_DIR": str(tmp / "ledger-journal"),
            },
            grpc_address=address["router"],
            startup_timeout_s=120,
        ),
    ]

    async def cleanup() -> dict[str, int | None]:
        codes = await asyncio.to_thread(supervisor.stop_all)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(standin.pid, signal.SIGTERM)
        standin.wait(10)
        assert standin.stdout is not None
        standin.stdout.close()
        await receiver.stop()
        return codes

    try:
        for spec in specs:
            supervisor.start(spec)
        for spec in specs:
            await asyncio.to_thread(supervisor.wait_healthy, spec.name)
    except BaseException:
        await cleanup()
        raise
    try:
        async with grpc.aio.insecure_channel(address["router"]) as channel:
            yield Suite(
                supervisor,
                receiver,
                address["router"],
                config_path,
                config,
                f"sqlite:{tmp / 'ledger.db'}",
                channel,
                standin,
            )
    finally:
        codes = await cleanup()
    # every service still running stopped cleanly on SIGTERM (killed ones report -9)
    assert all(code in (0, -9) for code in codes.values()), codes


def ask(prompt: str, max_tokens: int = 12, **routing: Any) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=prompt)],
        parameters=inference_pb2.GenerationParameters(max_tokens=max_tokens, temperature=0),
        routing=router_pb2.RoutingOptions(**routing),
    )


SEEN: dict[str, router_pb2.CompleteResponse] = {}


async def test_task_types_routed_per_policy(suite: Suite) -> None:
    config = parse_config(suite.config)
    task_types = set()
    kinds = set()
    for name, prompt in PROMPTS.items():
        reply = await suite.stub.Complete(ask(prompt), timeout=300)
        SEEN[name] = reply
        d = reply.decision
        assert d.HasField("classification"), name
        expected = decide(
            config,
            PolicyInputs(
                classification=classified(d.classification),
                overrides=Overrides(),
                input_tokens=estimate_tokens(prompt),
                output_tokens=12,
            ),
        )
        assert (d.target, d.model) == (expected.target.name, expected.target.model), name
        assert router_pb2.DecisionReason.Name(d.reason).endswith(expected.reason.value)
        assert reply.text.strip(), name
        assert reply.cost.total_cost_usd > 0
        kinds_of_hops = [router_pb2.HopKind.Name(h.kind) for h in reply.cost.hops]
        assert kinds_of_hops == ["HOP_KIND_CLASSIFY", "HOP_KIND_GENERATE"], name
        assert all(h.cost_usd > 0 for h in reply.cost.hops[1:])
        task_types.add(d.classification.task_type)
        kinds.add(d.target_kind)
    assert len(task_types) >= 3, task_types
    # an escalation by request threshold reaches the frontier through the proxy
    escalated = await suite.stub.Complete(
        ask(PROMPTS["chat"], escalation_threshold=0.0), timeout=120
    )
    SEEN["escalated"] = escalated
    assert escalated.decision.reason == router_pb2.DECISION_REASON_ESCALATED
    assert escalated.decision.target_kind == router_pb2.TARGET_KIND_FRONTIER
    assert escalated.usage.cost_usd > 0


async def test_stream_through_the_suite_costs_money(suite: Suite) -> None:
    request = router_pb2.CompleteStreamRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="Say hello.")],
        parameters=inference_pb2.GenerationParameters(max_tokens=8),
        routing=router_pb2.RoutingOptions(force_target="local-general"),
    )
    events = [e async for e in suite.stub.CompleteStream(request, timeout=300)]
    assert events[0].WhichOneof("event") == "decision"
    summary = events[-1].summary
    assert summary.usage.output_tokens > 0
    assert summary.usage.cost_usd > 0
    assert summary.cost.total_cost_usd > summary.cost.hops[0].cost_usd


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def _subtree(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    out, frontier = [], [root]
    while frontier:
        node = frontier.pop()
        out.append(node)
        frontier.extend(_children(spans, node))
    return out


async def test_trace_tree_across_all_hops(suite: Suite) -> None:
    targets = {"local": SEEN["summarization"], "frontier": SEEN["escalated"]}
    for label, reply in targets.items():
        root = None
        for _ in range(100):
            roots = [
                s
                for s in suite.receiver.spans
                if s.attributes.get(attr.REQUEST_ID) == reply.request_id
            ]
            if roots:
                root = roots[0]
                spans = suite.receiver.trace(root.trace_id)
                services = {s.service.removeprefix("switchyard-") for s in spans}
                if {"classifier", "router"} <= services and len(services) >= 3:
                    break
            await asyncio.sleep(0.2)
        assert root is not None, f"{label}: no router span exported"
        spans = suite.receiver.trace(root.trace_id)
        assert root.service.endswith("router") and root.parent_span_id == "", label
        layout = sorted((s.service, s.name, s.kind) for s in spans)
        assert root.kind == SERVER_KIND
        assert root.attributes[attr.COST_USD] == pytest.approx(reply.cost.total_cost_usd)
        for key in (attr.TENANT, attr.TASK_TYPE):
            assert root.attributes.get(key), (label, key)
        hops = _children(spans, root)
        classify = [s for s in hops if s.name == attr.SPAN_ROUTER_CLASSIFY]
        generate = [s for s in hops if s.name == attr.SPAN_ROUTER_GENERATE]
        assert len(classify) == 1 and len(generate) == 1, [s.name for s in hops]
        backend_service = "local-inference" if label == "local" else "frontier-proxy"
        for hop, service, cost in (
            (classify[0], "classifier", reply.cost.hops[0].cost_usd),
            (generate[0], backend_service, reply.cost.hops[1].cost_usd),
        ):
            assert hop.attributes[attr.COST_USD] == pytest.approx(cost)
            assert hop.attributes[attr.TENANT] == "dev"
            below = _subtree(spans, hop)
            servers = [s for s in below if s.service.endswith(service) and s.kind == SERVER_KIND]
            assert servers, f"{label}: no {service} server span under {hop.name}: {layout}"
            # the hop's own service reports its cost in its part of the tree
            costs = [
                s.attributes[attr.COST_USD]
                for s in below
                if s.service.endswith(service) and attr.COST_USD in s.attributes
            ]
            assert costs and max(costs) == pytest.approx(cost, rel=1e-6, abs=1e-12), (
                label,
                service,
                costs,
                cost,
            )
            # baggage carried the tenant across the process boundary
            assert any(s.attributes.get(attr.TENANT) == "dev" for s in servers), service
        generate_below = _subtree(spans, generate[0])
        assert any(
            s.attributes.get(attr.TASK_TYPE)
            for s in generate_below
            if s.service.endswith(backend_service)
        ), layout


async def test_ledger_rows_and_cost_report(suite: Suite) -> None:
    await asyncio.sleep(0.5)  # the router writes records off the request path
    ledger = await open_ledger(suite.ledger_url)
    try:
        now = datetime.now(UTC)
        records = {
            r.request_id: r
            for r in await ledger.records(now - timedelta(hours=1), now + timedelta(minutes=1))
        }
    finally:
        await ledger.close()
    for name, reply in SEEN.items():
        record = records[reply.request_id]
        assert record.status == "OK", name
        # the ledger keeps whole nano-dollars
        nano = pytest.approx
        assert record.total_cost_usd == nano(reply.cost.total_cost_usd, abs=3e-9), name
        assert record.classifier_cost_usd == nano(reply.cost.hops[0].cost_usd, abs=1e-9)
        assert [a.target for a in record.attempts] == [reply.decision.target]
        assert record.attempts[0].input_tokens == reply.usage.input_tokens
        assert record.baseline_cost_usd > 0
    report = await suite.costs.GetCostReport(
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_TARGET), timeout=30
    )
    assert report.total.requests == len(records)
    assert report.total.cost_usd == pytest.approx(
        sum(r.total_cost_usd for r in records.values()), abs=1e-9
    )
    assert report.total.saving_usd == pytest.approx(
        report.total.baseline_cost_usd - report.total.cost_usd, abs=1e-9
    )
    assert {row.key for row in report.rows} >= {"local-general", "frontier-general"}


async def test_auth_budgets_and_reload(suite: Suite) -> None:
    original = copy.deepcopy(suite.config)
    data = copy.deepcopy(original)
    data["tenants"] = {
        "acme": {
            "api_key_sha256": [hash_api_key("acme-e2e-key")],
            "budget": {"daily_hard_usd": 0.0000001},
        },
        "globex": {
            "api_key_sha256": [hash_api_key("globex-e2e-key")],
            "budget": {"daily_soft_usd": 0.0},
        },
    }
    await suite.reload(data)
    acme = [("authorization", "Bearer acme-e2e-key")]
    globex = [("authorization", "Bearer globex-e2e-key")]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("hello"), timeout=60)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(
            ask("hello"), metadata=[("authorization", "Bearer nope")], timeout=60
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # soft limit reached (0): escalation refused, the request stays local
    soft = await suite.stub.Complete(
        ask(PROMPTS["chat"], escalation_threshold=0.0), metadata=globex, timeout=300
    )
    assert soft.decision.reason == router_pb2.DECISION_REASON_BUDGET_SOFT_LIMIT
    assert soft.decision.target_kind == router_pb2.TARGET_KIND_LOCAL
    # hard limit: the first request is admitted (nothing spent yet), then refused
    await suite.stub.Complete(
        ask("Say hi.", force_target="local-general"), metadata=acme, timeout=300
    )
    await asyncio.sleep(0.3)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("Say hi."), metadata=acme, timeout=60)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # a tenant sees only its own requests in the cost report
    report = await suite.costs.GetCostReport(
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_TENANT),
        metadata=globex,
        timeout=30,
    )
    assert [row.key for row in report.rows] == ["globex"]
    # a broken file keeps the configuration in force
    suite.config_path.write_text("tenants: [broken\n")
    suite.supervisor.signal("router", signal.SIGHUP)
    await asyncio.sleep(1.0)
    assert "reload failed" in suite.supervisor.tail("router", 200)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Complete(ask("hello"), timeout=60)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED  # tenants still in force
    await suite.reload(original)
    ok = await suite.stub.Complete(ask("Say hi.", force_target="local-general"), timeout=300)
    assert ok.text


async def test_long_prompts_go_where_they_fit_and_are_classified(suite: Suite) -> None:
    """The router learned the vLLM engine's 1024-token window through ListModels."""
    document = "The committee reviewed the quarterly figures and approved the budget. " * 200
    local = "local-general"  # forced: the policy's first choice is the 1024-token engine
    reply = await suite.stub.Complete(
        ask(document + "\nSummarize the text above.", force_target=local), timeout=120
    )
    d = reply.decision
    assert (d.target, d.reason) == ("frontier-general", router_pb2.DECISION_REASON_CONTEXT_WINDOW)
    assert "local-general's context window (1024 tokens)" in d.reason_detail
    assert [h.target for h in reply.cost.hops[1:]] == ["frontier-general"]  # local not tried
    assert reply.text
    # 300 KB: over the classifier's own 256 KiB limit; it classifies an excerpt instead
    big = "Please review this contract clause by clause. " + document * 22
    route = await suite.stub.Route(
        router_pb2.RouteRequest(
            messages=ask(big).messages, routing=router_pb2.RoutingOptions(force_target=local)
        ),
        timeout=60,
    )
    assert route.decision.HasField("classification")
    assert route.decision.prompt_truncated_for_classification
    assert route.cost.hops[0].status == "OK"
    assert route.decision.target == "frontier-general"
    # too long for every window: refused, naming the largest
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await suite.stub.Route(
            router_pb2.RouteRequest(
                messages=ask(big * 2).messages,
                routing=router_pb2.RoutingOptions(force_target=local),
            ),
            timeout=60,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "128000 tokens" in (err.value.details() or "")


async def test_fallback_when_a_backend_is_killed(suite: Suite) -> None:
    suite.supervisor.signal("local-inference", signal.SIGKILL)
    await asyncio.sleep(1.0)
    reply = await suite.stub.Complete(ask("Say hi.", escalation_threshold=1.0), timeout=120)
    statuses = [(h.target, h.status) for h in reply.cost.hops[1:]]
    assert statuses[0] == ("local-general", "UNAVAILABLE")
    assert statuses[-1] == ("frontier-general", "OK")
    assert reply.decision.target == "frontier-general"
    stream = router_pb2.CompleteStreamRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="Say hi.")],
        parameters=inference_pb2.GenerationParameters(max_tokens=8),
        routing=router_pb2.RoutingOptions(escalation_threshold=1.0),
    )
    events = [e async for e in suite.stub.CompleteStream(stream, timeout=120)]
    assert events[-1].summary.decision.target == "frontier-general"
    assert events[-1].summary.usage.cost_usd > 0


async def test_classifier_down_uses_default_route(suite: Suite) -> None:
    suite.supervisor.signal("classifier", signal.SIGKILL)
    await asyncio.sleep(1.0)
    started = time.perf_counter()
    reply = await suite.stub.Complete(ask("Say hi."), timeout=120)
    assert reply.decision.reason == router_pb2.DECISION_REASON_CLASSIFIER_UNAVAILABLE
    assert not reply.decision.HasField("classification")
    assert reply.cost.hops[0].status in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    # default route local-general is dead too: the fallback serves it
    assert reply.decision.target == "frontier-general"
    assert time.perf_counter() - started < 60
