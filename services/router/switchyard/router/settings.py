"""The router's settings: `SWITCHYARD_ROUTER_*` environment variables, read once at start."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

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
    ledger_journal_dir: Path = Field(
        Path("switchyard-ledger-journal"),
        description="The ledger journal: every request's record is written (and fsynced) here "
        "before the request is answered, then into the ledger in batches; what the ledger has "
        "not taken is replayed at the next start. Refused records go to quarantine.jsonl in it.",
    )
    ledger_durability: Literal["fsync", "page-cache"] = Field(
        "fsync",
        description="When a request may be answered: 'fsync' (default) once its record is "
        "fsynced in the journal; 'page-cache' (weaker, faster) once it is written there, "
        "fsynced just after: survives a router crash or kill -9, not a power cut.",
    )
    ledger_drain_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="On shutdown, after in-flight calls end, how long the ledger may take the "
        "records queued for it; the rest stay in the journal for the next start.",
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
    classifier_in_process: bool = Field(
        False,
        description="Run the classifier's model inside the router (needs "
        "switchyard-router[classifier]; configured by the SWITCHYARD_CLASSIFIER_* variables) "
        "instead of calling the classifier service at classifier.address. Off by default: "
        "the separate service scales, restarts and holds its memory on its own.",
    )
    frontier_proxy_in_process: str = Field(
        "",
        description="Backends of router.yaml (comma-separated names) whose calls a frontier "
        "proxy inside the router serves (needs "
        "switchyard-router[frontier-proxy]; configured by the SWITCHYARD_FRONTIER_PROXY_* "
        "variables, provider keys included) instead of the frontier-proxy service at their "
        "address. Empty by default: the separate service scales, restarts and holds the "
        "provider keys on its own.",
    )
    http_enabled: bool = Field(
        True, description="Serve the OpenAI-compatible HTTP door (/v1/chat/completions)."
    )
    http_host: str | None = Field(None, description="Address the HTTP door binds (None: HOST).")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP door (0: any).")
    http_max_request_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Largest HTTP request body accepted; larger ones are answered 413.",
    )
    http_routed_model: str = Field(
        "switchyard/auto",
        min_length=1,
        description="The `model` name that lets the routing policy decide (HTTP door).",
    )
