"""LocalInference's flow with a test double at the engine seam (the product only runs vLLM):
pieces then one completion, exact usage, abort on cancel / close / deadline, engine failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

import pytest

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.local_inference.conversion import SamplingSpec
from switchyard.local_inference.cost import CostMeter
from switchyard.local_inference.engine import EngineDelta, EngineUnavailable, RenderedPrompt
from switchyard.local_inference.inference import Completion, LocalInference, TextPiece
from switchyard.runtime.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted


class EngineDouble:
    """Scripted engine: each request yields `script`, then (unless `hang`) finishes."""

    model_name = "double"
    context_window = 64

    def __init__(self, script: Sequence[EngineDelta] = (), *, hang: bool = False) -> None:
        self.script = list(script)
        self.hang = hang
        self.fail_with: Exception | None = None
        self.aborted: list[str] = []
        self.active: set[str] = set()
        self.sampling: list[SamplingSpec] = []
        self.busy = 0

    async def render_chat(self, messages: Sequence[dict[str, str]]) -> RenderedPrompt:
        ids = [len(w) for m in messages for w in m["content"].split()]
        return RenderedPrompt(ids, engine_input=None)

    async def generate(
        self, prompt: RenderedPrompt, sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[EngineDelta]:
        self.sampling.append(sampling)
        self.active.add(request_id)
        try:
            for delta in self.script:
                await asyncio.sleep(0.001)
                if self.fail_with is not None:
                    raise self.fail_with
                yield delta
            if self.hang:
                await asyncio.Event().wait()
        finally:
            self.active.discard(request_id)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def check_health(self) -> None:
        pass

    def unfinished_requests(self) -> int:
        return len(self.active) + self.busy

    def reasoning_parser(self) -> None:
        return None

    def shutdown(self) -> None:
        pass


SCRIPT = [
    EngineDelta("", [5], False, None),  # a token whose text the detokenizer holds back
    EngineDelta("Hello", [6], False, None),
    EngineDelta(" world", [7, 8], True, "stop", cached_prompt_tokens=2),
]


def service(engine: EngineDouble, **kwargs: object) -> LocalInference:
    return LocalInference(
        engine,  # type: ignore[arg-type]
        CostMeter(3.6),
        default_max_tokens=kwargs.pop("default_max_tokens", 16),  # type: ignore[arg-type]
        max_queued_requests=kwargs.pop("max_queued_requests", 4),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def ask(text: str = "one two three") -> list[pb.ChatMessage]:
    return [pb.ChatMessage(role=pb.ROLE_USER, content=text)]


async def collect(inference: LocalInference, **kwargs: object) -> list[TextPiece | Completion]:
    params = kwargs.pop("params", pb.GenerationParameters())
    return [
        p
        async for p in inference.run("", ask(), params, **kwargs)  # type: ignore[arg-type]
    ]


async def test_pieces_then_one_completion_with_exact_usage() -> None:
    engine = EngineDouble(SCRIPT)
    inference = service(engine)
    pieces = await collect(inference)
    *texts, done = pieces
    assert [p.text for p in texts] == ["Hello", " world"]  # type: ignore[union-attr]
    assert isinstance(done, Completion)
    assert done.text == "Hello world" and done.finish_reason == pb.FINISH_REASON_STOP
    assert done.usage.input_tokens == 3  # the double's rendering: one token per word
    assert done.usage.output_tokens == 4
    assert done.usage.cached_input_tokens == 2
    assert done.usage.cost_usd > 0
    assert done.usage.cost_usd == pytest.approx(inference.meter.totals().finished_usd)
    assert 0 < done.timing.time_to_first_token_ms <= done.timing.total_ms
    assert engine.sampling[0].max_tokens == 16  # the default, as the window allows
    assert engine.aborted == []


async def test_max_tokens_default_is_capped_by_the_window() -> None:
    engine = EngineDouble(SCRIPT)
    await collect(service(engine, default_max_tokens=1000))
    assert engine.sampling[0].max_tokens == 64 - 3


async def test_prompt_too_long_is_invalid_argument() -> None:
    engine = EngineDouble(SCRIPT)
    with pytest.raises(InvalidArgument, match="context window"):
        async for _ in service(engine).run("", ask("w " * 64), pb.GenerationParameters()):
            pass
    assert engine.sampling == []


async def test_full_engine_is_refused_before_any_work() -> None:
    engine = EngineDouble(SCRIPT)
    engine.busy = 4
    with pytest.raises(ResourceExhausted):
        await collect(service(engine, max_queued_requests=4))
    assert engine.sampling == [] and service(engine).meter.totals().finished_requests == 0


async def test_cancelled_caller_aborts_the_request() -> None:
    engine = EngineDouble(SCRIPT[:2], hang=True)
    inference = service(engine)
    got_piece = asyncio.Event()

    async def caller() -> None:
        async for _ in inference.run("", ask(), pb.GenerationParameters()):
            got_piece.set()

    task = asyncio.create_task(caller())
    await got_piece.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(engine.aborted) == 1
    assert not engine.active
    totals = inference.meter.totals()
    assert totals.in_flight_requests == 0 and totals.finished_requests == 1


async def test_closing_the_stream_early_aborts_the_request() -> None:
    engine = EngineDouble(SCRIPT[:2], hang=True)
    inference = service(engine)
    async with aclosing(inference.run("", ask(), pb.GenerationParameters())) as pieces:
        async for _ in pieces:
            break
    assert len(engine.aborted) == 1
    assert inference.meter.totals().in_flight_requests == 0


async def test_deadline_aborts_and_is_deadline_exceeded() -> None:
    engine = EngineDouble(SCRIPT[:2], hang=True)
    inference = service(engine)
    with pytest.raises(DeadlineExceeded):
        await collect(inference, timeout_s=0.1)
    assert len(engine.aborted) == 1
    assert inference.meter.totals().in_flight_requests == 0


async def test_engine_failure_is_unavailable_and_reported() -> None:
    engine = EngineDouble(SCRIPT)
    engine.fail_with = EngineUnavailable("the engine failed: EngineDeadError")
    reported: list[bool] = []

    async def on_failure() -> None:
        reported.append(True)

    with pytest.raises(EngineUnavailable):
        await collect(service(engine, on_engine_failure=on_failure))
    assert reported == [True]


async def test_pricing_is_estimated_from_served_work() -> None:
    inference = service(EngineDouble(SCRIPT))
    assert inference.pricing() == pb.ModelPricing(estimated=True)
    await collect(inference)
    pricing = inference.pricing()
    assert pricing.estimated and pricing.output_usd_per_million_tokens > 0
    assert pricing.input_usd_per_million_tokens == pytest.approx(
        pricing.output_usd_per_million_tokens
    )
