"""Settings of the frontier proxy, from `SWITCHYARD_FRONTIER_PROXY_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from switchyard.runtime.settings import ServiceSettings

__all__ = ["FrontierProxySettings"]


class FrontierProxySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_FRONTIER_PROXY_")

    service_name: ClassVar[str] = "frontier-proxy"
    default_port: ClassVar[int] = 50054

    catalog: Path | None = Field(
        None, description="Model catalog file (YAML or JSON); unset: the built-in catalog."
    )
    default_deadline_s: float = Field(
        120.0, gt=0, le=3600, description="Deadline of an upstream call when the caller set none."
    )
    connect_timeout_s: float = Field(5.0, gt=0, le=120, description="TCP/TLS connect timeout.")
    max_attempts: int = Field(
        3, ge=1, le=10, description="Tries per call (first one included) on 429/5xx/connect errors."
    )
    backoff_base_s: float = Field(0.25, ge=0, le=60, description="First retry's backoff cap.")
    backoff_max_s: float = Field(4.0, ge=0, le=300, description="Largest backoff cap.")
    max_retry_after_s: float = Field(
        30.0, ge=0, le=3600, description="A longer Retry-After ends the retries at once."
    )
    breaker_failure_threshold: int = Field(
        5, ge=1, le=1000, description="Consecutive upstream failures that open its circuit."
    )
    breaker_reset_s: float = Field(
        30.0, gt=0, le=3600, description="How long an open circuit waits before a probe."
    )
    max_connections_per_upstream: int = Field(
        512, ge=1, le=100_000, description="Pooled HTTP connections per upstream."
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> FrontierProxySettings:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be >= backoff_base_s")
        return self
