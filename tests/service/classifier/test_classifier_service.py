"""ClassifierService in process over a real channel, with the shipped model."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc
from switchyard.classifier.model import MANIFEST_NAME, MODEL_FILE, SHIPPED_MODEL_DIR
from switchyard.classifier.service import build_service
from switchyard.classifier.settings import ClassifierSettings
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.server import RunningServer, start_server

PROMPTS = [
    "What is the boiling point of water at sea level?",
    "Write a limerick about a cat who learns to code.",
    "Prove that the square root of 2 is irrational.",
    "def mean(xs):\n    return sum(xs) / len(xs) - 1\n\nWhat is wrong with this function?",
    "Write a Python function that reverses a linked list.",
    "Summarize this text: The company's profits rose 10% while costs fell.",
    "Classify the sentiment of this review as positive or negative: 'Terrible service.'",
    "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?",
    "A 2 kg mass on a spring with k = 50 N/m oscillates. What is its period?",
    "Extract every date mentioned in: 'We met on May 3 and again on June 9.'",
]


def settings(**overrides: object) -> ClassifierSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "max_batch_request": 64,
        "max_prompt_bytes": 20_000,
    }
    values.update(overrides)
    return ClassifierSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def running() -> AsyncIterator[RunningServer]:
    async with start_server(build_service(settings()), port=0) as server:
        yield server


@pytest.fixture(scope="module")
async def stub(running: RunningServer) -> AsyncIterator[pb_grpc.ClassifierServiceStub]:
    async with grpc.aio.insecure_channel(running.address) as channel:
        yield pb_grpc.ClassifierServiceStub(channel)


def assert_same(a: pb.Classification, b: pb.Classification) -> None:
    """Batched vs one-by-one: same decisions, numbers equal to float-summation noise (1e-5)."""
    assert a.task_type == b.task_type and a.complexity_level == b.complexity_level
    assert a.input_tokens == b.input_tokens and a.truncated == b.truncated
    assert abs(a.complexity_score - b.complexity_score) < 1e-5
    assert abs(a.escalation_probability - b.escalation_probability) < 1e-5
    for pa, pb_ in zip(a.task_type_probabilities, b.task_type_probabilities, strict=True):
        assert pa.task_type == pb_.task_type and abs(pa.probability - pb_.probability) < 1e-5


async def test_classify_one(
    stub: pb_grpc.ClassifierServiceStub, spans: InMemorySpanExporter
) -> None:
    response = await stub.Classify(
        pb.ClassifyRequest(
            prompt="Write a Python function that sorts a list of tuples by their second element."
        )
    )
    c = response.classification
    assert c.task_type == pb.TASK_TYPE_CODE_GENERATION
    assert abs(sum(p.probability for p in c.task_type_probabilities) - 1.0) < 1e-5
    assert len(c.task_type_probabilities) == 10
    assert (
        0.0 <= c.complexity_score <= 1.0 and c.complexity_level != pb.COMPLEXITY_LEVEL_UNSPECIFIED
    )
    assert 0.0 <= c.escalation_probability <= 1.0
    manifest = json.loads((SHIPPED_MODEL_DIR / MANIFEST_NAME).read_text())
    assert c.model_version == f"{manifest['name']}@{manifest['version']}"
    assert not c.truncated and 5 < c.input_tokens < 40
    assert response.cost_usd > 0
    server_spans = [s for s in spans.get_finished_spans() if s.name.endswith("/Classify")]
    assert server_spans, [s.name for s in spans.get_finished_spans()]
    attrs = server_spans[-1].attributes or {}
    assert attrs[attr.TASK_TYPE] == "TASK_TYPE_CODE_GENERATION"
    assert attrs[attr.CLASSIFIER_MODEL_VERSION] == c.model_version
    assert attrs[attr.COST_USD] == pytest.approx(response.cost_usd)
    assert attrs[attr.COMPLEXITY] == pytest.approx(c.complexity_score)


async def test_concurrent_and_batch_match_one_by_one(stub: pb_grpc.ClassifierServiceStub) -> None:
    one_by_one = [
        (await stub.Classify(pb.ClassifyRequest(prompt=p))).classification for p in PROMPTS
    ]
    concurrent = await asyncio.gather(
        *(stub.Classify(pb.ClassifyRequest(prompt=p)) for p in PROMPTS * 4)
    )
    for i, response in enumerate(concurrent):
        assert_same(response.classification, one_by_one[i % len(PROMPTS)])
    batch = await stub.ClassifyBatch(pb.ClassifyBatchRequest(prompts=PROMPTS))
    assert len(batch.classifications) == len(PROMPTS) and batch.cost_usd > 0
    for got, want in zip(batch.classifications, one_by_one, strict=True):
        assert_same(got, want)


async def test_long_prompt_is_truncated(stub: pb_grpc.ClassifierServiceStub) -> None:
    response = await stub.Classify(pb.ClassifyRequest(prompt="word " * 2000))
    assert response.classification.truncated
    assert response.classification.input_tokens == 256


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (pb.ClassifyRequest(prompt=""), "prompt is empty"),
        (pb.ClassifyRequest(prompt="   \n"), "prompt is empty"),
        (pb.ClassifyRequest(prompt="x" * 20_001), "20001 bytes; the limit is 20000"),
    ],
)
async def test_bad_single_input(
    stub: pb_grpc.ClassifierServiceStub, request_: pb.ClassifyRequest, match: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Classify(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert match in (caught.value.details() or "")


async def test_bad_batch_input(stub: pb_grpc.ClassifierServiceStub) -> None:
    for request_, match in (
        (pb.ClassifyBatchRequest(), "prompts is empty"),
        (pb.ClassifyBatchRequest(prompts=["a"] * 65), "65 prompts; the limit per call is 64"),
        (pb.ClassifyBatchRequest(prompts=["fine", ""]), "prompts[1] is empty"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ClassifyBatch(request_)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert match in (caught.value.details() or "")


async def test_unknown_field_is_invalid_argument(running: RunningServer) -> None:
    # prompt (field 1) plus an unknown varint field 15, as a newer client might send.
    raw = pb.ClassifyRequest(prompt="hello there").SerializeToString() + bytes([15 << 3, 1])
    async with grpc.aio.insecure_channel(running.address) as channel:
        call = channel.unary_unary(
            "/switchyard.classifier.v1.ClassifierService/Classify",
            request_serializer=lambda b: b,
            response_deserializer=pb.ClassifyResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(raw)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown field number(s) [15]" in (caught.value.details() or "")


async def test_corrupt_model_stops_start_up(tmp_path: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL_DIR, broken)
    expected = json.loads((broken / MANIFEST_NAME).read_text())["files"][MODEL_FILE]
    with (broken / MODEL_FILE).open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(FailedPrecondition) as caught:
        async with start_server(build_service(settings(model_dir=broken)), port=0):
            pass
    assert str(broken / MODEL_FILE) in caught.value.message
    assert expected in caught.value.message
