"""InferenceService on the real vLLM engine (CPU build, SmolLM2-135M-Instruct), in process.

The engine starts ONCE for the session (fixture `live`): 1024-token window, 1 GiB KV cache, at
most 3 requests in the engine (so the full-queue test needs only three long generations). The
last test kills the engine on purpose.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st
from support.proto_fuzz import call as fuzz_call
from support.proto_fuzz import fuzz_settings, request_bytes
from support.vllm_server import prepared_model_dir

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc
from switchyard.local_inference.inference import LocalInference
from switchyard.local_inference.service import build_service
from switchyard.local_inference.settings import LocalInferenceSettings
from switchyard.runtime import attributes as attr
from switchyard.runtime.server import RunningServer, start_server
from switchyard.runtime.settings import load_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.timeout(600),
    # Third-party deprecations raised while vLLM loads torch and transformers, not ours.
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:torch(\..*)?"),
    pytest.mark.filterwarnings(r"ignore::FutureWarning:torch(\..*)?"),
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:transformers(\..*)?"),
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:vllm(\..*)?"),
]

USD_PER_HOUR = 3.6  # 0.001 USD a second: easy numbers
MAX_QUEUED = 3
MAX_MODEL_LEN = 1024


@dataclass
class LiveService:
    running: RunningServer[LocalInference]
    channel: grpc.aio.Channel
    stub: pb_grpc.InferenceServiceStub

    @property
    def inference(self) -> LocalInference:
        return self.running.resources


@pytest.fixture(scope="session")
async def live() -> AsyncIterator[LiveService]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings(
        LocalInferenceSettings,
        model=str(prepared_model_dir()),
        served_model_name="SmolLM2-135M-Instruct",
        max_model_len=MAX_MODEL_LEN,
        cpu_kv_cache_gib=1,
        max_num_seqs=8,
        max_queued_requests=MAX_QUEUED,
        usd_per_hour=USD_PER_HOUR,
        health_check_interval_s=0.5,
        grace_period_s=5,
    )
    async with start_server(build_service(settings), port=0) as running:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield LiveService(running, channel, pb_grpc.InferenceServiceStub(channel))


@pytest.fixture(scope="session")
def hf_tokenizer():  # type: ignore[no-untyped-def]
    """The model's tokenizer loaded by transformers, independently of the engine."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(prepared_model_dir()))


MODEL = "SmolLM2-135M-Instruct"
LONG_PROMPT = "Write a very long, detailed story about a lighthouse keeper and the sea."


def user(text: str) -> list[pb.ChatMessage]:
    return [pb.ChatMessage(role=pb.ROLE_USER, content=text)]


def greedy(max_tokens: int, **kwargs: object) -> pb.GenerationParameters:
    return pb.GenerationParameters(max_tokens=max_tokens, temperature=0.0, **kwargs)  # type: ignore[arg-type]


async def wait_engine_idle(live: LiveService, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (
        live.inference.engine.unfinished_requests()
        or live.inference.meter.totals().in_flight_requests
    ):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"engine still holds {live.inference.engine.unfinished_requests()} request(s)"
            )
        await asyncio.sleep(0.05)


async def test_list_models_names_the_engine_model(live: LiveService) -> None:
    reply = await live.stub.ListModels(pb.ListModelsRequest(), timeout=10)
    (model,) = reply.models
    assert model.name == MODEL
    assert model.provider == "vllm"
    assert model.context_window == 1024
    assert model.pricing.estimated


async def test_unary_generate_counts_tokens_exactly(live: LiveService, hf_tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = user("What is the capital of France?")
    reply = await live.stub.Generate(
        pb.GenerateRequest(model=MODEL, messages=messages, parameters=greedy(12)), timeout=60
    )
    assert reply.model == MODEL and reply.provider == "vllm"
    assert reply.text.strip()
    assert reply.reasoning_text == ""  # no reasoning parser for SmolLM2
    expected_prompt = hf_tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    assert reply.usage.input_tokens == len(expected_prompt)
    if reply.finish_reason == pb.FINISH_REASON_LENGTH:
        assert reply.usage.output_tokens == 12
    else:
        assert reply.finish_reason == pb.FINISH_REASON_STOP
        # the end-of-turn token is generated (and counted) but not shown
        assert (
            reply.usage.output_tokens
            == len(hf_tokenizer.encode(reply.text, add_special_tokens=False)) + 1
        )
    assert reply.usage.reasoning_tokens == 0
    assert reply.usage.cost_usd > 0
    assert 0 < reply.timing.time_to_first_token_ms <= reply.timing.total_ms
    assert reply.timing.time_per_output_token_ms > 0


async def test_stream_matches_unary_and_ends_with_one_complete(live: LiveService) -> None:
    messages = user("Name three colors.")
    unary = await live.stub.Generate(
        pb.GenerateRequest(messages=messages, parameters=greedy(20)), timeout=60
    )
    deltas: list[str] = []
    completes: list[pb.GenerationComplete] = []
    async for event in live.stub.GenerateStream(
        pb.GenerateStreamRequest(messages=messages, parameters=greedy(20)), timeout=60
    ):
        assert not completes, "nothing may follow `complete`"
        if event.HasField("delta"):
            deltas.append(event.delta.text)
        else:
            completes.append(event.complete)
    assert len(completes) == 1
    assert len(deltas) > 1, "the answer should arrive in several pieces"
    assert "".join(deltas) == unary.text
    complete = completes[0]
    assert complete.usage.input_tokens == unary.usage.input_tokens
    assert complete.usage.output_tokens == unary.usage.output_tokens
    assert complete.finish_reason == unary.finish_reason
    assert complete.model == MODEL and complete.provider == "vllm"


async def test_stop_sequence_cuts_the_answer(live: LiveService) -> None:
    messages = user("List the numbers from 1 to 10, one per line.")
    full = await live.stub.Generate(
        pb.GenerateRequest(messages=messages, parameters=greedy(60)), timeout=60
    )
    assert "4" in full.text, full.text
    cut = await live.stub.Generate(
        pb.GenerateRequest(messages=messages, parameters=greedy(60, stop=["4"])), timeout=60
    )
    assert cut.finish_reason == pb.FINISH_REASON_STOP
    assert cut.text == full.text[: full.text.index("4")]
    assert cut.usage.output_tokens < full.usage.output_tokens


async def test_seed_makes_sampling_reproducible(live: LiveService) -> None:
    params = pb.GenerationParameters(max_tokens=16, temperature=1.0, top_p=0.95, seed=1234)
    request = pb.GenerateRequest(messages=user("Tell me a fun fact."), parameters=params)
    first = await live.stub.Generate(request, timeout=60)
    second = await live.stub.Generate(request, timeout=60)
    assert first.text == second.text


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (pb.GenerationParameters(temperature=2.5), "temperature"),
        (pb.GenerationParameters(top_p=0.0), "top_p"),
        (pb.GenerationParameters(max_tokens=0), "max_tokens"),
        (pb.GenerationParameters(max_tokens=5000), "max_tokens"),
        (pb.GenerationParameters(stop=[str(i) for i in range(9)]), "stop"),
        (pb.GenerationParameters(stop=[""]), "stop[0]"),
        (pb.GenerationParameters(max_tokens=1000), "context window"),  # 1000 + prompt > 1024
    ],
)
async def test_bad_parameters_are_invalid_argument(
    live: LiveService, params: pb.GenerationParameters, fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await live.stub.Generate(
            pb.GenerateRequest(messages=user("hi"), parameters=params), timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in (caught.value.details() or "")


async def test_bad_requests(live: LiveService) -> None:
    cases = [
        (pb.GenerateRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            pb.GenerateRequest(messages=[pb.ChatMessage(content="no role")]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (pb.GenerateRequest(model="gpt-5", messages=user("hi")), grpc.StatusCode.NOT_FOUND),
        # a prompt longer than the 1024-token window
        (pb.GenerateRequest(messages=user("lighthouse " * 1500)), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for request, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await live.stub.Generate(request, timeout=30)
        assert caught.value.code() == code, (request, caught.value.details())
    await wait_engine_idle(live)


async def test_cancelled_stream_is_aborted_in_the_engine(live: LiveService, spans) -> None:  # type: ignore[no-untyped-def]
    call = live.stub.GenerateStream(
        pb.GenerateStreamRequest(messages=user(LONG_PROMPT), parameters=greedy(900)), timeout=120
    )
    seen = 0
    async for event in call:
        assert event.HasField("delta"), "the generation must still be running when cancelled"
        seen += 1
        if seen == 3:
            break
    assert live.inference.engine.unfinished_requests() == 1
    call.cancel()
    await wait_engine_idle(live, timeout_s=5)
    chat_spans = [s for s in spans.get_finished_spans() if s.name == f"chat {MODEL}"]
    assert chat_spans and chat_spans[-1].attributes[attr.GEN_AI_RESPONSE_FINISH_REASONS] == (
        "aborted",
    )
    assert chat_spans[-1].attributes[attr.COST_USD] > 0  # the work done so far is still billed


async def test_deadline_aborts_the_request(live: LiveService) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await live.stub.Generate(
            pb.GenerateRequest(messages=user(LONG_PROMPT), parameters=greedy(900)), timeout=1.0
        )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3
    await wait_engine_idle(live, timeout_s=5)


async def test_full_queue_is_resource_exhausted_at_once(live: LiveService) -> None:
    calls = [
        live.stub.GenerateStream(
            pb.GenerateStreamRequest(messages=user(LONG_PROMPT), parameters=greedy(900)),
            timeout=120,
        )
        for _ in range(MAX_QUEUED)
    ]
    try:
        for call in calls:  # each one is generating
            event = await call.read()
            assert event.HasField("delta")
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await live.stub.Generate(
                pb.GenerateRequest(messages=user("hi"), parameters=greedy(5)), timeout=30
            )
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert time.monotonic() - started < 1.0, "a full queue must answer at once"
    finally:
        for call in calls:
            call.cancel()
    await wait_engine_idle(live, timeout_s=5)
    # and the engine serves again
    reply = await live.stub.Generate(
        pb.GenerateRequest(messages=user("hi"), parameters=greedy(4)), timeout=60
    )
    assert reply.usage.output_tokens > 0


async def test_costs_add_up_to_the_machine_rate(live: LiveService) -> None:
    meter = live.inference.meter
    await wait_engine_idle(live)
    before = meter.totals()
    await asyncio.sleep(0.2)  # some idle time in the window

    async def one(max_tokens: int, text: str) -> pb.GenerateResponse:
        return await live.stub.Generate(
            pb.GenerateRequest(messages=user(text), parameters=greedy(max_tokens)), timeout=120
        )

    replies = await asyncio.gather(
        one(8, "Say hello."), one(40, LONG_PROMPT), one(24, "Describe the moon.")
    )
    await asyncio.sleep(0.2)
    after = meter.totals()
    window = after.elapsed_s - before.elapsed_s
    request_costs = sum(r.usage.cost_usd for r in replies)
    idle = after.idle_usd - before.idle_usd
    assert after.in_flight_requests == 0
    assert after.finished_usd - before.finished_usd == pytest.approx(request_costs, rel=1e-9)
    assert request_costs + idle == pytest.approx(USD_PER_HOUR / 3600 * window, rel=1e-9)
    assert idle > 0 and all(r.usage.cost_usd > 0 for r in replies)
    by_tokens = sorted(replies, key=lambda r: r.usage.output_tokens)
    assert by_tokens[0].usage.cost_usd < by_tokens[-1].usage.cost_usd


async def test_span_carries_gen_ai_attributes_and_cost(live: LiveService, spans) -> None:  # type: ignore[no-untyped-def]
    reply = await live.stub.Generate(
        pb.GenerateRequest(
            messages=user("Say hi."), parameters=greedy(8, top_p=0.9, stop=["\n\n"])
        ),
        timeout=60,
    )
    finished = spans.get_finished_spans()
    (chat,) = [s for s in finished if s.name == f"chat {MODEL}"]
    a = chat.attributes
    assert a[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert a[attr.GEN_AI_PROVIDER_NAME] == "vllm"
    assert a[attr.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[attr.GEN_AI_RESPONSE_MODEL] == MODEL
    assert a[attr.GEN_AI_REQUEST_MAX_TOKENS] == 8
    assert a[attr.GEN_AI_REQUEST_TEMPERATURE] == 0.0
    assert a[attr.GEN_AI_REQUEST_TOP_P] == pytest.approx(0.9)
    assert a[attr.GEN_AI_USAGE_INPUT_TOKENS] == reply.usage.input_tokens
    assert a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == reply.usage.output_tokens
    assert a[attr.GEN_AI_USAGE_COST] == a[attr.COST_USD] == reply.usage.cost_usd
    assert a[attr.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN] == pytest.approx(
        reply.timing.time_to_first_token_ms / 1e3
    )
    assert a[attr.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN] > 0
    assert a[attr.LOCAL_INFERENCE_MACHINE_USD_PER_HOUR] == USD_PER_HOUR
    # a child of the gRPC server span, in the same trace
    (server,) = [s for s in finished if s.name.endswith("InferenceService/Generate")]
    assert chat.parent is not None and chat.parent.span_id == server.context.span_id


async def test_health_serving(live: LiveService) -> None:
    health = health_pb2_grpc.HealthStub(live.channel)
    reply = await health.Check(
        health_pb2.HealthCheckRequest(service="switchyard.inference.v1.InferenceService"),
        timeout=5,
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


FUZZ_RPCS = [
    (
        "Generate",
        pb.GenerateRequest(model=MODEL, messages=user("Say hi."), parameters=greedy(4)),
        False,
    ),
    (
        "GenerateStream",
        pb.GenerateStreamRequest(model=MODEL, messages=user("Say hi."), parameters=greedy(4)),
        True,
    ),
    ("ListModels", pb.ListModelsRequest(), False),
]


@pytest.mark.parametrize(
    ("method", "template", "stream"), FUZZ_RPCS, ids=[m for m, _, _ in FUZZ_RPCS]
)
@fuzz_settings(15)
@given(data=st.data())
async def test_malformed_requests_never_crash_the_service(
    live: LiveService, method: str, template: Any, stream: bool, data: st.DataObject
) -> None:
    """Malformed bytes, invalid UTF-8, huge and NaN fields (support.proto_fuzz): no UNKNOWN or
    INTERNAL. A generation that runs long is cut by the deadline (and aborted in the engine)."""
    payload = data.draw(request_bytes(type(template), template), label="request bytes")
    code = await fuzz_call(
        live.channel,
        f"/switchyard.inference.v1.InferenceService/{method}",
        payload,
        stream=stream,
        timeout=5,
    )
    assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), payload[:120]


async def test_still_serves_after_the_fuzzing(live: LiveService) -> None:
    await wait_engine_idle(live, timeout_s=30)
    reply = await live.stub.Generate(
        pb.GenerateRequest(messages=user("Say hi."), parameters=greedy(4)), timeout=60
    )
    assert reply.usage.output_tokens > 0


async def test_zz_engine_failure_is_unavailable_and_not_serving(live: LiveService) -> None:
    """Runs last: kills the engine core process, which ends the engine for this session."""

    def is_engine_core(p: psutil.Process) -> bool:
        try:
            return "EngineCore" in p.name() or "EngineCore" in " ".join(p.cmdline())
        except psutil.Error:  # exited, or a zombie another test left to be reaped
            return False

    cores = [p for p in psutil.Process().children(recursive=True) if is_engine_core(p)]
    assert cores, [(p.pid, p.name()) for p in psutil.Process().children(recursive=True)]
    for p in cores:
        p.kill()
    health = health_pb2_grpc.HealthStub(live.channel)
    request = health_pb2.HealthCheckRequest(service="switchyard.inference.v1.InferenceService")
    codes = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await live.stub.Generate(
                pb.GenerateRequest(messages=user("hi"), parameters=greedy(4)), timeout=10
            )
        codes.add(caught.value.code())
        if (
            await health.Check(request, timeout=5)
        ).status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        await asyncio.sleep(0.2)
    assert grpc.StatusCode.UNAVAILABLE in codes, codes
    assert (await health.Check(request, timeout=5)).status == (
        health_pb2.HealthCheckResponse.NOT_SERVING
    )
