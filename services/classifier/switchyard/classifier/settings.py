"""Settings of the classifier service, from ``SWITCHYARD_CLASSIFIER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchyard.runtime.settings import ServiceSettings

__all__ = ["ClassifierSettings"]


class ClassifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_CLASSIFIER_", extra="forbid", frozen=True, validate_default=True
    )

    service_name: ClassVar[str] = "switchyard-classifier"
    default_port: ClassVar[int] = 50052

    model_dir: Path | None = Field(
        None,
        description="Model directory (manifest.json, classifier.onnx, tokenizer.json); "
        "unset: the model shipped in the package.",
    )
    model_reload_poll_s: float = Field(
        1.0,
        ge=0.0,
        le=3600.0,
        description="How often the model directory's manifest is checked for a new model "
        "(0: only on SIGHUP). Only a configured model_dir is watched.",
    )
    intra_op_threads: int = Field(
        1, ge=1, le=64, description="onnxruntime threads per inference (1: best on shared CPUs)."
    )
    max_batch_size: int = Field(
        32, ge=1, le=1024, description="Most prompts the micro-batcher runs in one inference."
    )
    max_batch_wait_ms: float = Field(
        0.0,
        ge=0.0,
        le=100.0,
        description="Extra time the micro-batcher waits to fill a batch "
        "(0: run what has queued up, which under load is whatever arrived during the last run).",
    )
    max_batch_request: int = Field(
        256, ge=1, le=10_000, description="Most prompts accepted in one ClassifyBatch call."
    )
    max_prompt_bytes: int = Field(
        256 * 1024,
        ge=16,
        le=64 * 1024 * 1024,
        description="Longest prompt accepted (UTF-8 bytes); longer is INVALID_ARGUMENT. "
        "Accepted prompts longer than the model's window are truncated.",
    )
    usd_per_core_hour: float = Field(
        0.04, ge=0.0, le=100.0, description="Price of one CPU core-hour, for each call's cost."
    )
