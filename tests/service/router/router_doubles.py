"""Test doubles at the gRPC seam: a classifier and inference backends the router calls.

They are real gRPC servers on port 0 that speak the real contract; their behaviour is scripted
per test (task type and escalation probability by keyword, failures by status code, streams that
break after N deltas).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from switchyard.api.classifier.v1 import classifier_pb2, classifier_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc

CLASSIFY_COST = 0.000001


@dataclass
class FakeClassifier(classifier_pb2_grpc.ClassifierServiceServicer):
    """Task type and escalation probability from the prompt's first words: `MATH 0.9 ...`."""

    mode: str = "ok"  # ok | down | slow | broken
    delay_s: float = 2.0
    calls: int = 0
    #: Longer prompts are refused INVALID_ARGUMENT, as the real classifier's limit does.
    max_prompt_bytes: int = 256 * 1024
    prompts: list[str] = field(default_factory=list)
    #: When set, each call waits for it before answering (a backend call can open it).
    gate: asyncio.Event | None = None
    #: Each call's invocation metadata (trace context, baggage).
    metadata: list[dict[str, str]] = field(default_factory=list)

    async def Classify(self, request, context):  # noqa: N802
        self.calls += 1
        self.prompts.append(request.prompt)
        self.metadata.append(dict(context.invocation_metadata()))
        if self.gate is not None:
            await self.gate.wait()
        size = len(request.prompt.encode("utf-8"))
        if size > self.max_prompt_bytes:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"prompt is {size} bytes; the limit is {self.max_prompt_bytes}",
            )
        if self.mode == "down":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "classifier down")
        if self.mode == "broken":
            await context.abort(grpc.StatusCode.INTERNAL, "classifier bug")
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        words = request.prompt.split()
        task = words[0] if words else "CHAT"
        try:
            task_value = classifier_pb2.TaskType.Value(f"TASK_TYPE_{task}")
            score = float(words[1])
        except (ValueError, IndexError):
            task_value, score = classifier_pb2.TASK_TYPE_CHAT, 0.1
        return classifier_pb2.ClassifyResponse(
            classification=classifier_pb2.Classification(
                task_type=task_value,
                complexity_score=0.5,
                complexity_level=classifier_pb2.COMPLEXITY_LEVEL_MEDIUM,
                escalation_probability=score,
                model_version="fake-1",
                input_tokens=len(words),
            ),
            cost_usd=CLASSIFY_COST,
        )


@dataclass
class FakeBackend(inference_pb2_grpc.InferenceServiceServicer):
    """Answers `echo <model>`; `fail` is a list of status codes to return first, one per call."""

    name: str
    cost_usd: float = 0.001
    fail: list[grpc.StatusCode] = field(default_factory=list)
    break_after_deltas: int | None = None  # stream: fail UNAVAILABLE after this many deltas
    report_cost: bool = True
    delay_s: float = 0.0
    models: list[str] = field(default_factory=list)
    #: The model name the backend answers with (default: the one asked for); a stand-in
    #: frontier served by the local model answers with the local model's name.
    answers_as: str = ""
    #: What ListModels reports: model name -> context window (empty: UNIMPLEMENTED).
    windows: dict[str, int] = field(default_factory=dict)
    #: ListModels answers UNAVAILABLE this many times first (a backend still starting).
    list_fail: int = 0
    list_calls: int = 0
    #: Each generation call's invocation metadata (trace context, baggage).
    metadata: list[dict[str, str]] = field(default_factory=list)
    #: Called as each generation call arrives (say, to open the classifier's gate).
    on_call: Callable[[], None] | None = None
    #: The answer's text from the request (default: "<name> answered"), e.g. a judge's verdict.
    answer: Callable[[Any], str] | None = None
    #: When set, Generate waits for it (a test holds a call open, then releases it).
    gate: asyncio.Event | None = None
    requests: list[Any] = field(default_factory=list)

    async def ListModels(self, request, context):  # noqa: N802
        self.list_calls += 1
        if self.list_fail > 0:
            self.list_fail -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} starting")
        if not self.windows:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no ListModels")
        return inference_pb2.ListModelsResponse(
            models=[
                inference_pb2.ModelInfo(name=name, provider=self.name, context_window=window)
                for name, window in self.windows.items()
            ]
        )

    def _usage(self) -> inference_pb2.Usage:
        return inference_pb2.Usage(
            input_tokens=10, output_tokens=5, cost_usd=self.cost_usd if self.report_cost else 0.0
        )

    async def _maybe_fail(self, context) -> None:
        self.metadata.append(dict(context.invocation_metadata()))
        if self.on_call is not None:
            self.on_call()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            code = self.fail.pop(0)
            await context.abort(code, f"{self.name} scripted {code.name}")

    async def Generate(self, request, context):  # noqa: N802
        self.models.append(request.model)
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        await self._maybe_fail(context)
        return inference_pb2.GenerateResponse(
            model=self.answers_as or request.model,
            text=self.answer(request) if self.answer else f"{self.name} answered",
            finish_reason=inference_pb2.FINISH_REASON_STOP,
            usage=self._usage(),
            provider=self.name,
        )

    async def GenerateStream(  # noqa: N802
        self, request, context
    ) -> AsyncIterator[inference_pb2.GenerateStreamResponse]:
        self.models.append(request.model)
        await self._maybe_fail(context)
        for i, word in enumerate(f"{self.name} answered in pieces".split()):
            if self.break_after_deltas is not None and i >= self.break_after_deltas:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} died mid-stream")
            yield inference_pb2.GenerateStreamResponse(
                delta=inference_pb2.TextDelta(text=word + " ")
            )
        yield inference_pb2.GenerateStreamResponse(
            complete=inference_pb2.GenerationComplete(
                model=self.answers_as or request.model,
                finish_reason=inference_pb2.FINISH_REASON_STOP,
                usage=self._usage(),
                provider=self.name,
            )
        )


async def serve(register, servicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    register(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@dataclass
class Doubles:
    """A classifier, a local and a frontier backend, each a gRPC server on port 0."""

    classifier: FakeClassifier
    local: FakeBackend
    frontier: FakeBackend
    addresses: tuple[str, str, str]  # classifier, local, frontier
    servers: list[grpc.aio.Server]

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop(0)


async def start_doubles() -> Doubles:
    classifier = FakeClassifier()
    local = FakeBackend("local", cost_usd=0.0001)
    frontier = FakeBackend("frontier", cost_usd=0.01)
    started = [
        await serve(classifier_pb2_grpc.add_ClassifierServiceServicer_to_server, classifier),
        await serve(inference_pb2_grpc.add_InferenceServiceServicer_to_server, local),
        await serve(inference_pb2_grpc.add_InferenceServiceServicer_to_server, frontier),
    ]
    addresses = (started[0][1], started[1][1], started[2][1])
    return Doubles(classifier, local, frontier, addresses, [s for s, _ in started])


async def ledger_records(router: Any, now: datetime | None = None) -> list[Any]:
    """The ledger's records within an hour of `now` (the router's clock), once the writer has
    flushed (router: a RunningServer[RouterResources])."""
    await router.resources.writer.flush()
    if now is None:
        now = router.resources.clock()
    return await router.resources.ledger.records(now - timedelta(hours=1), now + timedelta(hours=1))


@dataclass
class PinnedClock:
    """The router's clock in these tests, never the wall clock: it starts mid-month and moves
    one millisecond each time it is read (a record is never dated exactly at a report's
    exclusive end); tests set `now` to pin a date."""

    now: datetime = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now
