"""Malformed bytes over every RPC of the router, the cost service, the classifier and the
frontier proxy (in process, over real channels): no call ends UNKNOWN or INTERNAL, and every
service still serves afterwards. Local inference (vLLM) gets the same treatment in
tests/service/local_inference (slow).

The cases come from hypothesis (`support.proto_fuzz`), derandomized: the same few hundred cases
on every run, so a failure is reproducible and CI is stable.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from support.frontier_standin import FrontierStandin
from support.proto_fuzz import call, fuzz_settings, request_bytes

from switchyard.api.classifier.v1 import classifier_pb2, classifier_pb2_grpc
from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.classifier.service import build_service as classifier_service
from switchyard.classifier.settings import ClassifierSettings
from switchyard.frontier_proxy.catalog import parse_catalog
from switchyard.frontier_proxy.service import build_definition as frontier_service
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.router.service import build_definition as router_service
from switchyard.router.settings import RouterSettings
from switchyard.runtime.server import start_server

KEY = "sy-fuzz-key"
AUTH = (("authorization", f"Bearer {KEY}"),)
CRASHES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
EXAMPLES = 30  # per RPC: 9 RPCs here, about 270 cases


class Backend(inference_pb2_grpc.InferenceServiceServicer):
    """A backend double behind the router: answers at once."""

    async def Generate(self, request: Any, context: Any) -> inference_pb2.GenerateResponse:  # noqa: N802
        return inference_pb2.GenerateResponse(
            model=request.model,
            text="ok",
            finish_reason=inference_pb2.FINISH_REASON_STOP,
            usage=inference_pb2.Usage(input_tokens=3, output_tokens=1, cost_usd=1e-6),
        )

    async def GenerateStream(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        yield inference_pb2.GenerateStreamResponse(delta=inference_pb2.TextDelta(text="ok"))
        yield inference_pb2.GenerateStreamResponse(
            complete=inference_pb2.GenerationComplete(
                model=request.model,
                finish_reason=inference_pb2.FINISH_REASON_STOP,
                usage=inference_pb2.Usage(input_tokens=3, output_tokens=1, cost_usd=1e-6),
            )
        )


@dataclass
class Services:
    channels: dict[str, grpc.aio.Channel]


def _router_config(classifier: str, backend: str, ledger: Path) -> dict[str, Any]:
    pricing = {"input_usd_per_million_tokens": 1, "output_usd_per_million_tokens": 2}
    return {
        "classifier": {"address": classifier, "timeout_ms": 2000},
        "backends": {
            "local-inference": {"address": backend, "kind": "LOCAL", "timeout_s": 5},
            "frontier-proxy": {"address": backend, "kind": "FRONTIER", "timeout_s": 5},
        },
        "targets": {
            "local-general": {"backend": "local-inference", "model": "small", "pricing": pricing},
            "frontier-general": {"backend": "frontier-proxy", "model": "big", "pricing": pricing},
        },
        "routing": {
            "escalation_threshold": 0.5,
            "local_target": "local-general",
            "frontier_target": "frontier-general",
            "default_target": "local-general",
            "fallbacks": {"local-general": ["frontier-general"]},
        },
        "tenants": {
            "fuzz": {
                "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()],
                "budget": {"daily_hard_usd": 1000.0},
            }
        },
        "ledger": {"url": f"sqlite:{ledger}"},
    }


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    tmp = tmp_path_factory.mktemp("fuzz")
    backend = grpc.aio.server()
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(Backend(), backend)
    backend_port = backend.add_insecure_port("127.0.0.1:0")
    await backend.start()
    classifier_settings = ClassifierSettings(host="127.0.0.1", max_prompt_bytes=20_000)
    async with (
        FrontierStandin() as standin,
        start_server(classifier_service(classifier_settings), port=0) as classifier,
    ):
        config = tmp / "router.yaml"
        config.write_text(
            yaml.safe_dump(
                _router_config(classifier.address, f"127.0.0.1:{backend_port}", tmp / "l.db")
            )
        )
        catalog = parse_catalog(
            {
                "default_model": "gpt-4o",
                "models": [
                    {
                        "name": "gpt-4o",
                        "provider": "openai",
                        "base_url": standin.openai_base_url,
                        "api_key_env": "FUZZ_OPENAI_KEY",
                    },
                    {
                        "name": "claude-haiku-4-5",
                        "provider": "anthropic",
                        "base_url": standin.anthropic_base_url,
                        "api_key_env": "FUZZ_ANTHROPIC_KEY",
                    },
                ],
            },
            {"FUZZ_OPENAI_KEY": standin.openai_key, "FUZZ_ANTHROPIC_KEY": standin.anthropic_key},
        )
        proxy_settings = FrontierProxySettings(host="127.0.0.1", grace_period_s=1.0)
        router_settings = RouterSettings(
            host="127.0.0.1", config=config, ledger_journal_dir=tmp / "journal", http_enabled=False
        )
        async with (
            start_server(
                frontier_service(proxy_settings, catalog=catalog, rng=random.Random(3)), port=0
            ) as proxy,
            start_server(router_service(router_settings), port=0) as router,
        ):
            channels = {
                name: grpc.aio.insecure_channel(server.address)
                for name, server in (
                    ("router", router),
                    ("classifier", classifier),
                    ("frontier-proxy", proxy),
                )
            }
            try:
                yield Services(channels)
            finally:
                for channel in channels.values():
                    await channel.close()
    await backend.stop(0)


HELLO = [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="Say hi.")]
PARAMETERS = inference_pb2.GenerationParameters(max_tokens=8, temperature=0.2, stop=["\n\n"])
ROUTING = router_pb2.RoutingOptions(escalation_threshold=0.5, max_cost_usd=1.0)
ROUTER = "/switchyard.router.v1.RouterService/"
INFERENCE = "/switchyard.inference.v1.InferenceService/"
CLASSIFIER = "/switchyard.classifier.v1.ClassifierService/"
# service, method, a valid request (the fuzzer's template), server-streaming?
RPCS = [
    (
        "router",
        ROUTER + "Complete",
        router_pb2.CompleteRequest(messages=HELLO, parameters=PARAMETERS, routing=ROUTING),
        False,
    ),
    (
        "router",
        ROUTER + "CompleteStream",
        router_pb2.CompleteStreamRequest(messages=HELLO, parameters=PARAMETERS, routing=ROUTING),
        True,
    ),
    ("router", ROUTER + "Route", router_pb2.RouteRequest(messages=HELLO, routing=ROUTING), False),
    (
        "router",
        "/switchyard.cost.v1.CostService/GetCostReport",
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_MODEL),
        False,
    ),
    ("classifier", CLASSIFIER + "Classify", classifier_pb2.ClassifyRequest(prompt="Hi."), False),
    (
        "classifier",
        CLASSIFIER + "ClassifyBatch",
        classifier_pb2.ClassifyBatchRequest(prompts=["Hi.", "Prove it."]),
        False,
    ),
    (
        "frontier-proxy",
        INFERENCE + "Generate",
        inference_pb2.GenerateRequest(model="gpt-4o", messages=HELLO, parameters=PARAMETERS),
        False,
    ),
    (
        "frontier-proxy",
        INFERENCE + "GenerateStream",
        inference_pb2.GenerateStreamRequest(
            model="claude-haiku-4-5", messages=HELLO, parameters=PARAMETERS
        ),
        True,
    ),
    ("frontier-proxy", INFERENCE + "ListModels", inference_pb2.ListModelsRequest(), False),
]


@pytest.mark.parametrize(
    ("service", "method", "template", "stream"),
    RPCS,
    ids=[f"{s}-{m.rsplit('/', 1)[1]}" for s, m, _, _ in RPCS],
)
@fuzz_settings(EXAMPLES)
@given(data=st.data())
async def test_malformed_requests_never_crash_a_service(
    services: Services,
    service: str,
    method: str,
    template: Any,
    stream: bool,
    data: st.DataObject,
) -> None:
    payload = data.draw(request_bytes(type(template), template), label="request bytes")
    code = await call(services.channels[service], method, payload, stream=stream, metadata=AUTH)
    assert code not in CRASHES, (method, payload[:120])


async def test_a_very_long_force_target_is_invalid_argument(services: Services) -> None:
    stub = router_pb2_grpc.RouterServiceStub(services.channels["router"])
    request = router_pb2.CompleteRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="hi")],
        routing=router_pb2.RoutingOptions(force_target="t" * 200_000),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Complete(request, metadata=AUTH, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "(200000 characters)" in (err.value.details() or "")


async def test_zz_every_service_still_serves(services: Services) -> None:
    hello = [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="Say hi.")]
    router = router_pb2_grpc.RouterServiceStub(services.channels["router"])
    reply = await router.Complete(router_pb2.CompleteRequest(messages=hello), metadata=AUTH)
    assert reply.text == "ok"
    costs = cost_pb2_grpc.CostServiceStub(services.channels["router"])
    report = await costs.GetCostReport(
        cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_MODEL), metadata=AUTH
    )
    assert report.total.requests >= 1
    classifier = classifier_pb2_grpc.ClassifierServiceStub(services.channels["classifier"])
    classified = await classifier.Classify(classifier_pb2.ClassifyRequest(prompt="Say hi."))
    assert classified.classification.model_version
    proxy = inference_pb2_grpc.InferenceServiceStub(services.channels["frontier-proxy"])
    answer = await proxy.Generate(inference_pb2.GenerateRequest(model="gpt-4o", messages=hello))
    assert answer.text
