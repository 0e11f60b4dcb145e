"""One chat generation on the local engine, from validated request to priced completion.

`LocalInference.run` is what both RPCs use: it validates the request, renders the chat with the
engine's template, sizes max_tokens against the context window, admits the request to the cost
meter, streams the engine's deltas (split into reasoning and answer), and ends with a
`Completion` carrying exact token counts, the attributed cost and timings. It owns the model-call
span (`chat <model>`, with `gen_ai.*` attributes and `switchyard.cost.usd`) and the GenAI
server metrics.

Whatever way a generation ends early (the caller cancels, its deadline passes, the stream is
closed, an error), the request is aborted in the engine and its cost so far is settled, so no
generation keeps running for nobody and the meter's books stay balanced.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, StatusCode

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.local_inference.conversion import finish_reason, plan_chat, resolve_max_tokens
from switchyard.local_inference.cost import CostMeter
from switchyard.local_inference.engine import Engine, EngineUnavailable
from switchyard.local_inference.reasoning import ReasoningSplit
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import DeadlineExceeded, ResourceExhausted, SwitchyardError
from switchyard.runtime.logging import get_logger
from switchyard.runtime.telemetry import get_meter, get_tracer

__all__ = ["PROVIDER", "Completion", "LocalInference", "TextPiece"]

PROVIDER = "vllm"
log = get_logger(__name__)
_tracer = get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class TextPiece:
    """The next piece of generated text (answer and/or reasoning)."""

    text: str
    reasoning_text: str


@dataclass(frozen=True, slots=True)
class Completion:
    """How a generation ended: whole texts, finish reason, usage with cost, timing."""

    model: str
    text: str
    reasoning_text: str
    finish_reason: int
    usage: pb.Usage
    timing: pb.Timing


_FINISH_NAMES: dict[int, str] = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_ABORTED: "aborted",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
    pb.FINISH_REASON_CONTENT_FILTER: "content_filter",
}


class LocalInference:
    """Runs generations on one engine and prices them with one cost meter."""

    def __init__(
        self,
        engine: Engine,
        meter: CostMeter,
        *,
        default_max_tokens: int,
        max_queued_requests: int,
        on_engine_failure: Callable[[], Awaitable[None]] | None = None,
        log_prompts: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.meter = meter
        self._default_max_tokens = default_max_tokens
        self._max_queued = max_queued_requests
        self._on_engine_failure = on_engine_failure
        self._log_prompts = log_prompts
        self._clock = clock
        meter_ = get_meter(__name__)
        self._ttft = meter_.create_histogram(
            attr.METRIC_GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, unit="s", description="Time to 1st token"
        )
        self._tpot = meter_.create_histogram(
            attr.METRIC_GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
            unit="s",
            description="Time per output token after the first",
        )
        self._duration = meter_.create_histogram(
            attr.METRIC_GEN_AI_SERVER_REQUEST_DURATION, unit="s", description="Request duration"
        )
        self._request_cost = meter_.create_counter(
            attr.METRIC_LOCAL_INFERENCE_REQUEST_COST,
            unit="USD",
            description="Machine cost attributed to requests",
        )
        meter_.create_observable_counter(
            attr.METRIC_LOCAL_INFERENCE_IDLE_COST,
            callbacks=[self._observe_idle],
            unit="USD",
            description="Machine cost while no request was in the engine",
        )
        meter_.create_observable_counter(
            attr.METRIC_LOCAL_INFERENCE_MACHINE_COST,
            callbacks=[self._observe_machine],
            unit="USD",
            description="Machine cost since start (requests + idle)",
        )

    def _observe_idle(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(self.meter.totals().idle_usd, {attr.GEN_AI_PROVIDER_NAME: PROVIDER})]

    def _observe_machine(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(self.meter.totals().machine_usd, {attr.GEN_AI_PROVIDER_NAME: PROVIDER})]

    def pricing(self) -> pb.ModelPricing:
        """Estimated USD per million tokens from the hourly rate and the work served so far."""
        per_unit = self.meter.totals().usd_per_work_unit
        if per_unit is None:
            return pb.ModelPricing(estimated=True)
        per_input = per_unit * self.meter.prefill_token_weight * 1e6
        return pb.ModelPricing(
            input_usd_per_million_tokens=per_input,
            output_usd_per_million_tokens=per_unit * 1e6,
            cached_input_usd_per_million_tokens=per_input,
            estimated=True,
        )

    async def run(
        self,
        model: str,
        messages: Sequence[pb.ChatMessage],
        parameters: pb.GenerationParameters,
        *,
        timeout_s: float | None = None,
    ) -> AsyncGenerator[TextPiece | Completion, None]:
        """Yield text pieces, then exactly one `Completion`; raise a `SwitchyardError` on failure.

        Close the iterator (`contextlib.aclosing`) when stopping early: that aborts the request.
        """
        received = self._clock()
        deadline = None if timeout_s is None else received + timeout_s
        engine = self.engine
        plan = plan_chat(
            model,
            list(messages),
            parameters,
            served_model=engine.model_name,
            context_window=engine.context_window,
        )
        request_id = uuid.uuid4().hex
        span = _tracer.start_span(
            f"{attr.GEN_AI_OPERATION_CHAT} {plan.model}",
            kind=SpanKind.INTERNAL,
            attributes={
                attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
                attr.GEN_AI_PROVIDER_NAME: PROVIDER,
                attr.GEN_AI_REQUEST_MODEL: plan.model,
                attr.GEN_AI_RESPONSE_ID: request_id,
                attr.LOCAL_INFERENCE_MACHINE_USD_PER_HOUR: self.meter.usd_per_hour,
            },
        )
        sampling = plan.sampling
        if sampling.temperature is not None:
            span.set_attribute(attr.GEN_AI_REQUEST_TEMPERATURE, sampling.temperature)
        if sampling.top_p is not None:
            span.set_attribute(attr.GEN_AI_REQUEST_TOP_P, sampling.top_p)
        if sampling.seed is not None:
            span.set_attribute(attr.GEN_AI_REQUEST_SEED, sampling.seed)
        if sampling.stop:
            span.set_attribute(attr.GEN_AI_REQUEST_STOP_SEQUENCES, list(sampling.stop))

        admitted = settled = False
        prompt_tokens = output_tokens = cached_tokens = 0
        first_at: float | None = None
        last_at = received
        reason: str | None = None
        split = ReasoningSplit(engine.reasoning_parser())
        texts: list[str] = []
        reasonings: list[str] = []
        try:
            if engine.unfinished_requests() >= self._max_queued:
                raise ResourceExhausted(
                    f"the engine holds {self._max_queued} requests; retry later or elsewhere"
                )
            prompt = await engine.render_chat(plan.messages)
            prompt_tokens = len(prompt.token_ids)
            max_tokens = resolve_max_tokens(
                sampling.max_tokens,
                prompt_tokens=prompt_tokens,
                context_window=engine.context_window,
                default_max_tokens=self._default_max_tokens,
            )
            sampling = replace(sampling, max_tokens=max_tokens)
            span.set_attribute(attr.GEN_AI_REQUEST_MAX_TOKENS, max_tokens)
            if self._log_prompts:
                log.info("prompt", request_id=request_id, messages=list(plan.messages))
            self.meter.admit(request_id, prompt_tokens)
            admitted = True
            deltas = engine.generate(prompt, sampling, request_id)
            try:
                while True:
                    try:
                        async with asyncio.timeout_at(_loop_deadline(deadline, self._clock)):
                            delta = await anext(deltas)
                    except StopAsyncIteration:
                        break
                    now = self._clock()
                    if delta.token_ids:
                        if first_at is None:
                            first_at = now
                            self.meter.first_token(request_id)
                        output_tokens += len(delta.token_ids)
                        last_at = now
                    reasoning, text = split.feed(delta.text, delta.token_ids)
                    if delta.finished:
                        reason = delta.finish_reason
                        cached_tokens = delta.cached_prompt_tokens
                    if reasoning or text:
                        texts.append(text)
                        reasonings.append(reasoning)
                        yield TextPiece(text=text, reasoning_text=reasoning)
                    if delta.finished:
                        break
            finally:
                await deltas.aclose()  # type: ignore[attr-defined]
            cost = self.meter.finish(request_id, output_tokens)
            settled = True
            usage = pb.Usage(
                input_tokens=prompt_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=min(cached_tokens, prompt_tokens),
                reasoning_tokens=split.reasoning_tokens(),
                cost_usd=cost,
            )
            timing = _timing(received, first_at, last_at, output_tokens)
            completion = Completion(
                model=plan.model,
                text="".join(texts),
                reasoning_text="".join(reasonings),
                finish_reason=finish_reason(reason),
                usage=usage,
                timing=timing,
            )
            self._record(span, completion)
            if self._log_prompts:
                log.info("answer", request_id=request_id, text=completion.text)
            yield completion
        except TimeoutError:
            error = DeadlineExceeded("the deadline passed during generation; request aborted")
            _fail(span, error)
            raise error from None
        except EngineUnavailable as error:
            _fail(span, error)
            log.error("engine failed", request_id=request_id, error=error.message)
            if self._on_engine_failure is not None:
                await self._on_engine_failure()
            raise
        except SwitchyardError as error:
            _fail(span, error)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            span.set_attribute(attr.GEN_AI_RESPONSE_FINISH_REASONS, ["aborted"])
            raise
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            if admitted and not settled:
                await _abort_quietly(engine, request_id)
                cost = self.meter.finish(request_id, output_tokens)
                span.set_attribute(attr.COST_USD, cost)
                span.set_attribute(attr.GEN_AI_USAGE_COST, cost)
                span.set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, prompt_tokens)
                span.set_attribute(attr.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
                self._request_cost.add(cost, {attr.GEN_AI_PROVIDER_NAME: PROVIDER})
            span.end()

    def _record(self, span: object, completion: Completion) -> None:
        usage, timing = completion.usage, completion.timing
        set_attribute = span.set_attribute  # type: ignore[attr-defined]
        set_attribute(attr.GEN_AI_RESPONSE_MODEL, completion.model)
        set_attribute(
            attr.GEN_AI_RESPONSE_FINISH_REASONS,
            [_FINISH_NAMES.get(completion.finish_reason, "unspecified")],
        )
        set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
        set_attribute(attr.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
        set_attribute(attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cached_input_tokens)
        set_attribute(attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_tokens)
        set_attribute(attr.GEN_AI_USAGE_COST, usage.cost_usd)
        set_attribute(attr.COST_USD, usage.cost_usd)
        set_attribute(attr.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, timing.time_to_first_token_ms / 1e3)
        set_attribute(
            attr.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, timing.time_per_output_token_ms / 1e3
        )
        set_attribute(attr.GEN_AI_SERVER_REQUEST_DURATION, timing.total_ms / 1e3)
        labels = {
            attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
            attr.GEN_AI_PROVIDER_NAME: PROVIDER,
            attr.GEN_AI_REQUEST_MODEL: completion.model,
        }
        if usage.output_tokens:
            self._ttft.record(timing.time_to_first_token_ms / 1e3, labels)
        if usage.output_tokens > 1:
            self._tpot.record(timing.time_per_output_token_ms / 1e3, labels)
        self._duration.record(timing.total_ms / 1e3, labels)
        self._request_cost.add(usage.cost_usd, {attr.GEN_AI_PROVIDER_NAME: PROVIDER})


def _loop_deadline(deadline: float | None, clock: Callable[[], float]) -> float | None:
    """Translate a deadline on `clock` into the event loop's clock (None: no deadline)."""
    if deadline is None:
        return None
    return asyncio.get_running_loop().time() + (deadline - clock())


def _timing(received: float, first_at: float | None, last_at: float, tokens: int) -> pb.Timing:
    if first_at is None:
        return pb.Timing(total_ms=(last_at - received) * 1e3)
    per_token = (last_at - first_at) / (tokens - 1) if tokens > 1 else 0.0
    return pb.Timing(
        time_to_first_token_ms=(first_at - received) * 1e3,
        time_per_output_token_ms=per_token * 1e3,
        total_ms=(last_at - received) * 1e3,
    )


def _fail(span: object, error: SwitchyardError) -> None:
    span.record_exception(error)  # type: ignore[attr-defined]
    span.set_status(StatusCode.ERROR, f"{error.code.name}: {error.message}")  # type: ignore[attr-defined]


async def _abort_quietly(engine: Engine, request_id: str) -> None:
    """Abort in the engine; idempotent, and never masks the error that got us here."""
    try:
        await engine.abort(request_id)
    except Exception as exc:  # the engine may be dead; the original error matters more
        log.warning("abort failed", request_id=request_id, error=type(exc).__name__)
