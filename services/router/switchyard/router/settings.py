"""The router's settings: `SWITCHYARD_ROUTER_*` environment variables, read once at start."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchyard.runtime.settings import ServiceSettings

__all__ = ["RouterSettings"]


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_ROUTER_", extra="forbid", frozen=True, validate_default=True
    )
    service_name: ClassVar[str] = "router"
    default_port: ClassVar[int] = 50051

    config: Path = Field(Path("config/router.yaml"), description="The router's YAML file.")
    reload_poll_s: float = Field(
        1.0, gt=0, le=60, description="How often the configuration file is checked for changes."
    )
    ledger_spill_path: Path = Field(
        Path("switchyard-ledger-spill.jsonl"),
        description="Where records the ledger could not take are kept until the next start.",
    )
    budget_cache_s: float = Field(
        2.0, ge=0, le=300, description="How long a tenant's spend read from the ledger is reused."
    )
    context_window_retry_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often a backend that has not listed its models (ListModels: context "
        "windows) is asked again.",
    )
